#pragma once
// The VOneBlock response in logical (NCHW) order, computed in T.
#include "grcnn/backends/reference/reference.hpp"

namespace grcnn::backends {

template <class T>
struct kernel<reference<T>, ops::vone_response_op> {
  using P = ops::vone_response_problem;
  static status can_implement(const P&) { return status::yes(); }

  // f(index in q0, index in q1 or -1, simple) over every element.
  template <class F>
  static void each(const P& pr, F&& f) {
    const auto N = pr.q0.dims[0], C = pr.q0.dims[1], HW = pr.q0.dims[2] * pr.q0.dims[3], X = pr.complex();
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t c = 0; c < C; ++c) {
        const bool simple = c < pr.simple;
        for (std::int64_t i = 0; i < HW; ++i)
          f(static_cast<std::size_t>((n * C + c) * HW + i),
            simple ? std::size_t(0) : static_cast<std::size_t>((n * X + c - pr.simple) * HW + i), simple);
      }
  }

  static tensor forward(const P& pr, const tensor& q0, const tensor& q1, const tensor& eps) {
    const auto a = q0.values<T>();
    const auto b = q1.defined() ? q1.values<T>() : std::vector<T>();
    const auto e = eps.defined() ? eps.values<T>() : std::vector<T>();
    std::vector<T> y(a.size());
    each(pr, [&](std::size_t i, std::size_t j, bool simple) {
      y[i] = ops::vone_math::forward<T>(pr.k, simple, a[i], simple ? T(0) : b[j], e.empty() ? T(0) : e[i]);
    });
    return ref_detail::make(pr.q0, y);
  }

  static void backward(const P& pr, const tensor& dy, const tensor& q0, const tensor& q1, const tensor& eps,
                       tensor* dq0, tensor* dq1) {
    const auto a = q0.values<T>(), g = dy.values<T>();
    const auto b = q1.defined() ? q1.values<T>() : std::vector<T>();
    const auto e = eps.defined() ? eps.values<T>() : std::vector<T>();
    std::vector<T> da(a.size()), db(b.size());
    each(pr, [&](std::size_t i, std::size_t j, bool simple) {
      T ga, gb;
      ops::vone_math::backward<T>(pr.k, simple, a[i], simple ? T(0) : b[j], e.empty() ? T(0) : e[i], g[i], ga, gb);
      da[i] = ga;
      if (!simple) db[j] = gb;
    });
    if (dq0) *dq0 = ref_detail::make(pr.q0, da);
    if (dq1 && q1.defined()) *dq1 = ref_detail::like(q1, db);
  }
};

}  // namespace grcnn::backends
