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

namespace grcnn::backends {

// The per-rank passes of the synchronised batch norm (ops/batch_norm.hpp), in T over logical order;
// statistics handed over in double.
template <class T>
struct kernel<reference<T>, ops::sync_batch_norm_op> {
  using P = ops::batch_norm_problem;
  static status can_implement(const P&) { return status::yes(); }
  static std::int64_t spatial(const P& pr) { return pr.x.dims.rank() == 4 ? pr.x.dims[2] * pr.x.dims[3] : 1; }
  // Calls f(index, channel) for every element in logical order.
  template <class F>
  static void each(const P& pr, F&& f) {
    const auto N = pr.x.dims[0], C = pr.x.dims[1], HW = spatial(pr);
    std::size_t k = 0;
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t i = 0; i < HW; ++i) f(k++, static_cast<std::size_t>(c));
  }
  static std::vector<T> masked(const P& pr, const tensor& dy, const tensor& y) {
    auto g = dy.values<T>();
    if (pr.fuse_relu) {
      const auto yv = y.values<T>();
      for (std::size_t i = 0; i < g.size(); ++i) g[i] = ref_detail::relu_grad(g[i], yv[i]);
    }
    return g;
  }

  static void batch_statistics(const P& pr, const tensor& x, std::vector<double>& mean, std::vector<double>& var) {
    const auto C = static_cast<std::size_t>(pr.x.dims[1]);
    const auto xv = x.values<T>();
    const T M = static_cast<T>(C ? xv.size() / C : 0);
    std::vector<T> sum(C, T(0)), sq(C, T(0));
    each(pr, [&](std::size_t k, std::size_t c) { sum[c] += xv[k]; });
    for (auto& s : sum) s = M > 0 ? s / M : T(0);
    each(pr, [&](std::size_t k, std::size_t c) { sq[c] += (xv[k] - sum[c]) * (xv[k] - sum[c]); });
    mean.assign(sum.begin(), sum.end());
    var.resize(C);
    for (std::size_t c = 0; c < C; ++c) var[c] = M > 0 ? static_cast<double>(sq[c] / M) : 0.0;
  }
  static tensor normalize(const P& pr, const tensor& x, const tensor& gamma, const tensor& beta,
                          const std::vector<double>& mean, const std::vector<double>& invstd) {
    const auto xv = x.values<T>(), gv = gamma.values<T>(), bv = beta.values<T>();
    std::vector<T> y(xv.size());
    each(pr, [&](std::size_t k, std::size_t c) {
      const T v = (xv[k] - static_cast<T>(mean[c])) * static_cast<T>(invstd[c]) * gv[c] + bv[c];
      y[k] = pr.fuse_relu ? ref_detail::relu(v) : v;
    });
    return ref_detail::make(pr.x, y);
  }
  static void gradient_sums(const P& pr, const tensor& dy, const tensor& x, const tensor& y,
                            const std::vector<double>& mean, std::span<double> sum_dy, std::span<double> sum_dy_xmu) {
    const auto g = masked(pr, dy, y);
    const auto xv = x.values<T>();
    std::vector<T> a(sum_dy.size(), T(0)), b(sum_dy.size(), T(0));
    each(pr, [&](std::size_t k, std::size_t c) {
      a[c] += g[k];
      b[c] += g[k] * (xv[k] - static_cast<T>(mean[c]));
    });
    for (std::size_t c = 0; c < a.size(); ++c) sum_dy[c] = a[c], sum_dy_xmu[c] = b[c];
  }
  // dx = (g - mean_dy - (x - mean) invstd^2 mean_dy_xmu) gamma invstd, the means over every rank's values.
  static tensor input_gradient(const P& pr, const tensor& dy, const tensor& x, const tensor& y, const tensor& gamma,
                               const std::vector<double>& mean, const std::vector<double>& invstd,
                               const std::vector<double>& mean_dy, const std::vector<double>& mean_dy_xmu) {
    const auto g = masked(pr, dy, y);
    const auto xv = x.values<T>(), gv = gamma.values<T>();
    std::vector<T> dx(xv.size());
    each(pr, [&](std::size_t k, std::size_t c) {
      const T is = static_cast<T>(invstd[c]);
      dx[k] = (g[k] - static_cast<T>(mean_dy[c]) - (xv[k] - static_cast<T>(mean[c])) * is * is * static_cast<T>(mean_dy_xmu[c])) *
              gv[c] * is;
    });
    return ref_detail::like(x, dx);
  }
};

}  // namespace grcnn::backends

namespace grcnn::backends {

// Two batch norms of one input in training (ops::paired_batch_norm): the statistics once, with the plain
// kernel's arithmetic (so each output and each running statistic is the unfused one to the last bit);
// the backward's four channel sums in one pass over x and both gradients, then dx from both in one more.
template <class T>
struct kernel<reference<T>, ops::paired_batch_norm_op> {
  using P = ops::batch_norm_problem;
  using single = kernel<reference<T>, ops::batch_norm_op>;
  static status can_implement(const P& pr) {
    if (!pr.training) return status::no("paired batch norm is a training kernel (evaluation uses each BN's own running statistics)");
    return status::yes();
  }

