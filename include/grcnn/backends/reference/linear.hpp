#pragma once
// y = x W^T + b with x [N, K], W [M, K], b [M].
#include "grcnn/backends/reference/reference.hpp"

namespace grcnn::backends {

template <class T>
struct kernel<reference<T>, ops::linear_op> {
  using P = ops::linear_problem;
  static status can_implement(const P&) { return status::yes(); }

  static tensor forward(const P& pr, const tensor& x, const tensor& w, const tensor& b,
                        std::unique_ptr<autograd::payload>&) {
    const auto N = pr.x.dims[0], K = pr.x.dims[1], M = pr.w.dims[0];
    const auto xv = x.values<T>(), wv = w.values<T>();
    const auto bv = pr.bias ? b.values<T>() : std::vector<T>(static_cast<std::size_t>(M), T(0));
    std::vector<T> y(static_cast<std::size_t>(N * M));
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t m = 0; m < M; ++m) {
        T acc = bv[static_cast<std::size_t>(m)];
        for (std::int64_t k = 0; k < K; ++k) acc += xv[static_cast<std::size_t>(n * K + k)] * wv[static_cast<std::size_t>(m * K + k)];
        y[static_cast<std::size_t>(n * M + m)] = acc;
      }
    return ref_detail::make(grcnn::shape{N, M}, pr.x.type, y);
  }

  static void backward(const P& pr, autograd::payload*, const tensor& dy, const tensor& x, const tensor& w,
                       tensor* dx, tensor* dw, tensor* db) {
    const auto N = pr.x.dims[0], K = pr.x.dims[1], M = pr.w.dims[0];
    const auto g = dy.values<T>();
    const auto xv = dw ? x.values<T>() : std::vector<T>(), wv = dx ? w.values<T>() : std::vector<T>();
    std::vector<T> dxv(dx ? static_cast<std::size_t>(N * K) : 0, T(0)), dwv(dw ? static_cast<std::size_t>(M * K) : 0, T(0)), dbv(db ? static_cast<std::size_t>(M) : 0, T(0));
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t m = 0; m < M; ++m) {
        const T gv = g[static_cast<std::size_t>(n * M + m)];
        if (db) dbv[static_cast<std::size_t>(m)] += gv;
        for (std::int64_t k = 0; k < K; ++k) {
          if (dx) dxv[static_cast<std::size_t>(n * K + k)] += gv * wv[static_cast<std::size_t>(m * K + k)];
          if (dw) dwv[static_cast<std::size_t>(m * K + k)] += gv * xv[static_cast<std::size_t>(n * K + k)];
        }
      }
    if (dx) *dx = ref_detail::make(pr.x, dxv);
    if (dw) *dw = ref_detail::make(pr.w, dwv);
    if (db) *db = ref_detail::make(grcnn::shape{M}, pr.w.type, dbv);
  }
};

}  // namespace grcnn::backends
