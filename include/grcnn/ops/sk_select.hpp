#pragma once
// The selective-kernel fusion of SKNet / SK-GRCNN: a softmax over M branches per (sample, channel),
// then the attention-weighted sum of the branches, in one op.
#include "grcnn/ops/detail.hpp"

namespace grcnn::ops {

// branches: M tensors [N, C, H, W] of one format; logits: [N, M*C] (PyTorch's fc2 output reshaped to
// [N, M, C] and softmaxed over M).
template <class B = backends::default_backend>
variable sk_select(const std::vector<variable>& branches, const variable& logits) {
  constexpr std::string_view op = "sk_select";
  GRCNN_CHECK(branches.size() >= 2, shape_error, op, ": needs at least 2 branches, got ", branches.size());
  const tensor& b0 = branches[0].value();
  detail::expect_rank(op, "branch 0", b0, 4);
  detail::expect_activation(op, "branch 0", b0);
  for (std::size_t m = 1; m < branches.size(); ++m)
    detail::expect_same(op, "branch " + std::to_string(m), b0, branches[m].value());
  const auto M = static_cast<std::int64_t>(branches.size());
  detail::expect_dims(op, "logits", logits.value(), grcnn::shape{b0.dim(0), M * b0.dim(1)});
  detail::expect_dtype(op, "logits", logits.value(), b0.type());
  const sk_select_problem pr{tensor_desc::of(b0), static_cast<int>(M)};
  return backends::dispatch<B, sk_select_op>::run(pr, [&]<class K>(std::type_identity<K>) {
    std::vector<tensor> values;
    std::vector<const variable*> inputs;
    for (const auto& b : branches) {
      values.push_back(b.value());
      inputs.push_back(&b);
    }
    inputs.push_back(&logits);
    bool rec = false;
    for (const variable* v : inputs) rec = rec || autograd::should_record({v});
    variable out = variable::result(K::forward(pr, values, logits.value()), rec);
    if (rec) {
      std::vector<tensor> saved = values;
      saved.push_back(logits.value());
      const variable* outputs[] = {&out};
      autograd::record_op(sk_select_op::name, inputs, outputs, std::move(saved), nullptr,
                          [pr](autograd::node& node, grad_inputs og, grad_slots ig) {
                            const std::vector<tensor> bs(node.saved.begin(), node.saved.end() - 1);
                            std::vector<tensor*> dbs;
                            for (std::size_t m = 0; m < bs.size(); ++m) dbs.push_back(detail::slot(node, ig, m));
                            K::backward(pr, detail::as_layout(og[0], pr.branch.memory_layout), bs, node.saved.back(),
                                        dbs, detail::slot(node, ig, bs.size()));
                          });
    }
    return out;
  });
}

}  // namespace grcnn::ops
