#pragma once
#include "grcnn/ops/detail.hpp"

namespace grcnn::ops {

inline linear_problem make_linear_problem(const tensor& x, const tensor& w, const tensor* b) {
  constexpr std::string_view op = "linear";
  detail::expect_rank(op, "input", x, 2);
  detail::expect_activation(op, "input", x);
  detail::expect_rank(op, "weight", w, 2);
  detail::expect_dtype(op, "weight", w, x.type());
  GRCNN_CHECK(w.dim(1) == x.dim(1), shape_error, op, ": weight expected [M, ", x.dim(1), "] for input ",
              x.describe(), ", got ", w.describe());
  if (b) {
    detail::expect_dims(op, "bias", *b, grcnn::shape{w.dim(0)});
    detail::expect_dtype(op, "bias", *b, x.type());
  }
  return {tensor_desc::of(x), tensor_desc::of(w), b != nullptr};
}

// y = x W^T + b (PyTorch nn.Linear); `b` may be undefined.
template <class B = backends::default_backend>
variable linear(const variable& x, const variable& w, const variable& b = variable()) {
  const linear_problem pr = make_linear_problem(x.value(), w.value(), b.defined() ? &b.value() : nullptr);
  return detail::weighted_op<B, linear_op>(pr, x, w, b, layout::plain);
}

}  // namespace grcnn::ops
