#pragma once
#include "grcnn/ops/detail.hpp"

namespace grcnn::ops {

// Validates x [N, C, H, W], w [O, C/groups, KH, KW] and optional b [O]; computes the output shape.
inline conv2d_problem make_conv2d_problem(const tensor& x, const tensor& w, const tensor* b, const conv2d_params& p) {
  constexpr std::string_view op = "conv2d";
  detail::expect_rank(op, "input", x, 4);
  detail::expect_activation(op, "input", x);
  detail::expect_rank(op, "weight", w, 4);
  detail::expect_dtype(op, "weight", w, x.type());
  GRCNN_CHECK(p.groups >= 1 && p.stride_h >= 1 && p.stride_w >= 1 && p.dilation_h >= 1 && p.dilation_w >= 1 &&
                  p.pad_h >= 0 && p.pad_w >= 0,
              shape_error, op, ": invalid parameters (groups ", p.groups, ", stride ", p.stride_h, ",", p.stride_w,
              ", dilation ", p.dilation_h, ",", p.dilation_w, ", padding ", p.pad_h, ",", p.pad_w, ")");
  const auto C = x.dim(1), O = w.dim(0);
  GRCNN_CHECK(C % p.groups == 0 && O % p.groups == 0, shape_error, op, ": channels in ", C, " / out ", O,
              " not divisible by groups ", p.groups);
  GRCNN_CHECK(w.dim(1) == C / p.groups, shape_error, op, ": weight expected [", O, ", ", C / p.groups, ", kh, kw] for input ",
              x.describe(), " and groups ", p.groups, ", got ", w.describe());
  GRCNN_CHECK(w.dim(2) >= 1 && w.dim(3) >= 1, shape_error, op, ": weight ", w.describe(), " has an empty kernel");
  const auto OH = detail::window_extent(op, x, x.dim(2), w.dim(2), p.stride_h, p.pad_h, p.dilation_h);
  const auto OW = detail::window_extent(op, x, x.dim(3), w.dim(3), p.stride_w, p.pad_w, p.dilation_w);
  if (b) {
    detail::expect_dims(op, "bias", *b, grcnn::shape{O});
    detail::expect_dtype(op, "bias", *b, x.type());
  }
  conv2d_problem pr;
  pr.x = tensor_desc::of(x);
  pr.w = tensor_desc::of(w);
  pr.y = {grcnn::shape{x.dim(0), O, OH, OW}, x.type(), x.memory_layout()};
  pr.bias = b != nullptr;
  pr.p = p;
  return pr;
}

// 2-D convolution; `b` may be an undefined variable (no bias).
template <class B = backends::default_backend>
variable conv2d(const variable& x, const variable& w, const variable& b, const conv2d_params& p) {
  const conv2d_problem pr = make_conv2d_problem(x.value(), w.value(), b.defined() ? &b.value() : nullptr, p);
  return detail::weighted_op<B, conv2d_op>(pr, x, w, b, pr.y.memory_layout);
}

template <class B = backends::default_backend>
variable conv2d(const variable& x, const variable& w, const conv2d_params& p) {
  return conv2d<B>(x, w, variable(), p);
}

}  // namespace grcnn::ops
