// Row-wise kernels over [N, K]: softmax / log-softmax, cross-entropy with hard or soft targets and
// label smoothing, KL divergence (batchmean), the Jensen-Shannon consistency loss and the grouped
// log-sum-exp. One block per row; the batch means are reduced by a second single-block kernel
// (deterministic, no atomics).
#include <cfloat>
#include <cmath>

#include "common.cuh"

namespace grcnn::cuda {

using namespace detail;

namespace {

constexpr int kRowThreads = 256;

__global__ void k_softmax(const float* x, float* y, std::int64_t k, bool log) {
  const float* row = x + blockIdx.x * k;
  float* out = y + blockIdx.x * k;
  float mx = -FLT_MAX;
  for (std::int64_t j = threadIdx.x; j < k; j += blockDim.x) mx = fmaxf(mx, row[j]);
  mx = block_max(mx, -FLT_MAX);
  float s = 0.f;
  for (std::int64_t j = threadIdx.x; j < k; j += blockDim.x) s += expf(row[j] - mx);
  s = block_sum(s);
  const float lse = mx + logf(s);
  for (std::int64_t j = threadIdx.x; j < k; j += blockDim.x) out[j] = log ? row[j] - lse : expf(row[j] - lse);
}
__global__ void k_softmax_bwd(const float* dy, const float* y, float* dx, std::int64_t k, bool log) {
  const std::int64_t o = blockIdx.x * k;
  float s = 0.f;
  for (std::int64_t j = threadIdx.x; j < k; j += blockDim.x) s += log ? dy[o + j] : dy[o + j] * y[o + j];
  s = block_sum(s);
  for (std::int64_t j = threadIdx.x; j < k; j += blockDim.x)
    dx[o + j] = log ? dy[o + j] - expf(y[o + j]) * s : y[o + j] * (dy[o + j] - s);
}

__global__ void k_ce_rows(const float* logits, const std::int64_t* labels, const float* soft, float eps, std::int64_t k,
                          float* prob, float* q, float* row_loss) {
  const std::int64_t o = blockIdx.x * k;
  float mx = -FLT_MAX;
  for (std::int64_t j = threadIdx.x; j < k; j += blockDim.x) mx = fmaxf(mx, logits[o + j]);
  mx = block_max(mx, -FLT_MAX);
  float s = 0.f;
  for (std::int64_t j = threadIdx.x; j < k; j += blockDim.x) s += expf(logits[o + j] - mx);
  s = block_sum(s);
  const float lse = mx + logf(s);
  const std::int64_t label = labels ? labels[blockIdx.x] : -1;
  const float uniform = eps / static_cast<float>(k);
  float loss = 0.f;
  for (std::int64_t j = threadIdx.x; j < k; j += blockDim.x) {
    const float logp = logits[o + j] - lse;
    const float t = labels ? uniform + (j == label ? 1.f - eps : 0.f) : soft[o + j] * (1.f - eps) + uniform;
    q[o + j] = t;
    prob[o + j] = expf(logp);
    // A hard label's zero weights are no terms (PyTorch's nll_loss): a -Inf log-probability there keeps
    // the loss finite; a soft target's are (0 * -Inf = NaN, as in PyTorch).
    if (!labels || t != 0.f) loss -= t * logp;
  }
  loss = block_sum(loss);
  if (threadIdx.x == 0) row_loss[blockIdx.x] = loss;
}
// out[0] = sum(v[0..n)) / divisor, one block, accumulated in T (float, or double for the JSD).
template <class T>
__global__ void k_mean_of(const T* v, std::int64_t n, T divisor, float* out) {
  T s = T(0);
  for (std::int64_t j = threadIdx.x; j < n; j += blockDim.x) s += v[j];
  s = block_sum(s);
  if (threadIdx.x == 0) out[0] = static_cast<float>(s / divisor);
}
__global__ void k_ce_bwd(const float* dloss, const float* prob, const float* q, float* d, std::int64_t k, float inv_n) {
  const std::int64_t o = blockIdx.x * k;
  float qs = 0.f;
  for (std::int64_t j = threadIdx.x; j < k; j += blockDim.x) qs += q[o + j];
  qs = block_sum(qs);
  const float g = dloss[0] * inv_n;
  for (std::int64_t j = threadIdx.x; j < k; j += blockDim.x) d[o + j] = g * (prob[o + j] * qs - q[o + j]);
}

// PyTorch's pointwise KL: xlogy(t, t) - t * x (NaN and 0 * -Inf give NaN), and its derivative in t,
// log t + t / t - x (NaN where t is 0, NaN or infinite).
__device__ inline float kl_pointwise(float x, float t) { return (t == 0.f ? 0.f : t * logf(t)) - t * x; }
__device__ inline float kl_target_slope(float x, float t) { return (t == 0.f ? 0.f : logf(t)) + t / t - x; }
__global__ void k_kl_partials(const float* x, const float* t, std::int64_t n, float* partials) {
  float s = 0.f;
  GRCNN_GRID_STRIDE(i, n) { s += kl_pointwise(x[i], t[i]); }
  s = block_sum(s);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}
__global__ void k_kl_bwd(const float* dloss, const float* x, const float* t, float* dx, float* dt, std::int64_t n,
                         float inv_rows) {
  const float g = dloss[0] * inv_rows;
  GRCNN_GRID_STRIDE(i, n) {
    if (dx) dx[i] = -g * t[i];
    if (dt) dt[i] = g * kl_target_slope(x[i], t[i]);
  }
}

// ---- Jensen-Shannon over V views stacked along the batch ----
// In double throughout: with saturated softmaxes the gradient is a small difference of O(1) terms,
// which f32 would lose (these are [N, K] problems; the cost is nil next to the network).
// Log-softmax of each row of [rows, k] into logp (double).
__global__ void k_js_log_softmax(const float* x, double* logp, std::int64_t k) {
  const float* row = x + blockIdx.x * k;
  double mx = -DBL_MAX;
  for (std::int64_t j = threadIdx.x; j < k; j += blockDim.x) mx = fmax(mx, static_cast<double>(row[j]));
  mx = block_max(mx, -DBL_MAX);
  double s = 0.0;
  for (std::int64_t j = threadIdx.x; j < k; j += blockDim.x) s += exp(static_cast<double>(row[j]) - mx);
  s = block_sum(s);
  const double lse = mx + log(s);
  for (std::int64_t j = threadIdx.x; j < k; j += blockDim.x) logp[blockIdx.x * k + j] = static_cast<double>(row[j]) - lse;
}
// One block per row n of a view: g = d loss / d p without the 1/(V N) (p log p counts 0 where p = 0,
// where g is NaN as PyTorch's xlogy derivative (0 / 0); the clamp passes the mixture's gradient only
// inside [1e-7, 1]) and the row's sum of KLs (PyTorch's xlogy(p, p) - p log m: NaN stays NaN).
__global__ void k_js_rows(const double* logp, std::int64_t n_rows, int views, std::int64_t k, double* g,
                          double* row_loss) {
  const std::int64_t n = blockIdx.x;
  double loss = 0.0;
  for (std::int64_t j = threadIdx.x; j < k; j += blockDim.x) {
    double M = 0.0;
    for (int v = 0; v < views; ++v) M += exp(logp[(v * n_rows + n) * k + j]);
    M /= static_cast<double>(views);
    const double m = fmin(fmax(M, 1e-7), 1.0), logm = log(m);
    const double through = (M >= 1e-7 && M <= 1.0) ? M / m : 0.0;
    for (int v = 0; v < views; ++v) {
      const std::int64_t i = (v * n_rows + n) * k + j;
      const double p = exp(logp[i]);
      loss += (p == 0.0 ? 0.0 : p * logp[i]) - p * logm;
      g[i] = (p == 0.0 ? 0.0 : logp[i]) + p / p - logm - through;
    }
  }
  loss = block_sum(loss);
  if (threadIdx.x == 0) row_loss[n] = loss;
}
// unit = scale * p * (g - sum_k p g): through the softmax, one block per row of [V*N, K].
__global__ void k_js_grad(const double* logp, const double* g, float* unit, std::int64_t k, double scale) {
  const std::int64_t o = blockIdx.x * k;
  double s = 0.0;
  for (std::int64_t j = threadIdx.x; j < k; j += blockDim.x) s += exp(logp[o + j]) * g[o + j];
  s = block_sum(s);
  for (std::int64_t j = threadIdx.x; j < k; j += blockDim.x)
    unit[o + j] = static_cast<float>(scale * exp(logp[o + j]) * (g[o + j] - s));
}
__global__ void k_scale_by(const float* factor, const float* src, float* dst, std::int64_t n) {
  const float f = factor[0];
  GRCNN_GRID_STRIDE(i, n) dst[i] = f * src[i];
}

// ---- grouped log-sum-exp: one thread per (row, group) over the row's columns ----
__global__ void k_group_lse(const float* x, const std::int64_t* group, std::int64_t rows, std::int64_t k,
                            std::int64_t groups, float* y) {
  GRCNN_GRID_STRIDE(i, rows * groups) {
    const std::int64_t n = i / groups, s = i % groups;
    const float* row = x + n * k;
    float mx = -INFINITY;
    for (std::int64_t j = 0; j < k; ++j)
      if (group[j] == s) mx = fmaxf(mx, row[j]);
    // PyTorch's logsumexp shifts by 0 where the maximum is infinite: +Inf in a group gives +Inf, a group
    // all -Inf gives -Inf (not exp(Inf - Inf) = NaN).
    if (isinf(mx)) mx = 0.f;
    float sum = 0.f;
    for (std::int64_t j = 0; j < k; ++j)
      if (group[j] == s) sum += expf(row[j] - mx);
    y[i] = mx + logf(sum);
  }
}
__global__ void k_group_lse_bwd(const float* dy, const float* x, const float* y, const std::int64_t* group, std::int64_t rows,
                                std::int64_t k, std::int64_t groups, float* dx) {
  GRCNN_GRID_STRIDE(i, rows * k) {
    const std::int64_t n = i / k, s = group[i % k];
    dx[i] = s >= 0 ? dy[n * groups + s] * expf(x[i] - y[n * groups + s]) : 0.f;
  }
}

}  // namespace

void softmax_forward(const float* x, float* y, std::int64_t rows, std::int64_t k, bool log) {
  GRCNN_PROFILE("softmax");
  if (rows == 0) return;
  k_softmax<<<static_cast<unsigned>(rows), kRowThreads, 0, stream()>>>(x, y, k, log);
  check_last_launch("softmax forward");
}
void softmax_backward(const float* dy, const float* y, float* dx, std::int64_t rows, std::int64_t k, bool log) {
  GRCNN_PROFILE("softmax backward");
  if (rows == 0 || k == 0) return;
  k_softmax_bwd<<<static_cast<unsigned>(rows), kRowThreads, 0, stream()>>>(dy, y, dx, k, log);
  check_last_launch("softmax backward");
}
void cross_entropy_forward(const float* logits, const std::int64_t* labels, const float* soft_target, double smoothing,
                           std::int64_t rows, std::int64_t k, float* loss, float* prob, float* q) {
  GRCNN_PROFILE("cross_entropy");
  if (rows == 0 || k == 0) {  // the mean over no rows is NaN, as on the reference backend
    fill(loss, NAN, 1);
    return;
  }
  scratch row_loss(static_cast<std::size_t>(rows) * sizeof(float));
  k_ce_rows<<<static_cast<unsigned>(rows), kRowThreads, 0, stream()>>>(logits, labels, soft_target,
                                                                      static_cast<float>(smoothing), k, prob, q,
                                                                      row_loss.as<float>());
  check_last_launch("cross_entropy rows");
  k_mean_of<<<1, 1024, 0, stream()>>>(row_loss.as<float>(), rows, static_cast<float>(rows), loss);
  check_last_launch("cross_entropy mean");
}
void cross_entropy_backward(const float* dloss, const float* prob, const float* q, float* dlogits, std::int64_t rows,
                            std::int64_t k) {
  GRCNN_PROFILE("cross_entropy backward");
  if (rows == 0 || k == 0) return;
  k_ce_bwd<<<static_cast<unsigned>(rows), kRowThreads, 0, stream()>>>(dloss, prob, q, dlogits, k,
                                                                     1.f / static_cast<float>(rows));
  check_last_launch("cross_entropy backward");
}
void kl_div_forward(const float* x, const float* t, float* loss, std::int64_t rows, std::int64_t k) {
  GRCNN_PROFILE("kl_div");
  const std::int64_t n = rows * k;
  const int blocks = blocks_for(n);
  scratch partials(static_cast<std::size_t>(blocks) * sizeof(float));
  k_kl_partials<<<blocks, 256, 0, stream()>>>(x, t, n, partials.as<float>());
  check_last_launch("kl_div partials");
  k_mean_of<<<1, 1024, 0, stream()>>>(partials.as<float>(), blocks, static_cast<float>(rows), loss);
  check_last_launch("kl_div mean");
}
void kl_div_backward(const float* dloss, const float* x, const float* t, float* dx, float* dt, std::int64_t rows,
                     std::int64_t k) {
  GRCNN_PROFILE("kl_div backward");
  const std::int64_t n = rows * k;
  k_kl_bwd<<<blocks_for(n), 256, 0, stream()>>>(dloss, x, t, dx, dt, n, 1.f / static_cast<float>(rows));
  check_last_launch("kl_div backward");
}

void jensen_shannon_forward(const float* logits, std::int64_t rows, std::int64_t k, int views, float* loss,
                            float* grad_unit) {
  GRCNN_PROFILE("jensen_shannon");
  const std::int64_t n = rows / views;
  scratch logp(static_cast<std::size_t>(rows * k) * sizeof(double)), g(static_cast<std::size_t>(rows * k) * sizeof(double)),
      row_loss(static_cast<std::size_t>(n) * sizeof(double));
  k_js_log_softmax<<<static_cast<unsigned>(rows), kRowThreads, 0, stream()>>>(logits, logp.as<double>(), k);
  check_last_launch("jensen_shannon log-softmax");
  k_js_rows<<<static_cast<unsigned>(n), kRowThreads, 0, stream()>>>(logp.as<double>(), n, views, k, g.as<double>(),
                                                                   row_loss.as<double>());
  check_last_launch("jensen_shannon rows");
  k_mean_of<<<1, 1024, 0, stream()>>>(row_loss.as<double>(), n, static_cast<double>(rows), loss);
  check_last_launch("jensen_shannon mean");
  k_js_grad<<<static_cast<unsigned>(rows), kRowThreads, 0, stream()>>>(logp.as<double>(), g.as<double>(), grad_unit, k,
                                                                      1.0 / static_cast<double>(rows));
  check_last_launch("jensen_shannon gradient");
}
void scale_by_device_scalar(const float* factor, const float* src, float* dst, std::int64_t n) {
  if (n == 0) return;
  k_scale_by<<<blocks_for(n), 256, 0, stream()>>>(factor, src, dst, n);
  check_last_launch("scale by scalar");
}
void group_logsumexp_forward(const float* x, const std::int64_t* group, std::int64_t rows, std::int64_t k,
                             std::int64_t groups, float* y) {
  GRCNN_PROFILE("group_logsumexp");
  if (rows * groups == 0) return;
  k_group_lse<<<blocks_for(rows * groups), 256, 0, stream()>>>(x, group, rows, k, groups, y);
  check_last_launch("group_logsumexp");
}
void group_logsumexp_backward(const float* dy, const float* x, const float* y, const std::int64_t* group, std::int64_t rows,
                              std::int64_t k, std::int64_t groups, float* dx) {
  GRCNN_PROFILE("group_logsumexp backward");
  if (rows * k == 0) return;
  k_group_lse_bwd<<<blocks_for(rows * k), 256, 0, stream()>>>(dy, x, y, group, rows, k, groups, dx);
  check_last_launch("group_logsumexp backward");
}

}  // namespace grcnn::cuda
