#pragma once
// Selective-kernel fusion on the CPU: our own OpenMP loops (oneDNN has no such primitive). Works on
// plain and channels-last branches; the attention is computed once per (sample, channel) in f32.
#include "grcnn/backends/onednn/elementwise.hpp"

namespace grcnn::backends {

template <>
struct kernel<onednn, ops::sk_select_op> {
  using P = ops::sk_select_problem;
  static status can_implement(const P& pr) { return onednn_detail::check_dtype(pr.branch.type); }

  // a[n][m][c] = softmax over m of z[n][m*C + c], in f32.
  template <class T>
  static std::vector<float> attention(const P& pr, const tensor& logits) {
    const auto N = pr.branch.dims[0], C = pr.branch.dims[1], M = static_cast<std::int64_t>(pr.branches);
    const T* z = static_cast<const T*>(logits.raw());
    std::vector<float> a(static_cast<std::size_t>(N * M * C));
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t c = 0; c < C; ++c) {
        float mx = -INFINITY;
        for (std::int64_t m = 0; m < M; ++m) mx = std::max(mx, onednn_detail::to_f32(z[(n * M + m) * C + c]));
        float s = 0;
        for (std::int64_t m = 0; m < M; ++m) s += std::exp(onednn_detail::to_f32(z[(n * M + m) * C + c]) - mx);
        for (std::int64_t m = 0; m < M; ++m)
          a[static_cast<std::size_t>((n * M + m) * C + c)] = std::exp(onednn_detail::to_f32(z[(n * M + m) * C + c]) - mx) / s;
      }
    return a;
  }
  // Calls f(n, c, offset) for every element, in memory order.
  template <class F>
  static void for_each(const P& pr, F&& f) {
    const auto N = pr.branch.dims[0], C = pr.branch.dims[1], HW = pr.branch.dims[2] * pr.branch.dims[3];
    const bool nhwc = pr.branch.memory_layout == layout::nhwc;
    onednn_detail::parallel_for(N * (nhwc ? HW : C), [&](std::int64_t row) {
      if (nhwc) {
        const auto n = row / HW;
        for (std::int64_t c = 0; c < C; ++c) f(n, c, row * C + c);
      } else {
        const auto n = row / C, c = row % C;
        for (std::int64_t i = 0; i < HW; ++i) f(n, c, row * HW + i);
      }
    });
  }

  static tensor forward(const P& pr, const std::vector<tensor>& branches, const tensor& logits) {
    onednn_detail::host_only("sk_select", {&logits});
    for (const auto& t : branches) onednn_detail::host_only("sk_select", {&t});
    tensor out = tensor::empty(pr.branch.dims, pr.branch.type, pr.branch.memory_layout);
    detail::visit_dtype(pr.branch.type, [&]<class T>() {
      if constexpr (std::is_same_v<T, float> || std::is_same_v<T, bf16>) {
        const auto a = attention<T>(pr, logits);
        const auto C = pr.branch.dims[1], M = static_cast<std::int64_t>(pr.branches);
        T* o = static_cast<T*>(out.raw());
        for_each(pr, [&](std::int64_t n, std::int64_t c, std::int64_t k) {
          float acc = 0;
          for (std::int64_t m = 0; m < M; ++m)
            acc += a[static_cast<std::size_t>((n * M + m) * C + c)] * onednn_detail::to_f32(static_cast<const T*>(branches[static_cast<std::size_t>(m)].raw())[k]);
          o[k] = onednn_detail::from_f32<T>(acc);
        });
      } else {
        throw backend_error("onednn sk_select: unsupported dtype");
      }
    });
    return out;
  }

  static void backward(const P& pr, const tensor& dout, const std::vector<tensor>& branches, const tensor& logits,
                       const std::vector<tensor*>& dbranches, tensor* dlogits) {
    detail::visit_dtype(pr.branch.type, [&]<class T>() {
      if constexpr (std::is_same_v<T, float> || std::is_same_v<T, bf16>) {
        const auto N = pr.branch.dims[0], C = pr.branch.dims[1], M = static_cast<std::int64_t>(pr.branches);
        const auto a = attention<T>(pr, logits);
        const T* g = static_cast<const T*>(dout.raw());
        std::vector<T*> db(static_cast<std::size_t>(M), nullptr);
        for (std::int64_t m = 0; m < M; ++m)
          if (dbranches[static_cast<std::size_t>(m)]) {
            *dbranches[static_cast<std::size_t>(m)] = tensor::empty(pr.branch.dims, pr.branch.type, pr.branch.memory_layout);
            db[static_cast<std::size_t>(m)] = static_cast<T*>(dbranches[static_cast<std::size_t>(m)]->raw());
          }
        // <g, b_m> per (n, m, c); each parallel row owns its entries (a sample in channels-last, a
        // (sample, channel) pair in plain), so no two threads write the same one.
        std::vector<double> dot(static_cast<std::size_t>(N * M * C), 0.0);
        const auto HW = pr.branch.dims[2] * pr.branch.dims[3];
        const bool nhwc = pr.branch.memory_layout == layout::nhwc;
        onednn_detail::parallel_for(nhwc ? N : N * C, [&](std::int64_t row) {
          const auto n = nhwc ? row : row / C;
          const std::int64_t c0 = nhwc ? 0 : row % C, c1 = nhwc ? C : c0 + 1;
          for (std::int64_t m = 0; m < M; ++m) {
            const T* b = static_cast<const T*>(branches[static_cast<std::size_t>(m)].raw());
            for (std::int64_t c = c0; c < c1; ++c) {
              double s = 0;
              for (std::int64_t i = 0; i < HW; ++i) {
                const auto k = nhwc ? (n * HW + i) * C + c : (n * C + c) * HW + i;
                s += static_cast<double>(onednn_detail::to_f32(g[k])) * onednn_detail::to_f32(b[k]);
              }
              dot[static_cast<std::size_t>((n * M + m) * C + c)] = s;
            }
          }
        });
        for_each(pr, [&](std::int64_t n, std::int64_t c, std::int64_t k) {
          for (std::int64_t m = 0; m < M; ++m)
            if (db[static_cast<std::size_t>(m)])
              db[static_cast<std::size_t>(m)][k] =
                  onednn_detail::from_f32<T>(a[static_cast<std::size_t>((n * M + m) * C + c)] * onednn_detail::to_f32(g[k]));
        });
        if (dlogits) {
          *dlogits = tensor::empty(grcnn::shape{N, M * C}, pr.branch.type);
          T* dz = static_cast<T*>(dlogits->raw());
          for (std::int64_t n = 0; n < N; ++n)
            for (std::int64_t c = 0; c < C; ++c) {
              double mean = 0;
              for (std::int64_t m = 0; m < M; ++m)
                mean += a[static_cast<std::size_t>((n * M + m) * C + c)] * dot[static_cast<std::size_t>((n * M + m) * C + c)];
              for (std::int64_t m = 0; m < M; ++m) {
                const auto i = static_cast<std::size_t>((n * M + m) * C + c);
                dz[i] = onednn_detail::from_f32<T>(static_cast<float>(a[i] * (dot[i] - mean)));
              }
            }
        }
      } else {
        throw backend_error("onednn sk_select: unsupported dtype");
      }
    });
  }
};

}  // namespace grcnn::backends
