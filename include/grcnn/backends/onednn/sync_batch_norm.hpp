#pragma once
// The per-rank passes of the synchronised batch norm (ops/batch_norm.hpp) on the CPU. oneDNN's batch
// norm computes its statistics and its backward's reductions inside one primitive, with no point between
// them where another rank's sums could enter, so these are our own loops: sums in double per plane
// (NCHW) or per fixed block of rows (channels-last), combined in a fixed order whatever the thread count;
// the elementwise passes in f32 (bf16 storage converted on the way in and out), ReLU as PyTorch's (NaN
// kept, its gradient passed where the output is NaN).
#include <algorithm>
#include <span>
#include <vector>

#include "grcnn/backends/onednn/context.hpp"

namespace grcnn::backends {

template <>
struct kernel<onednn, ops::sync_batch_norm_op> {
  using P = ops::batch_norm_problem;
  static status can_implement(const P& pr) {
    if (pr.param_type != dtype::f32) return status::no("oneDNN batch norm keeps its parameters in f32");
    return onednn_detail::check_dtype(pr.x.type);
  }

  // The element order: `rows` of C channels (channels-last, or [N, C]) or planes of HW values of one
  // channel (NCHW; plane p holds channel p % C).
  struct walk {
    std::int64_t C, HW, rows_or_planes, len;
    bool channels_last;
    explicit walk(const P& pr)
        : C(pr.x.dims[1]),
          HW(pr.x.dims.rank() == 4 ? pr.x.dims[2] * pr.x.dims[3] : 1),
          rows_or_planes(0),
          len(0),
          channels_last(pr.x.memory_layout == layout::nhwc || HW == 1) {
      const std::int64_t n = pr.x.dims.numel();
      len = channels_last ? C : HW;
      rows_or_planes = len > 0 ? n / len : 0;
    }
  };
  static constexpr std::int64_t row_blocks = 64;  // channels-last partial sums: fixed, so the order is too

  // Per-channel sums of f(value index, channel) in double: per plane or per block of rows in parallel,
  // then added in plane/block order.
  template <class F>
  static std::vector<double> channel_sums(const walk& w, F&& f) {
    const auto C = static_cast<std::size_t>(w.C);
    if (w.channels_last) {
      const std::int64_t blocks = std::min<std::int64_t>(row_blocks, std::max<std::int64_t>(w.rows_or_planes, 1));
      std::vector<double> part(static_cast<std::size_t>(blocks) * C, 0.0);
#pragma omp parallel for schedule(static)
      for (std::int64_t b = 0; b < blocks; ++b) {
        double* acc = part.data() + static_cast<std::size_t>(b) * C;
        const std::int64_t lo = w.rows_or_planes * b / blocks, hi = w.rows_or_planes * (b + 1) / blocks;
        for (std::int64_t r = lo; r < hi; ++r)
          for (std::int64_t c = 0; c < w.C; ++c) acc[c] += f(r * w.C + c, c);
      }
      std::vector<double> out(C, 0.0);
      for (std::int64_t b = 0; b < blocks; ++b)
        for (std::size_t c = 0; c < C; ++c) out[c] += part[static_cast<std::size_t>(b) * C + c];
      return out;
    }
    std::vector<double> part(static_cast<std::size_t>(w.rows_or_planes), 0.0);
#pragma omp parallel for schedule(static)
    for (std::int64_t p = 0; p < w.rows_or_planes; ++p) {
      double acc = 0;
      const std::int64_t c = p % w.C;
      for (std::int64_t i = 0; i < w.HW; ++i) acc += f(p * w.HW + i, c);
      part[static_cast<std::size_t>(p)] = acc;
    }
    std::vector<double> out(C, 0.0);
    for (std::int64_t p = 0; p < w.rows_or_planes; ++p) out[static_cast<std::size_t>(p % w.C)] += part[static_cast<std::size_t>(p)];
    return out;
  }
  // out[i] = f(value index, channel) for every element, in parallel.
  template <class F>
  static void each(const walk& w, F&& f) {
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < w.rows_or_planes; ++r)
      for (std::int64_t i = 0; i < w.len; ++i) f(r * w.len + i, w.channels_last ? i : r % w.C);
  }
  // Calls f.template operator()<S>() with S the storage type of the activations.
  template <class F>
  static decltype(auto) with_storage(const P& pr, F&& f) {
    if (pr.x.type == dtype::f32) return f.template operator()<float>();
    return f.template operator()<bf16>();
  }
  static std::vector<float> as_f32(const std::vector<double>& v) { return {v.begin(), v.end()}; }

