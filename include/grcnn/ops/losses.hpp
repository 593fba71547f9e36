#pragma once
// Cross-entropy (hard labels, soft targets, label smoothing), KL divergence, AugMix's Jensen-Shannon
// consistency loss (means over the batch), and the grouped log-sum-exp behind the superclass loss.
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

// AugMix's Jensen-Shannon consistency loss of V views stacked along the batch (logits [V*N, K], view v
// in rows [v*N, (v+1)*N)); see jensen_shannon_problem. Gradients flow to every view's logits.
template <class B = backends::default_backend>
variable jensen_shannon(const variable& logits, int views) {
  constexpr std::string_view op = "jensen_shannon";
  detail::expect_rank(op, "logits", logits.value(), 2);
  detail::expect_activation(op, "logits", logits.value());
  GRCNN_CHECK(views >= 2, error, op, ": needs at least 2 views, got ", views);
  GRCNN_CHECK(logits.dims()[0] > 0 && logits.dims()[0] % views == 0, shape_error, op, ": ", logits.value().describe(),
              " does not hold ", views, " equal, non-empty views along dim 0");
  const jensen_shannon_problem pr{tensor_desc::of(logits.value()), views};
  return backends::dispatch<B, jensen_shannon_op>::run(pr, [&]<class K>(std::type_identity<K>) {
    std::unique_ptr<autograd::payload> state;
    const bool rec = autograd::should_record({&logits});
    variable loss = variable::result(K::forward(pr, logits.value(), state), rec);
    if (rec)
      autograd::record_op(jensen_shannon_op::name, {&logits}, {&loss}, {}, std::move(state),
                          [pr](autograd::node& n, grad_inputs og, grad_slots ig) {
                            ig[0] = K::backward(pr, n.state.get(), og[0]);
                          });
    return loss;
  });
}

// The column -> group map of group_logsumexp as an i64 tensor [K] on the host, validated: entries in
// [-1, groups) and every group used at least once.
inline tensor make_group_map(const std::vector<std::int64_t>& group_of_column, std::int64_t groups) {
  GRCNN_CHECK(groups >= 1, error, "group map: needs at least one group, got ", groups);
  std::vector<std::int64_t> members(static_cast<std::size_t>(groups), 0);
  for (std::size_t k = 0; k < group_of_column.size(); ++k) {
    const auto g = group_of_column[k];
    GRCNN_CHECK(g >= -1 && g < groups, shape_error, "group map: column ", k, " is in group ", g, ", outside [-1, ",
                groups, ")");
    if (g >= 0) ++members[static_cast<std::size_t>(g)];
  }
  for (std::int64_t s = 0; s < groups; ++s)
    GRCNN_CHECK(members[static_cast<std::size_t>(s)] > 0, shape_error, "group map: group ", s, " of ", groups,
                " has no column");
  return tensor::from_values(grcnn::shape{static_cast<std::int64_t>(group_of_column.size())}, group_of_column);
}

// out[n, s] = log sum_{k : group[k] = s} exp x[n, k] for x [N, K] and a map from make_group_map (the
// map may live on the host; it is copied to x's device). Gradients flow to x.
template <class B = backends::default_backend>
variable group_logsumexp(const variable& x, const tensor& group_map, std::int64_t groups) {
  constexpr std::string_view op = "group_logsumexp";
  detail::expect_rank(op, "x", x.value(), 2);
  detail::expect_activation(op, "x", x.value());
  detail::expect_dims(op, "group map", group_map, grcnn::shape{x.dims()[1]});
  detail::expect_dtype(op, "group map", group_map, dtype::i64);
  make_group_map(group_map.values<std::int64_t>(), groups);  // validates
  const group_logsumexp_problem pr{tensor_desc::of(x.value()), groups};
  const tensor map = group_map.to_device(x.value().where());
  return backends::dispatch<B, group_logsumexp_op>::run(pr, [&]<class K>(std::type_identity<K>) {
    const bool rec = autograd::should_record({&x});
    variable y = variable::result(K::forward(pr, x.value(), map), rec);
    if (rec)
      autograd::record_op(group_logsumexp_op::name, {&x}, {&y}, {x.value(), y.value(), map}, nullptr,
                          [pr](autograd::node& n, grad_inputs og, grad_slots ig) {
                            ig[0] = K::backward(pr, og[0], n.saved[0], n.saved[1], n.saved[2]);
                          });
    return y;
  });
}

}  // namespace grcnn::ops
