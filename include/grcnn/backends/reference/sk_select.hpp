#pragma once
// out[n,c,h,w] = sum_m a[n,m,c] * b_m[n,c,h,w], a = softmax over m of z[n, m*C + c].
#include "grcnn/backends/reference/reference.hpp"

namespace grcnn::backends {

template <class T>
struct kernel<reference<T>, ops::sk_select_op> {
  using P = ops::sk_select_problem;
  static status can_implement(const P&) { return status::yes(); }

  // Attention weights a[n][m][c].
  static std::vector<T> attention(const P& pr, const tensor& logits) {
    const auto N = pr.branch.dims[0], C = pr.branch.dims[1], M = static_cast<std::int64_t>(pr.branches);
    auto z = logits.values<T>();
    std::vector<T> a(z.size());
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t c = 0; c < C; ++c) {
        T mx = z[static_cast<std::size_t>(n * M * C + c)];
        for (std::int64_t m = 1; m < M; ++m) mx = std::max(mx, z[static_cast<std::size_t>((n * M + m) * C + c)]);
        T s = 0;
        for (std::int64_t m = 0; m < M; ++m) s += std::exp(z[static_cast<std::size_t>((n * M + m) * C + c)] - mx);
        for (std::int64_t m = 0; m < M; ++m) {
          const auto i = static_cast<std::size_t>((n * M + m) * C + c);
          a[i] = std::exp(z[i] - mx) / s;
        }
      }
    return a;
  }

  static tensor forward(const P& pr, const std::vector<tensor>& branches, const tensor& logits) {
    const auto N = pr.branch.dims[0], C = pr.branch.dims[1], HW = pr.branch.dims[2] * pr.branch.dims[3];
    const auto a = attention(pr, logits);
    std::vector<T> out(static_cast<std::size_t>(pr.branch.dims.numel()), T(0));
    for (std::size_t m = 0; m < branches.size(); ++m) {
      const auto b = branches[m].values<T>();
      for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t c = 0; c < C; ++c) {
          const T w = a[static_cast<std::size_t>((n * pr.branches + static_cast<std::int64_t>(m)) * C + c)];
          for (std::int64_t i = 0; i < HW; ++i) out[static_cast<std::size_t>((n * C + c) * HW + i)] += w * b[static_cast<std::size_t>((n * C + c) * HW + i)];
        }
    }
    return ref_detail::make(pr.branch, out);
  }

  // d b_m = a_m * g;  d z_m = a_m * (<g, b_m> - sum_k a_k <g, b_k>) per (n, c).
  static void backward(const P& pr, const tensor& dout, const std::vector<tensor>& branches, const tensor& logits,
                       const std::vector<tensor*>& dbranches, tensor* dlogits) {
    const auto N = pr.branch.dims[0], C = pr.branch.dims[1], HW = pr.branch.dims[2] * pr.branch.dims[3];
    const auto M = static_cast<std::size_t>(pr.branches);
    const auto a = attention(pr, logits);
    const auto g = dout.values<T>();
    std::vector<std::vector<T>> b(M);
    for (std::size_t m = 0; m < M; ++m) b[m] = branches[m].values<T>();
    std::vector<T> dz(a.size(), T(0));
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t c = 0; c < C; ++c) {
        std::vector<T> dot(M, T(0));
        for (std::size_t m = 0; m < M; ++m)
          for (std::int64_t i = 0; i < HW; ++i) {
            const auto k = static_cast<std::size_t>((n * C + c) * HW + i);
            dot[m] += g[k] * b[m][k];
          }
        T mean = 0;
        for (std::size_t m = 0; m < M; ++m) mean += a[(static_cast<std::size_t>(n) * M + m) * static_cast<std::size_t>(C) + static_cast<std::size_t>(c)] * dot[m];
        for (std::size_t m = 0; m < M; ++m) {
          const auto i = (static_cast<std::size_t>(n) * M + m) * static_cast<std::size_t>(C) + static_cast<std::size_t>(c);
          dz[i] = a[i] * (dot[m] - mean);
        }
      }
    for (std::size_t m = 0; m < M; ++m) {
      if (!dbranches[m]) continue;
      std::vector<T> db(g.size());
      for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t c = 0; c < C; ++c) {
          const T w = a[(static_cast<std::size_t>(n) * M + m) * static_cast<std::size_t>(C) + static_cast<std::size_t>(c)];
          for (std::int64_t i = 0; i < HW; ++i) {
            const auto k = static_cast<std::size_t>((n * C + c) * HW + i);
            db[k] = w * g[k];
          }
        }
      *dbranches[m] = ref_detail::make(pr.branch, db);
    }
    if (dlogits) *dlogits = ref_detail::make(grcnn::shape{N, static_cast<std::int64_t>(M) * C}, pr.branch.type, dz);
  }
};

}  // namespace grcnn::backends