  static void batch_statistics(const P& pr, const tensor& x, std::vector<double>& mean, std::vector<double>& var) {
    onednn_detail::host_only("sync_batch_norm", {&x});
    const walk w(pr);
    const double M = static_cast<double>(w.C > 0 ? pr.x.dims.numel() / w.C : 0);
    with_storage(pr, [&]<class S>() {
      const S* xv = static_cast<const S*>(x.raw());
      mean = channel_sums(w, [&](std::int64_t k, std::int64_t) { return static_cast<double>(onednn_detail::to_f32(xv[k])); });
      for (auto& m : mean) m = M > 0 ? m / M : 0.0;
      var = channel_sums(w, [&](std::int64_t k, std::int64_t c) {
        const double d = static_cast<double>(onednn_detail::to_f32(xv[k])) - mean[static_cast<std::size_t>(c)];
        return d * d;
      });
      for (auto& v : var) v = M > 0 ? v / M : 0.0;
    });
  }

  static tensor normalize(const P& pr, const tensor& x, const tensor& gamma, const tensor& beta,
                          const std::vector<double>& mean, const std::vector<double>& invstd) {
    onednn_detail::host_only("sync_batch_norm", {&x, &gamma, &beta});
    const walk w(pr);
    const float *g = gamma.data<float>(), *b = beta.data<float>();
    std::vector<float> m = as_f32(mean), k(mean.size());
    for (std::size_t c = 0; c < k.size(); ++c) k[c] = static_cast<float>(invstd[c] * static_cast<double>(g[c]));
    tensor y = tensor::empty(pr.x.dims, pr.x.type, pr.x.memory_layout);
    with_storage(pr, [&]<class S>() {
      const S* xv = static_cast<const S*>(x.raw());
      S* yv = static_cast<S*>(y.raw());
      each(w, [&](std::int64_t i, std::int64_t c) {
        const float v = (onednn_detail::to_f32(xv[i]) - m[static_cast<std::size_t>(c)]) * k[static_cast<std::size_t>(c)] + b[c];
        yv[i] = onednn_detail::from_f32<S>(pr.fuse_relu && v <= 0.f ? 0.f : v);
      });
    });
    return y;
  }

  // dy where the fused ReLU passed it (y > 0 or NaN), else 0.
  template <class S>
  static float grad_at(const P& pr, const S* dy, const S* y, std::int64_t i) {
    return pr.fuse_relu && onednn_detail::to_f32(y[i]) <= 0.f ? 0.f : onednn_detail::to_f32(dy[i]);
  }

  static void gradient_sums(const P& pr, const tensor& dy, const tensor& x, const tensor& y,
                            const std::vector<double>& mean, std::span<double> sum_dy, std::span<double> sum_dy_xmu) {
    onednn_detail::host_only("sync_batch_norm", {&dy, &x});
    const walk w(pr);
    with_storage(pr, [&]<class S>() {
      const S *d = static_cast<const S*>(dy.raw()), *xv = static_cast<const S*>(x.raw());
      const S* yv = pr.fuse_relu ? static_cast<const S*>(y.raw()) : nullptr;
      const auto a = channel_sums(w, [&](std::int64_t i, std::int64_t) { return static_cast<double>(grad_at(pr, d, yv, i)); });
      const auto b = channel_sums(w, [&](std::int64_t i, std::int64_t c) {
        return static_cast<double>(grad_at(pr, d, yv, i)) *
               (static_cast<double>(onednn_detail::to_f32(xv[i])) - mean[static_cast<std::size_t>(c)]);
      });
      std::copy(a.begin(), a.end(), sum_dy.begin());
      std::copy(b.begin(), b.end(), sum_dy_xmu.begin());
    });
  }

  static tensor input_gradient(const P& pr, const tensor& dy, const tensor& x, const tensor& y, const tensor& gamma,
                               const std::vector<double>& mean, const std::vector<double>& invstd,
                               const std::vector<double>& mean_dy, const std::vector<double>& mean_dy_xmu) {
    onednn_detail::host_only("sync_batch_norm", {&dy, &x, &gamma});
    const walk w(pr);
    const float* g = gamma.data<float>();
    const std::size_t C = mean.size();
    std::vector<float> m = as_f32(mean), a = as_f32(mean_dy), f1(C), f2(C);
    for (std::size_t c = 0; c < C; ++c) {
      f1[c] = static_cast<float>(invstd[c] * invstd[c] * mean_dy_xmu[c]);
      f2[c] = static_cast<float>(static_cast<double>(g[c]) * invstd[c]);
    }
    tensor dx = tensor::empty(pr.x.dims, pr.x.type, pr.x.memory_layout);
    with_storage(pr, [&]<class S>() {
      const S *d = static_cast<const S*>(dy.raw()), *xv = static_cast<const S*>(x.raw());
      const S* yv = pr.fuse_relu ? static_cast<const S*>(y.raw()) : nullptr;
      S* o = static_cast<S*>(dx.raw());
      each(w, [&](std::int64_t i, std::int64_t c) {
        const auto cc = static_cast<std::size_t>(c);
        o[i] = onednn_detail::from_f32<S>((grad_at(pr, d, yv, i) - a[cc] - (onednn_detail::to_f32(xv[i]) - m[cc]) * f1[cc]) * f2[cc]);
      });
    });
    return dx;
  }
};

}  // namespace grcnn::backends
