// The selective-kernel fusion: out = sum_m softmax_m(logits) * branch_m over up to 8 branches, any
// strides. The attention is recomputed per element (M exponentials) rather than stored; the logits'
// gradient takes one block per (sample, channel) (deterministic, no atomics).
#include <cfloat>
#include <cmath>

#include "common.cuh"

namespace grcnn::cuda {

using namespace detail;

namespace {

constexpr int kMaxBranches = 8;
template <class T>
struct branch_ptrs {
  const T* p[kMaxBranches];
};
template <class T>
struct out_ptrs {
  T* p[kMaxBranches];
};

__device__ inline void sk_coords(const view4& v, std::int64_t i, std::int64_t& n, std::int64_t& c) {
  if (v.sc == 1) {
    c = i % v.c;
    n = i / (v.c * v.h * v.w);
  } else {
    const std::int64_t r = i / (v.h * v.w);
    c = r % v.c;
    n = r / v.c;
  }
}
template <class T>
__device__ inline void sk_attention(const T* z, std::int64_t n, std::int64_t c, std::int64_t C, int M, float* a) {
  float mx = -FLT_MAX;
  for (int m = 0; m < M; ++m) mx = fmaxf(mx, ld(z[(n * M + m) * C + c]));
  float s = 0.f;
  for (int m = 0; m < M; ++m) {
    a[m] = expf(ld(z[(n * M + m) * C + c]) - mx);
    s += a[m];
  }
  for (int m = 0; m < M; ++m) a[m] /= s;
}
template <class T>
__global__ void k_sk_fwd(view4 v, int M, branch_ptrs<T> b, const T* z, T* out) {
  const std::int64_t total = v.numel();
  GRCNN_GRID_STRIDE(i, total) {
    std::int64_t n, c;
    sk_coords(v, i, n, c);
    float a[kMaxBranches];
    sk_attention(z, n, c, v.c, M, a);
    float s = 0.f;
    for (int m = 0; m < M; ++m) s += a[m] * ld(b.p[m][i]);
    st(out[i], s);
  }
}
template <class T>
__global__ void k_sk_dbranch(view4 v, int M, const T* dout, const T* z, out_ptrs<T> db) {
  const std::int64_t total = v.numel();
  GRCNN_GRID_STRIDE(i, total) {
    std::int64_t n, c;
    sk_coords(v, i, n, c);
    float a[kMaxBranches];
    sk_attention(z, n, c, v.c, M, a);
    for (int m = 0; m < M; ++m)
      if (db.p[m]) st(db.p[m][i], a[m] * ld(dout[i]));
  }
}
// One block per (n, c): dot_m = <g, b_m> over H*W, then dz_m = a_m (dot_m - sum_k a_k dot_k).
template <class T>
__global__ void k_sk_dlogits(view4 v, int M, const T* dout, branch_ptrs<T> b, const T* z, T* dz) {
  const std::int64_t n = blockIdx.x / v.c, c = blockIdx.x % v.c;
  const std::int64_t hw = v.h * v.w;
  float dot[kMaxBranches];
  for (int m = 0; m < M; ++m) dot[m] = 0.f;
  for (std::int64_t j = threadIdx.x; j < hw; j += blockDim.x) {
    const std::int64_t h = j / v.w, w = j % v.w;
    const std::int64_t o = n * v.sn + c * v.sc + h * v.sh + w * v.sw;
    for (int m = 0; m < M; ++m) dot[m] += ld(dout[o]) * ld(b.p[m][o]);
  }
  for (int m = 0; m < M; ++m) dot[m] = block_sum(dot[m]);
  if (threadIdx.x == 0) {
    float a[kMaxBranches];
    sk_attention(z, n, c, v.c, M, a);
    float mean = 0.f;
    for (int m = 0; m < M; ++m) mean += a[m] * dot[m];
    for (int m = 0; m < M; ++m) st(dz[(n * M + m) * v.c + c], a[m] * (dot[m] - mean));
  }
}

}  // namespace

template <storage S>
void sk_select_forward(const view4& v, int M, const S* const* branch_ptrs_in, const S* logits, S* out) {
  GRCNN_PROFILE("sk_select");
  if (M > kMaxBranches) throw backend_error("cuda sk_select: at most 8 branches");
  using T = device_t<S>;
  branch_ptrs<T> b{};
  for (int m = 0; m < M; ++m) b.p[m] = dev(branch_ptrs_in[m]);
  k_sk_fwd<<<blocks_for(v.numel()), 256, 0, stream()>>>(v, M, b, dev(logits), dev(out));
  check_last_launch("sk_select forward");
}
template <storage S>
void sk_select_backward(const view4& v, int M, const S* dout, const S* const* branch_ptrs_in, const S* logits,
                        S* const* dbranch_ptrs, S* dlogits) {
  GRCNN_PROFILE("sk_select backward");
  if (M > kMaxBranches) throw backend_error("cuda sk_select: at most 8 branches");
  using T = device_t<S>;
  branch_ptrs<T> b{};
  out_ptrs<T> db{};
  bool any = false;
  for (int m = 0; m < M; ++m) {
    b.p[m] = dev(branch_ptrs_in[m]);
    db.p[m] = dbranch_ptrs[m] ? dev(dbranch_ptrs[m]) : nullptr;
    any = any || db.p[m];
  }
  if (any) {
    k_sk_dbranch<<<blocks_for(v.numel()), 256, 0, stream()>>>(v, M, dev(dout), dev(logits), db);
    check_last_launch("sk_select branch gradients");
  }
  if (dlogits && v.n * v.c > 0) {
    k_sk_dlogits<<<static_cast<unsigned>(v.n * v.c), 128, 0, stream()>>>(v, M, dev(dout), b, dev(logits), dev(dlogits));
    check_last_launch("sk_select logit gradients");
  }
}
template void sk_select_forward<float>(const view4&, int, const float* const*, const float*, float*);
template void sk_select_forward<bf16>(const view4&, int, const bf16* const*, const bf16*, bf16*);
template void sk_select_backward<float>(const view4&, int, const float*, const float* const*, const float*,
                                        float* const*, float*);
template void sk_select_backward<bf16>(const view4&, int, const bf16*, const bf16* const*, const bf16*, bf16* const*,
                                       bf16*);

}  // namespace grcnn::cuda
