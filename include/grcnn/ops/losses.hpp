#pragma once
// Cross-entropy (hard labels, soft targets, label smoothing) and KL divergence; mean over the batch.
#include "grcnn/ops/detail.hpp"

namespace grcnn::ops {

struct cross_entropy_options {
  double label_smoothing = 0.0;  // PyTorch's semantics: eps spread over all K classes
};

inline cross_entropy_problem make_cross_entropy_problem(const tensor& logits, const tensor& target,
                                                        const cross_entropy_options& o) {
  constexpr std::string_view op = "cross_entropy";
  detail::expect_rank(op, "logits", logits, 2);
  detail::expect_activation(op, "logits", logits);
  GRCNN_CHECK(o.label_smoothing >= 0.0 && o.label_smoothing <= 1.0, error, op, ": label_smoothing ",
              o.label_smoothing, " outside [0, 1]");
  cross_entropy_problem pr{tensor_desc::of(logits), target_kind::hard, o.label_smoothing};
  if (target.defined() && target.type() == dtype::i64) {
    detail::expect_dims(op, "labels", target, grcnn::shape{logits.dim(0)});
    const auto labels = target.values<std::int64_t>();
    for (std::size_t i = 0; i < labels.size(); ++i)
      GRCNN_CHECK(labels[i] >= 0 && labels[i] < logits.dim(1), shape_error, op, ": label ", labels[i],
                  " at position ", i, " outside [0, ", logits.dim(1), ")");
  } else {
    detail::expect_dims(op, "soft target", target, logits.dims());
    detail::expect_dtype(op, "soft target", target, logits.type());
    pr.target = target_kind::soft;
  }
  return pr;
}

// Mean cross-entropy of logits [N, K] against i64 labels [N] or a soft target [N, K]. Gradients flow
// to the logits only (targets are data).
template <class B = backends::default_backend>
variable cross_entropy(const variable& logits, const tensor& target, const cross_entropy_options& o = {}) {
  const cross_entropy_problem pr = make_cross_entropy_problem(logits.value(), target, o);
  return backends::dispatch<B, cross_entropy_op>::run(pr, [&]<class K>(std::type_identity<K>) {
    std::unique_ptr<autograd::payload> state;
    const bool rec = autograd::should_record({&logits});
    variable loss = variable::result(K::forward(pr, logits.value(), target, state), rec);
    if (rec)
      autograd::record_op(cross_entropy_op::name, {&logits}, {&loss}, {}, std::move(state),
                          [pr](autograd::node& n, grad_inputs og, grad_slots ig) {
                            ig[0] = K::backward(pr, n.state.get(), og[0]);
                          });
    return loss;
  });
}

// PyTorch's kl_div(input, target, reduction='batchmean'): input holds log-probabilities, target
// probabilities; both [N, K] and both differentiable (the Jensen-Shannon loss needs both).
template <class B = backends::default_backend>
variable kl_div(const variable& input, const variable& target) {
  constexpr std::string_view op = "kl_div";
  detail::expect_rank(op, "input", input.value(), 2);
  detail::expect_activation(op, "input", input.value());
  detail::expect_same(op, "target", input.value(), target.value());
  const kl_div_problem pr{tensor_desc::of(input.value())};
  return backends::dispatch<B, kl_div_op>::run(pr, [&]<class K>(std::type_identity<K>) {
    const bool rec = autograd::should_record({&input, &target});
    variable loss = variable::result(K::forward(pr, input.value(), target.value()), rec);
    if (rec)
      autograd::record_op(kl_div_op::name, {&input, &target}, {&loss}, {input.value(), target.value()}, nullptr,
                          [pr](autograd::node& n, grad_inputs og, grad_slots ig) {
                            K::backward(pr, og[0], n.saved[0], n.saved[1], detail::slot(n, ig, 0),
                                        detail::slot(n, ig, 1));
                          });
    return loss;
  });
}

}  // namespace grcnn::ops
