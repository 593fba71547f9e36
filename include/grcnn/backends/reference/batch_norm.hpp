#pragma once
// Batch normalisation over (N, H, W) per channel, optionally followed by ReLU. Training uses batch
// statistics and updates the running ones as PyTorch does (unbiased variance for the running estimate).
#include "grcnn/backends/reference/reference.hpp"

namespace grcnn::backends {

template <class T>
struct kernel<reference<T>, ops::batch_norm_op> {
  using P = ops::batch_norm_problem;
  static status can_implement(const P&) { return status::yes(); }

  struct saved : autograd::payload {
    std::vector<T> mean, invstd;
  };

  static std::int64_t spatial(const P& pr) { return pr.x.dims.rank() == 4 ? pr.x.dims[2] * pr.x.dims[3] : 1; }

  static tensor forward(const P& pr, const tensor& x, const tensor& gamma, const tensor& beta, tensor& running_mean,
                        tensor& running_var, std::unique_ptr<autograd::payload>& state) {
    const auto N = pr.x.dims[0], C = pr.x.dims[1], HW = spatial(pr);
    const auto xv = x.values<T>(), gv = gamma.values<T>(), bv = beta.values<T>();
    auto s = std::make_unique<saved>();
    s->mean.assign(static_cast<std::size_t>(C), T(0));
    s->invstd.assign(static_cast<std::size_t>(C), T(0));
    auto at = [&](std::int64_t n, std::int64_t c, std::int64_t i) { return static_cast<std::size_t>((n * C + c) * HW + i); };
    if (pr.training) {
      auto rm = running_mean.values<T>(), rv = running_var.values<T>();
      const T M = static_cast<T>(N * HW), m = static_cast<T>(pr.momentum);
      for (std::int64_t c = 0; c < C; ++c) {
        T sum = 0;
        for (std::int64_t n = 0; n < N; ++n)
          for (std::int64_t i = 0; i < HW; ++i) sum += xv[at(n, c, i)];
        const T mean = sum / M;
        T sq = 0;
        for (std::int64_t n = 0; n < N; ++n)
          for (std::int64_t i = 0; i < HW; ++i) sq += (xv[at(n, c, i)] - mean) * (xv[at(n, c, i)] - mean);
        const T var = sq / M;
        const auto cc = static_cast<std::size_t>(c);
        s->mean[cc] = mean;
        s->invstd[cc] = T(1) / std::sqrt(var + static_cast<T>(pr.eps));
        rm[cc] = (T(1) - m) * rm[cc] + m * mean;
        rv[cc] = (T(1) - m) * rv[cc] + m * (M > 1 ? var * M / (M - 1) : var);
      }
      running_mean.assign(std::span<const T>(rm));
      running_var.assign(std::span<const T>(rv));
    } else {
      const auto rm = running_mean.values<T>(), rv = running_var.values<T>();
      for (std::size_t c = 0; c < static_cast<std::size_t>(C); ++c) {
        s->mean[c] = rm[c];
        s->invstd[c] = T(1) / std::sqrt(rv[c] + static_cast<T>(pr.eps));
      }
    }
    std::vector<T> y(xv.size());
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t c = 0; c < C; ++c) {
        const auto cc = static_cast<std::size_t>(c);
        for (std::int64_t i = 0; i < HW; ++i) {
          T v = (xv[at(n, c, i)] - s->mean[cc]) * s->invstd[cc] * gv[cc] + bv[cc];
          y[at(n, c, i)] = pr.fuse_relu ? ref_detail::relu(v) : v;
        }
      }
    state = std::move(s);
    return ref_detail::make(pr.x, y);
  }

  static void backward(const P& pr, autograd::payload* state, const tensor& dy, const tensor& x, const tensor& y,
                       const tensor& gamma, tensor* dx, tensor* dgamma, tensor* dbeta) {
    const auto& s = *static_cast<saved*>(state);
    const auto N = pr.x.dims[0], C = pr.x.dims[1], HW = spatial(pr);
    auto g = dy.values<T>();
    const auto xv = x.values<T>(), gv = gamma.values<T>();
    if (pr.fuse_relu) {
      const auto yv = y.values<T>();
      for (std::size_t i = 0; i < g.size(); ++i) g[i] = ref_detail::relu_grad(g[i], yv[i]);
    }
    auto at = [&](std::int64_t n, std::int64_t c, std::int64_t i) { return static_cast<std::size_t>((n * C + c) * HW + i); };
    std::vector<T> dgv(static_cast<std::size_t>(C)), dbv(static_cast<std::size_t>(C)), dxv(dx ? xv.size() : 0);
    const T M = static_cast<T>(N * HW);
    for (std::int64_t c = 0; c < C; ++c) {
      const auto cc = static_cast<std::size_t>(c);
      T sg = 0, sgx = 0;
      for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t i = 0; i < HW; ++i) {
          sg += g[at(n, c, i)];
          sgx += g[at(n, c, i)] * (xv[at(n, c, i)] - s.mean[cc]) * s.invstd[cc];
        }
      dbv[cc] = sg;
      dgv[cc] = sgx;
      if (!dx) continue;
      for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t i = 0; i < HW; ++i) {
          const auto k = at(n, c, i);
          if (pr.training) {
            const T xhat = (xv[k] - s.mean[cc]) * s.invstd[cc];
            dxv[k] = gv[cc] * s.invstd[cc] / M * (M * g[k] - sg - xhat * sgx);
          } else {
            dxv[k] = g[k] * gv[cc] * s.invstd[cc];
          }
        }
    }
    if (dx) *dx = ref_detail::like(x, dxv);
    if (dgamma) *dgamma = ref_detail::like(gamma, dgv);
    if (dbeta) *dbeta = ref_detail::like(gamma, dbv);
  }
};

}  // namespace grcnn::backends
