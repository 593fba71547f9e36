#pragma once
// The reference backend: plain loops over logical (NCHW) order, templated on the scalar it computes
// in. reference<double> is the oracle of every numeric check; it accepts any dtype and layout by
// converting on the way in and out, so it is slow on purpose and never the production path.
#include <array>
#include <cmath>
#include <span>
#include <string_view>
#include <vector>

#include "grcnn/backends/backend.hpp"

namespace grcnn::backends {

template <class Scalar = double>
struct reference {
  static_assert(std::is_floating_point_v<Scalar>, "grcnn: reference<Scalar> computes in float or double");
  using scalar = Scalar;
  static constexpr std::string_view name = std::is_same_v<Scalar, double> ? "reference<f64>" : "reference<f32>";
  using fallback = void;
  static constexpr std::array<dtype, 4> dtypes{dtype::f32, dtype::bf16, dtype::f16, dtype::f64};
};

namespace ref_detail {

// A tensor with `like`'s dtype and physical format holding the logical values v.
template <class T>
tensor like(const tensor& like_this, const std::vector<T>& v) {
  const bool opaque = like_this.memory_layout() == layout::opaque;
  tensor r = tensor::empty(like_this.dims(), like_this.type(), opaque ? layout::plain : like_this.memory_layout());
  r.assign(std::span<const T>(v));
  return opaque ? r.to_format(like_this.format()) : r;
}
template <class T>
tensor make(const ops::tensor_desc& d, const std::vector<T>& v) {
  tensor r = tensor::empty(d.dims, d.type, d.memory_layout == layout::opaque ? layout::plain : d.memory_layout);
  r.assign(std::span<const T>(v));
  return r;
}
template <class T>
tensor make(const grcnn::shape& s, dtype t, const std::vector<T>& v) {
  return make(ops::tensor_desc{s, t, layout::plain}, v);
}

// sigmoid(+Inf) = 1, sigmoid(-Inf) = 0, NaN stays NaN.
template <class T>
T sigmoid(T v) {
  return T(1) / (T(1) + std::exp(-v));
}
// PyTorch's ReLU (clamp_min(x, 0)): NaN stays NaN.
template <class T>
T relu(T v) {
  return v <= T(0) ? T(0) : v;
}
// PyTorch's ReLU gradient (threshold_backward(g, y, 0) = y <= 0 ? 0 : g): it passes where y is NaN.
template <class T>
T relu_grad(T g, T y) {
  return y <= T(0) ? T(0) : g;
}

}  // namespace ref_detail
}  // namespace grcnn::backends

#include "grcnn/backends/reference/conv2d.hpp"
#include "grcnn/backends/reference/batch_norm.hpp"
#include "grcnn/backends/reference/elementwise.hpp"
#include "grcnn/backends/reference/pool2d.hpp"
#include "grcnn/backends/reference/linear.hpp"
#include "grcnn/backends/reference/softmax_losses.hpp"
#include "grcnn/backends/reference/sk_select.hpp"
#include "grcnn/backends/reference/vone.hpp"

namespace grcnn::backends {
// Every op of ops::op_table has a reference kernel: the reference is every fallback chain's end.
static_assert(complete<reference<double>>);
static_assert(complete<reference<float>>);
}  // namespace grcnn::backends
