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
  static std::size_t at(const P& pr, std::int64_t n, std::int64_t c, std::int64_t i) {
    return static_cast<std::size_t>((n * pr.x.dims[1] + c) * spatial(pr) + i);
  }

  // The batch's mean and inverse standard deviation per channel (into s), and its biased variance.
  static std::vector<T> batch_statistics(const P& pr, const std::vector<T>& xv, saved& s) {
    const auto N = pr.x.dims[0], C = pr.x.dims[1], HW = spatial(pr);
    const T M = static_cast<T>(N * HW);
    std::vector<T> var(static_cast<std::size_t>(C));
    s.mean.assign(static_cast<std::size_t>(C), T(0));
    s.invstd.assign(static_cast<std::size_t>(C), T(0));
    for (std::int64_t c = 0; c < C; ++c) {
      T sum = 0;
      for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t i = 0; i < HW; ++i) sum += xv[at(pr, n, c, i)];
      const T mean = sum / M;
      T sq = 0;
      for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t i = 0; i < HW; ++i) sq += (xv[at(pr, n, c, i)] - mean) * (xv[at(pr, n, c, i)] - mean);
      const auto cc = static_cast<std::size_t>(c);
      var[cc] = sq / M;
      s.mean[cc] = mean;
      s.invstd[cc] = T(1) / std::sqrt(var[cc] + static_cast<T>(pr.eps));
    }
    return var;
  }
  // PyTorch's running update (the unbiased variance for the running estimate).
  static void update_running(const P& pr, const saved& s, const std::vector<T>& var, tensor& running_mean, tensor& running_var) {
    const T M = static_cast<T>(pr.x.dims[0] * spatial(pr)), m = static_cast<T>(pr.momentum);
    auto rm = running_mean.values<T>(), rv = running_var.values<T>();
    for (std::size_t c = 0; c < var.size(); ++c) {
      rm[c] = (T(1) - m) * rm[c] + m * s.mean[c];
      rv[c] = (T(1) - m) * rv[c] + m * (M > 1 ? var[c] * M / (M - 1) : var[c]);
    }
    running_mean.assign(std::span<const T>(rm));
    running_var.assign(std::span<const T>(rv));
  }
  // y = (x - mean) invstd gamma + beta, then the ReLU where fused.
  static tensor normalize(const P& pr, const std::vector<T>& xv, const saved& s, const tensor& gamma, const tensor& beta) {
    const auto N = pr.x.dims[0], C = pr.x.dims[1], HW = spatial(pr);
    const auto gv = gamma.values<T>(), bv = beta.values<T>();
    std::vector<T> y(xv.size());
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t c = 0; c < C; ++c) {
        const auto cc = static_cast<std::size_t>(c);
        for (std::int64_t i = 0; i < HW; ++i) {
          const T v = (xv[at(pr, n, c, i)] - s.mean[cc]) * s.invstd[cc] * gv[cc] + bv[cc];
          y[at(pr, n, c, i)] = pr.fuse_relu ? ref_detail::relu(v) : v;
        }
      }
    return ref_detail::make(pr.x, y);
  }
  // The output gradient behind the fused ReLU.
  static std::vector<T> masked(const P& pr, const tensor& dy, const tensor& y) {
    auto g = dy.values<T>();
    if (pr.fuse_relu) {
      const auto yv = y.values<T>();
      for (std::size_t i = 0; i < g.size(); ++i) g[i] = ref_detail::relu_grad(g[i], yv[i]);
    }
    return g;
  }

  static tensor forward(const P& pr, const tensor& x, const tensor& gamma, const tensor& beta, tensor& running_mean,
                        tensor& running_var, std::unique_ptr<autograd::payload>& state) {
    const auto xv = x.values<T>();
    auto s = std::make_unique<saved>();
    if (pr.training) {
      update_running(pr, *s, batch_statistics(pr, xv, *s), running_mean, running_var);
    } else {
      const auto rm = running_mean.values<T>(), rv = running_var.values<T>();
      s->mean.assign(rm.begin(), rm.end());
      s->invstd.resize(rv.size());
      for (std::size_t c = 0; c < rv.size(); ++c) s->invstd[c] = T(1) / std::sqrt(rv[c] + static_cast<T>(pr.eps));
    }
    tensor y = normalize(pr, xv, *s, gamma, beta);
    state = std::move(s);
    return y;
  }

  static void backward(const P& pr, autograd::payload* state, const tensor& dy, const tensor& x, const tensor& y,
                       const tensor& gamma, tensor* dx, tensor* dgamma, tensor* dbeta) {
    const auto& s = *static_cast<saved*>(state);
    const auto N = pr.x.dims[0], C = pr.x.dims[1], HW = spatial(pr);
    const auto g = masked(pr, dy, y);
    const auto xv = x.values<T>(), gv = gamma.values<T>();
    const auto at = [&](std::int64_t n, std::int64_t c, std::int64_t i) { return kernel::at(pr, n, c, i); };
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
    return kernel<reference<T>, ops::batch_norm_op>::masked(pr, dy, y);
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
    const auto xv = x.values<T>();
    auto s = std::make_unique<typename single::saved>();
    const std::vector<T> var = single::batch_statistics(pr, xv, *s);
    single::update_running(pr, *s, var, rma, rva);
    single::update_running(pr, *s, var, rmb, rvb);
    std::array<tensor, 2> out{single::normalize(pr, xv, *s, ga, ba), single::normalize(pr, xv, *s, gb, bb)};
    state = std::move(s);
    return out;
  }

  static void backward(const P& pr, autograd::payload* state, const tensor& dya, const tensor& dyb, const tensor& x,
                       const tensor& ya, const tensor& yb, const tensor& ga, const tensor& gb, tensor* dx, tensor* dga,
                       tensor* dba, tensor* dgb, tensor* dbb) {
    const auto& s = *static_cast<typename single::saved*>(state);
    const auto N = pr.x.dims[0], C = pr.x.dims[1], HW = single::spatial(pr);
    const auto xv = x.values<T>();
    // Each output's gradient behind its ReLU (zeros for an output nothing used).
    auto masked = [&](const tensor& dy, const tensor& y) { return dy.defined() ? single::masked(pr, dy, y) : std::vector<T>(xv.size(), T(0)); };
    const std::vector<T> g[2] = {masked(dya, ya), masked(dyb, yb)};
    const std::vector<T> gam[2] = {ga.template values<T>(), gb.template values<T>()};
    const auto at = [&](std::int64_t n, std::int64_t c, std::int64_t i) { return single::at(pr, n, c, i); };
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