  static std::array<tensor, 2> forward(const P& pr, const tensor& x, const tensor& ga, const tensor& ba, const tensor& gb,
                                       const tensor& bb, tensor& rma, tensor& rva, tensor& rmb, tensor& rvb,
                                       std::unique_ptr<autograd::payload>& state) {
    const auto N = pr.x.dims[0], C = pr.x.dims[1], HW = single::spatial(pr);
    const auto xv = x.values<T>();
    auto s = std::make_unique<typename single::saved>();
    s->mean.assign(static_cast<std::size_t>(C), T(0));
    s->invstd.assign(static_cast<std::size_t>(C), T(0));
    auto at = [&](std::int64_t n, std::int64_t c, std::int64_t i) { return static_cast<std::size_t>((n * C + c) * HW + i); };
    const T M = static_cast<T>(N * HW), m = static_cast<T>(pr.momentum);
    std::vector<T> var(static_cast<std::size_t>(C));
    for (std::int64_t c = 0; c < C; ++c) {
      T sum = 0;
      for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t i = 0; i < HW; ++i) sum += xv[at(n, c, i)];
      const T mean = sum / M;
      T sq = 0;
      for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t i = 0; i < HW; ++i) sq += (xv[at(n, c, i)] - mean) * (xv[at(n, c, i)] - mean);
      const auto cc = static_cast<std::size_t>(c);
      var[cc] = sq / M;
      s->mean[cc] = mean;
      s->invstd[cc] = T(1) / std::sqrt(var[cc] + static_cast<T>(pr.eps));
    }
    for (auto [rm_t, rv_t] : {std::pair<tensor*, tensor*>{&rma, &rva}, {&rmb, &rvb}}) {
      auto rm = rm_t->template values<T>(), rv = rv_t->template values<T>();
      for (std::size_t c = 0; c < static_cast<std::size_t>(C); ++c) {
        rm[c] = (T(1) - m) * rm[c] + m * s->mean[c];
        rv[c] = (T(1) - m) * rv[c] + m * (M > 1 ? var[c] * M / (M - 1) : var[c]);
      }
      rm_t->assign(std::span<const T>(rm));
      rv_t->assign(std::span<const T>(rv));
    }
    std::array<tensor, 2> out;
    for (int k = 0; k < 2; ++k) {
      const auto gv = (k == 0 ? ga : gb).template values<T>(), bv = (k == 0 ? ba : bb).template values<T>();
      std::vector<T> y(xv.size());
      for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t c = 0; c < C; ++c) {
          const auto cc = static_cast<std::size_t>(c);
          for (std::int64_t i = 0; i < HW; ++i) {
            T v = (xv[at(n, c, i)] - s->mean[cc]) * s->invstd[cc] * gv[cc] + bv[cc];
            y[at(n, c, i)] = pr.fuse_relu ? ref_detail::relu(v) : v;
          }
        }
      out[static_cast<std::size_t>(k)] = ref_detail::make(pr.x, y);
    }
    state = std::move(s);
    return out;
  }

  static void backward(const P& pr, autograd::payload* state, const tensor& dya, const tensor& dyb, const tensor& x,
                       const tensor& ya, const tensor& yb, const tensor& ga, const tensor& gb, tensor* dx, tensor* dga,
                       tensor* dba, tensor* dgb, tensor* dbb) {
    const auto& s = *static_cast<typename single::saved*>(state);
    const auto N = pr.x.dims[0], C = pr.x.dims[1], HW = single::spatial(pr);
    const auto xv = x.values<T>();
    // Each output's gradient after its ReLU (zeros for an output nothing used).
    auto masked = [&](const tensor& dy, const tensor& y) {
      if (!dy.defined()) return std::vector<T>(xv.size(), T(0));
      auto g = dy.values<T>();
      if (pr.fuse_relu) {
        const auto yv = y.values<T>();
        for (std::size_t i = 0; i < g.size(); ++i) g[i] = ref_detail::relu_grad(g[i], yv[i]);
      }
      return g;
    };
    const std::vector<T> g[2] = {masked(dya, ya), masked(dyb, yb)};
    const std::vector<T> gam[2] = {ga.template values<T>(), gb.template values<T>()};
    auto at = [&](std::int64_t n, std::int64_t c, std::int64_t i) { return static_cast<std::size_t>((n * C + c) * HW + i); };
    std::vector<T> sg[2], sgx[2], dxv(dx ? xv.size() : 0);
    for (int k = 0; k < 2; ++k) sg[k].assign(static_cast<std::size_t>(C), T(0)), sgx[k].assign(static_cast<std::size_t>(C), T(0));
    const T M = static_cast<T>(N * HW);
    for (std::int64_t c = 0; c < C; ++c) {
      const auto cc = static_cast<std::size_t>(c);
      for (std::int64_t n = 0; n < N; ++n)  // one pass: both outputs' sums
        for (std::int64_t i = 0; i < HW; ++i) {
          const auto q = at(n, c, i);
          for (int k = 0; k < 2; ++k) sg[k][cc] += g[k][q], sgx[k][cc] += g[k][q] * (xv[q] - s.mean[cc]) * s.invstd[cc];
        }
      if (!dx) continue;
      for (std::int64_t n = 0; n < N; ++n)  // one pass: dx from both
        for (std::int64_t i = 0; i < HW; ++i) {
          const auto q = at(n, c, i);
          const T xhat = (xv[q] - s.mean[cc]) * s.invstd[cc];
          T d = 0;
          for (int k = 0; k < 2; ++k) d += gam[k][cc] * s.invstd[cc] / M * (M * g[k][q] - sg[k][cc] - xhat * sgx[k][cc]);
          dxv[q] = d;
        }
    }
    if (dx) *dx = ref_detail::like(x, dxv);
    if (dga) *dga = ref_detail::like(ga, sgx[0]);
    if (dba) *dba = ref_detail::like(ga, sg[0]);
    if (dgb) *dgb = ref_detail::like(gb, sgx[1]);
    if (dbb) *dbb = ref_detail::like(gb, sg[1]);
  }
};

}  // namespace grcnn::backends
