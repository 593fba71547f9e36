#pragma once
// ReLU, sigmoid, add, mul, the fused gated update out = x + sigmoid(a + b) * y, and dtype casts.
#include "grcnn/backends/reference/reference.hpp"

namespace grcnn::backends {

template <class T>
struct kernel<reference<T>, ops::eltwise_op> {
  using P = ops::eltwise_problem;
  static status can_implement(const P&) { return status::yes(); }
  static tensor forward(const P& pr, const tensor& x) {
    auto v = x.values<T>();
    for (auto& e : v) e = pr.kind == ops::eltwise_kind::relu ? ref_detail::relu(e) : ref_detail::sigmoid(e);
    return ref_detail::make(pr.x, v);
  }
  // Both ReLU and sigmoid differentiate through their output y (ReLU as PyTorch's threshold_backward:
  // the gradient passes where y is NaN).
  static tensor backward(const P& pr, const tensor& dy, const tensor& y) {
    auto g = dy.values<T>();
    const auto yv = y.values<T>();
    for (std::size_t i = 0; i < g.size(); ++i)
      g[i] = pr.kind == ops::eltwise_kind::relu ? ref_detail::relu_grad(g[i], yv[i]) : g[i] * yv[i] * (T(1) - yv[i]);
    return ref_detail::make(pr.x, g);
  }
};

template <class T>
struct kernel<reference<T>, ops::binary_op> {
  using P = ops::binary_problem;
  static status can_implement(const P&) { return status::yes(); }
  static tensor forward(const P& pr, const tensor& a, const tensor& b) {
    auto av = a.values<T>();
    const auto bv = b.values<T>();
    for (std::size_t i = 0; i < av.size(); ++i) av[i] = pr.kind == ops::binary_kind::add ? av[i] + bv[i] : av[i] * bv[i];
    return ref_detail::make(pr.a, av);
  }
  static void backward(const P& pr, const tensor& dy, const tensor& a, const tensor& b, tensor* da, tensor* db) {
    if (pr.kind == ops::binary_kind::add) {  // the gradient passes through unchanged; the tape never writes through it
      if (da) *da = dy;
      if (db) *db = dy;
      return;
    }
    const auto g = dy.values<T>();
    auto scaled = [&](const tensor& other) {
      auto o = other.values<T>();
      for (std::size_t i = 0; i < o.size(); ++i) o[i] *= g[i];
      return ref_detail::make(pr.a, o);
    };
    if (da) *da = scaled(b);
    if (db) *db = scaled(a);
  }
};

template <class T>
struct kernel<reference<T>, ops::gated_update_op> {
  using P = ops::gated_update_problem;
  static status can_implement(const P&) { return status::yes(); }
  static tensor forward(const P& pr, const tensor& x, const tensor& a, const tensor& b, const tensor& y) {
    auto out = x.values<T>();
    const auto av = a.values<T>(), bv = b.values<T>(), yv = y.values<T>();
    for (std::size_t i = 0; i < out.size(); ++i) out[i] += ref_detail::sigmoid(av[i] + bv[i]) * yv[i];
    return ref_detail::make(pr.x, out);
  }
  // dx = dout; dy = dout * s; da = db = dout * y * s * (1 - s), with s = sigmoid(a + b).
  static void backward(const P& pr, const tensor& dout, const tensor& a, const tensor& b, const tensor& y,
                       tensor* dx, tensor* dgate, tensor* dy) {
    const auto g = dout.values<T>(), av = a.values<T>(), bv = b.values<T>(), yv = y.values<T>();
    std::vector<T> dg(dgate ? g.size() : 0), dyv(dy ? g.size() : 0);
    for (std::size_t i = 0; i < g.size(); ++i) {
      const T s = ref_detail::sigmoid(av[i] + bv[i]);
      if (dgate) dg[i] = g[i] * yv[i] * s * (T(1) - s);
      if (dy) dyv[i] = g[i] * s;
    }
    if (dx) *dx = dout;
    if (dgate) *dgate = ref_detail::make(pr.x, dg);
    if (dy) *dy = ref_detail::make(pr.x, dyv);
  }
};

// A conversion is exact in double: the value is read, rounded once to the target (nearest even).
template <class T>
struct kernel<reference<T>, ops::cast_op> {
  using P = ops::cast_problem;
  static status can_implement(const P&) { return status::yes(); }
  static tensor forward(const P& pr, const tensor& x) { return x.to_dtype(pr.to); }
  static tensor backward(const P& pr, const tensor& dy) { return dy.to_dtype(pr.x.type); }
};

}  // namespace grcnn::backends
