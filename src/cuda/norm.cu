// Batch normalisation (+ ReLU), single and paired (ops::paired_batch_norm: two outputs from one read
// of x), over any [N, C, H, W] strides: our own kernels. Channel statistics are reduced with double
// partials, so large batches keep the accuracy of the reference backend's two-pass form: in one read
// for packed channels-last tensors (Welford relative to the channel's first value, Chan merges; an
// outlier first value costs some of that accuracy), else in two passes (mean, then centred squares).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <type_traits>

#include "common.cuh"
#include "elementwise.cuh"

namespace grcnn::cuda {

using namespace detail;

namespace {

constexpr int kRowsPerBlock = 8;   // blockDim.y
constexpr int kChannelsPerBlock = 32;  // blockDim.x

// Index arithmetic in I: 32-bit whenever the tensor has fewer than 2^31 elements (64-bit division
// costs several times more instructions than the memory traffic of these kernels allows).
// Physical offset of (row r = (n, h, w), channel c).
template <class I>
__device__ inline I offset_of(const view4& v, I r, I c) {
  if (v.sc == 1 && v.sw == v.c) return r * static_cast<I>(v.c) + c;  // channels-last: rows are contiguous
  const I hw = static_cast<I>(v.h * v.w), w = static_cast<I>(v.w);
  const I n = r / hw, rem = r - n * hw, h = rem / w, x = rem - h * w;
  return n * static_cast<I>(v.sn) + c * static_cast<I>(v.sc) + h * static_cast<I>(v.sh) + x * static_cast<I>(v.sw);
}
// Channel of physical element i for the two layouts we build views for (channels-last or plain).
template <class I>
__device__ inline I channel_of(const view4& v, I i) {
  return v.sc == 1 ? i % static_cast<I>(v.c) : (i / static_cast<I>(v.h * v.w)) % static_cast<I>(v.c);
}

// The per-element arithmetic of batch norm's two elementwise passes, shared by the scalar and the packed
// kernels (so both give the same bits).
// Explicit roundings (the _rn intrinsics are never contracted): ptxas may not fuse them differently in
// different kernels.
// The ReLU keeps NaN (NaN < 0 is false), as PyTorch's.
__device__ __forceinline__ float bn_out(float x, float mean, float invstd, float gamma, float beta, bool relu) {
  const float r = __fmaf_rn(__fmul_rn(__fsub_rn(x, mean), invstd), gamma, beta);
  return relu && r < 0.f ? 0.f : r;
}

// The fused ReLU's mask in backward: dy passes where the forward stored a positive output or NaN
// (PyTorch's threshold_backward: y <= 0 ? 0 : dy). Recomputing
// the forward's pre-activation from x (bn_out's arithmetic, the same statistics and affine parameters)
// and rounding it to T as the forward's store did gives that mask bit for bit without reading y: a
// fifth of the backward's traffic.
template <class T>
__device__ __forceinline__ bool relu_passes(float x, float mean, float invstd, float gamma, float beta) {
  T stored;
  st(stored, bn_out(x, mean, invstd, gamma, beta, false));
  return !(ld(stored) <= 0.f);
}


// mode 0: s0 = sum x.  mode 1: s0 = sum (x - mean)^2.
// mode 2: g = dy (masked by the ReLU when relu): s0 = sum g, s1 = sum g * (x - mean) * invstd.
// Adds element o's contribution; shared by the scalar reduction kernels. ga, be: gamma and beta (mode 2).
template <int Mode, class I, class T>
__device__ inline void accumulate(I o, const T* x, const T* dy, bool relu, float mu, float is, float ga, float be,
                                  float& s0, float& s1) {
  const float xv = ld(x[o]);
  if (Mode == 0) {
    s0 += xv;
  } else if (Mode == 1) {
    const float d = xv - mu;
    s0 += d * d;
  } else {
    float g = ld(dy[o]);
    if (relu && !relu_passes<T>(xv, mu, is, ga, be)) g = 0.f;
    s0 += g;
    s1 += g * (xv - mu) * is;
  }
}

template <int Mode, class I, class T>
__global__ void k_channel_partials(view4 v, const T* x, const T* dy, bool relu, const float* gamma, const float* beta,
                                   const float* mean, const float* invstd, double* partials) {
  const std::int64_t c = blockIdx.x * kChannelsPerBlock + threadIdx.x;
  const std::int64_t rows = v.n * v.h * v.w;
  float s0 = 0.f, s1 = 0.f;
  if (c < v.c) {
    const float mu = Mode >= 1 ? mean[c] : 0.f, is = Mode == 2 ? invstd[c] : 0.f;
    const float ga = Mode == 2 && relu ? gamma[c] : 0.f, be = Mode == 2 && relu ? beta[c] : 0.f;
    for (std::int64_t r = blockIdx.y * kRowsPerBlock + threadIdx.y; r < rows; r += gridDim.y * kRowsPerBlock) {
      accumulate<Mode>(offset_of<I>(v, static_cast<I>(r), static_cast<I>(c)), x, dy, relu, mu, is, ga, be, s0, s1);
    }
  }
  __shared__ double sh0[kRowsPerBlock][kChannelsPerBlock], sh1[kRowsPerBlock][kChannelsPerBlock];
  sh0[threadIdx.y][threadIdx.x] = s0;
  sh1[threadIdx.y][threadIdx.x] = s1;
  __syncthreads();
  if (threadIdx.y == 0 && c < v.c) {
    double t0 = 0, t1 = 0;
    for (int k = 0; k < kRowsPerBlock; ++k) {
      t0 += sh0[k][threadIdx.x];
      t1 += sh1[k][threadIdx.x];
    }
    partials[(blockIdx.y * v.c + c) * 2] = t0;
    partials[(blockIdx.y * v.c + c) * 2 + 1] = t1;
  }
}

// The same sums for plain (NCHW) tensors, where each (n, c) plane is contiguous: block (c, g) walks the
// planes n = g, g + G, ... so that a warp reads consecutive addresses.
template <int Mode, class T>
__global__ void k_plane_partials(view4 v, int groups, const T* x, const T* dy, bool relu, const float* gamma,
                                 const float* beta, const float* mean, const float* invstd, double* partials) {
  const std::uint32_t c = blockIdx.x, g = blockIdx.y, G = static_cast<std::uint32_t>(groups);
  const std::uint32_t hw = static_cast<std::uint32_t>(v.h * v.w), N = static_cast<std::uint32_t>(v.n);
  const std::uint32_t planes = N > g ? (N - g + G - 1) / G : 0;
  const float mu = Mode >= 1 ? mean[c] : 0.f, is = Mode == 2 ? invstd[c] : 0.f;
  const float ga = Mode == 2 && relu ? gamma[c] : 0.f, be = Mode == 2 && relu ? beta[c] : 0.f;
  float s0 = 0.f, s1 = 0.f;
  for (std::uint32_t j = threadIdx.x; j < planes * hw; j += blockDim.x) {
    const std::uint32_t q = j / hw, p = j - q * hw, n = g + q * G;
    const std::int64_t o = static_cast<std::int64_t>(n) * v.sn + static_cast<std::int64_t>(c) * v.sc + p;
    accumulate<Mode>(o, x, dy, relu, mu, is, ga, be, s0, s1);
  }
  const double t0 = block_sum(static_cast<double>(s0));
  const double t1 = Mode == 2 ? block_sum(static_cast<double>(s1)) : 0.0;
  if (threadIdx.x == 0) {
    partials[(static_cast<std::int64_t>(g) * v.c + c) * 2] = t0;
    partials[(static_cast<std::int64_t>(g) * v.c + c) * 2 + 1] = t1;
  }
}

// One warp per channel: the lanes take every 32nd group and the warp adds their sums (hundreds of groups
// summed by one thread would wait on one load after another).
constexpr int kSumWarps = 8;
__global__ void k_sum_partials(const double* partials, int groups, std::int64_t channels, double* out) {
  const std::int64_t c = blockIdx.x * static_cast<std::int64_t>(kSumWarps) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (c >= channels) return;  // a whole warp leaves together
  double t0 = 0, t1 = 0;
  for (std::int64_t g = lane; g < groups; g += 32) {
    t0 += partials[(g * channels + c) * 2];
    t1 += partials[(g * channels + c) * 2 + 1];
  }
  t0 = warp_sum(t0);
  t1 = warp_sum(t1);
  if (lane == 0) {
    out[c * 2] = t0;
    out[c * 2 + 1] = t1;
  }
}
void sum_partials(const double* partials, int groups, std::int64_t channels, double* out) {
  k_sum_partials<<<static_cast<unsigned>((channels + kSumWarps - 1) / kSumWarps), 32 * kSumWarps, 0, stream()>>>(
      partials, groups, channels, out);
  check_last_launch("batch_norm channel sums");
}

__global__ void k_mean(const double* sums, std::int64_t channels, double count, float* mean) {
  const std::int64_t c = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (c < channels) mean[c] = static_cast<float>(sums[c * 2] / count);
}
// The running statistics a training forward updates: one batch norm's, or a pair's two (the second null
// for one), both from the same batch mean and variance.
struct running_stats {
  float* mean[2] = {nullptr, nullptr};
  float* var[2] = {nullptr, nullptr};
};
// Channel c's saved statistics and running-statistic updates (unbiased variance) from the batch mean and
// biased variance over `count` values.
__device__ inline void finish_channel(std::int64_t c, double mean, double var, double count, double eps, double momentum,
                                      const running_stats& r, float* save_mean, float* save_invstd) {
  save_mean[c] = static_cast<float>(mean);
  save_invstd[c] = static_cast<float>(1.0 / sqrt(var + eps));
  const double unbiased = count > 1 ? var * count / (count - 1) : var;
  for (int k = 0; k < 2; ++k) {
    if (!r.mean[k]) continue;
    r.mean[k][c] = static_cast<float>((1.0 - momentum) * r.mean[k][c] + momentum * mean);
    r.var[k][c] = static_cast<float>((1.0 - momentum) * r.var[k][c] + momentum * unbiased);
  }
}
__global__ void k_finish_stats(const double* sq, const double* sums, std::int64_t channels, double count, double eps,
                               double momentum, running_stats running, float* save_mean, float* save_invstd) {
  const std::int64_t c = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (c >= channels) return;
  finish_channel(c, sums[c * 2] / count, sq[c * 2] / count, count, eps, momentum, running, save_mean, save_invstd);
}
__global__ void k_inference_stats(const float* running_mean, const float* running_var, std::int64_t channels,
                                  double eps, float* save_mean, float* save_invstd) {
  const std::int64_t c = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (c >= channels) return;
  save_mean[c] = running_mean[c];
  save_invstd[c] = static_cast<float>(1.0 / sqrt(static_cast<double>(running_var[c]) + eps));
}
// Batch norm's input gradient, split into what depends on the channel only (k_backward_coefficients
// computes it once per channel, with the division and the conversions from double) and the per-element
// arithmetic. s0, s1: (sum g, sum g * xhat) of the channel, g being dy masked by the ReLU.
struct alignas(16) dx_coefficients {
  float mean, invstd, s0, s1;
  float scale;        // gamma * invstd / count in training, gamma in eval
  float gamma, beta;  // for the ReLU's mask
  float unused;       // two 16-byte loads per channel
};
// g: dy, not yet masked; relu: the fused ReLU's mask applies.
template <class T>
__device__ __forceinline__ float bn_dx_of(float g, float x, bool relu, bool training, float count,
                                          const dx_coefficients& k) {
  if (relu && !relu_passes<T>(x, k.mean, k.invstd, k.gamma, k.beta)) g = 0.f;
  if (!training) return __fmul_rn(__fmul_rn(g, k.scale), k.invstd);
  const float xhat = __fmul_rn(__fsub_rn(x, k.mean), k.invstd);
  const float t = __fsub_rn(__fsub_rn(__fmul_rn(count, g), k.s0), __fmul_rn(xhat, k.s1));
  return __fmul_rn(k.scale, t);
}

// A paired batch norm's second output (ops::paired_batch_norm): its own affine map of the same
// normalised x, written by the same pass (Two = true) so that x is read once for both.
template <class T>
struct second_output {
  const float* gamma = nullptr;
  const float* beta = nullptr;
  T* y = nullptr;
};
template <class I, class T, bool Two>
__global__ void k_normalize(view4 v, const T* x, const float* gamma, const float* beta, const float* mean,
                            const float* invstd, bool relu, T* y, second_output<T> b) {
  const std::int64_t n = v.numel();
  GRCNN_GRID_STRIDE(i, n) {
    const I c = channel_of<I>(v, static_cast<I>(i));
    const float xv = ld(x[i]);
    st(y[i], bn_out(xv, mean[c], invstd[c], gamma[c], beta[c], relu));
    if constexpr (Two) st(b.y[i], bn_out(xv, mean[c], invstd[c], b.gamma[c], b.beta[c], relu));
  }
}
// A paired batch norm's second gradient (ops::paired_batch_norm): its dy and coefficients, folded into
// the same dx pass (Two = true): dx = dx_a + dx_b summed in f32 and stored once.
template <class T>
struct second_gradient {
  const T* dy = nullptr;
  const dx_coefficients* co = nullptr;
};
template <class I, class T, bool Two>
__global__ void k_bn_dx(view4 v, bool training, double count, const T* dy, const T* x, bool relu,
                        const dx_coefficients* co, T* dx, bool add, second_gradient<T> b) {
  const std::int64_t n = v.numel();
  const float nf = static_cast<float>(count);
  GRCNN_GRID_STRIDE(i, n) {
    const I c = channel_of<I>(v, static_cast<I>(i));
    const float xv = ld(x[i]);
    float r = bn_dx_of<T>(ld(dy[i]), xv, relu, training, nf, co[c]);
    if constexpr (Two) r = __fadd_rn(r, bn_dx_of<T>(ld(b.dy[i]), xv, relu, training, nf, b.co[c]));
    st(dx[i], add ? __fadd_rn(ld(dx[i]), r) : r);
  }
}

// Packed forms of the two passes (elementwise.cuh): 16 bytes per access. A pack spans pack_width
// consecutive channels of one pixel (channels-last, C a multiple of the width) or lies in one channel's
// plane (plain, H*W a multiple of the width); packing_of says which applies, if any.
enum class bn_packing { none, channels_last, planes };
template <class T>
bn_packing packing_of(const view4& v, std::initializer_list<const void*> ptrs) {
  constexpr int K = pack_width<T>;
  if (!small_index(v)) return bn_packing::none;
  for (const void* p : ptrs)
    if (p && !pack_aligned(p)) return bn_packing::none;
  const bool cl = v.sc == 1 && v.sw == v.c && v.sh == v.w * v.c && v.sn == v.h * v.w * v.c;
  if (cl && v.c % K == 0) return bn_packing::channels_last;
  const bool plain = v.sw == 1 && v.sh == v.w && v.sc == v.h * v.w && v.sn == v.c * v.h * v.w;
  if (plain && (v.h * v.w) % K == 0) return bn_packing::planes;
  return bn_packing::none;
}
// The packed (16-byte) passes over plain tensors: a pack lies in one channel's plane (H*W a multiple of
// the width), so the channel's coefficients serve the whole pack.
template <class T, bool Two>
__global__ void k_normalize_planes(view4 v, const T* x, const float* gamma, const float* beta, const float* mean,
                                   const float* invstd, bool relu, T* y, second_output<T> b) {
  constexpr int K = pack_width<T>;
  const std::int64_t packs = v.numel() / K;
  GRCNN_GRID_STRIDE(q, packs) {
    const std::uint32_t i0 = static_cast<std::uint32_t>(q) * K;
    const std::uint32_t c = (i0 / static_cast<std::uint32_t>(v.h * v.w)) % static_cast<std::uint32_t>(v.c);
    const float m = mean[c], is = invstd[c], ga = gamma[c], be = beta[c];
    float xv[K], r[K];
    load_pack(x + i0, xv);
#pragma unroll
    for (int k = 0; k < K; ++k) r[k] = bn_out(xv[k], m, is, ga, be, relu);
    store_pack(y + i0, r);
    if constexpr (Two) {
      const float gb = b.gamma[c], bb = b.beta[c];
#pragma unroll
      for (int k = 0; k < K; ++k) r[k] = bn_out(xv[k], m, is, gb, bb, relu);
      store_pack(b.y + i0, r);
    }
  }
}
template <class T, bool Two>
__global__ void k_bn_dx_planes(view4 v, bool training, double count, const T* dy, const T* x, bool relu,
                               const dx_coefficients* coefficients, T* dx, bool add, second_gradient<T> b) {
  constexpr int K = pack_width<T>;
  const std::int64_t packs = v.numel() / K;
  const float n = static_cast<float>(count);
  GRCNN_GRID_STRIDE(q, packs) {
    const std::uint32_t i0 = static_cast<std::uint32_t>(q) * K;
    const std::uint32_t c = (i0 / static_cast<std::uint32_t>(v.h * v.w)) % static_cast<std::uint32_t>(v.c);
    const dx_coefficients co = coefficients[c];
    float g[K], xv[K], r[K], old[K], g2[K];
    load_pack(dy + i0, g);
    load_pack(x + i0, xv);
    if constexpr (Two) load_pack(b.dy + i0, g2);
    if (add) load_pack(dx + i0, old);
#pragma unroll
    for (int k = 0; k < K; ++k) r[k] = bn_dx_of<T>(g[k], xv[k], relu, training, n, co);
    if constexpr (Two) {
      const dx_coefficients co2 = b.co[c];
#pragma unroll
      for (int k = 0; k < K; ++k) r[k] = __fadd_rn(r[k], bn_dx_of<T>(g2[k], xv[k], relu, training, n, co2));
    }
#pragma unroll
    for (int k = 0; k < K; ++k)
      if (add) r[k] = __fadd_rn(old[k], r[k]);
    store_pack(dx + i0, r);
  }
}

// Channels-last passes give each thread fixed channels: a 256-thread block is TX pack columns (TX * K
// consecutive channels) by TY = 256 / TX rows, so a thread loads its channels' coefficients once and
// then walks the rows r, r + step, ... (step = TY * row groups). A pack per row per thread, so
// consecutive lanes read consecutive 16-byte packs of one row or of the next rows.
struct row_walk {
  int col, row0, ty;
  std::uint32_t pc, packs_per_row, rows, step;
  __device__ row_walk(const view4& v, int tx, int K) {
    ty = 256 / tx;
    col = static_cast<int>(threadIdx.x) % tx;
    row0 = static_cast<int>(threadIdx.x) / tx;
    packs_per_row = static_cast<std::uint32_t>(v.c) / static_cast<std::uint32_t>(K);
    pc = blockIdx.x * static_cast<std::uint32_t>(tx) + static_cast<std::uint32_t>(col);
    rows = static_cast<std::uint32_t>(v.n * v.h * v.w);
    step = gridDim.y * static_cast<std::uint32_t>(ty);
  }
  __device__ bool active() const { return pc < packs_per_row; }
  __device__ std::uint32_t first_row() const { return blockIdx.y * static_cast<std::uint32_t>(ty) + row0; }
  // Offset of this thread's pack in row r.
  __device__ std::uint32_t at(std::uint32_t r, int K) const { return r * packs_per_row * K + pc * K; }
  // Calls load(u, r) for U rows and then use(u, r) for the same rows, so that U rows' loads are in
  // flight before the first is used (one outstanding load per thread cannot keep HBM busy); the rows
  // left over go one at a time. Rows are used in increasing order either way.
  template <int U, class Load, class Use>
  __device__ __forceinline__ void each(Load&& load, Use&& use) const {
    std::uint32_t r = first_row();
    for (; r + (U - 1) * step < rows; r += U * step) {  // no overflow: rows * C < 2^31, step < 2^24
#pragma unroll
      for (int u = 0; u < U; ++u) load(u, r + u * step);
#pragma unroll
      for (int u = 0; u < U; ++u) use(u, r + u * step);
    }
    for (; r < rows; r += step) {
      load(0, r);
      use(0, r);
    }
  }
};

template <class T, bool Two>
__global__ void __launch_bounds__(256) k_normalize_rows(view4 v, int tx, const T* x, const float* gamma, const float* beta,
                                                        const float* mean, const float* invstd, bool relu, T* y,
                                                        second_output<T> b) {
  constexpr int K = pack_width<T>, U = 4;
  const row_walk w(v, tx, K);
  if (!w.active()) return;
  float m[K], is[K], ga[K], be[K], gb[K], bb[K];
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const std::uint32_t c = w.pc * K + k;
    m[k] = mean[c], is[k] = invstd[c], ga[k] = gamma[c], be[k] = beta[c];
    if constexpr (Two) gb[k] = b.gamma[c], bb[k] = b.beta[c];
  }
  pack<T> xr[U];  // loads in flight stay packed: widened one row at a time
  w.each<U>([&](int u, std::uint32_t r) { xr[u] = load_raw(x + w.at(r, K)); },
            [&](int u, std::uint32_t r) {
              float xv[K], o[K];
              unpack(xr[u], xv);
#pragma unroll
              for (int k = 0; k < K; ++k) o[k] = bn_out(xv[k], m[k], is[k], ga[k], be[k], relu);
              store_pack(y + w.at(r, K), o);
              if constexpr (Two) {
#pragma unroll
                for (int k = 0; k < K; ++k) o[k] = bn_out(xv[k], m[k], is[k], gb[k], bb[k], relu);
                store_pack(b.y + w.at(r, K), o);
              }
            });
}
template <class T, bool Two>
__global__ void __launch_bounds__(256) k_bn_dx_rows(view4 v, int tx, bool training, double count, const T* dy,
                                                    const T* x, bool relu, const dx_coefficients* coefficients, T* dx,
                                                    bool add, second_gradient<T> b) {
  constexpr int K = pack_width<T>, U = 2;
  const row_walk w(v, tx, K);
  if (!w.active()) return;
  const float n = static_cast<float>(count);
  // The pair's second coefficients live in registers too where that leaves room (f32: 117 registers);
  // with bf16's 8 channels a thread they would take it to 217 (one block per SM), so they are read per
  // row from the cache instead. Two = false leaves them unused (no loads).
  constexpr bool hold2 = Two && K <= 4;
  dx_coefficients co[K], co2[hold2 ? K : 1];
#pragma unroll
  for (int k = 0; k < K; ++k) co[k] = coefficients[w.pc * K + k];
  if constexpr (hold2) {
#pragma unroll
    for (int k = 0; k < K; ++k) co2[k] = b.co[w.pc * K + k];
  }
  pack<T> gr[U], xr[U], dr[U], g2r[Two ? U : 1];
  w.each<U>(
      [&](int u, std::uint32_t r) {
        const std::uint32_t o = w.at(r, K);
        gr[u] = load_raw(dy + o);
        xr[u] = load_raw(x + o);
        if constexpr (Two) g2r[u] = load_raw(b.dy + o);
        if (add) dr[u] = load_raw(dx + o);
      },
      [&](int u, std::uint32_t r) {
        float gv[K], xv[K], old[K], o[K];
        unpack(gr[u], gv);
        unpack(xr[u], xv);
        if (add) unpack(dr[u], old);
#pragma unroll
        for (int k = 0; k < K; ++k) o[k] = bn_dx_of<T>(gv[k], xv[k], relu, training, n, co[k]);
        if constexpr (Two) {
          float g2[K];
          unpack(g2r[u], g2);
#pragma unroll
          for (int k = 0; k < K; ++k) {
            if constexpr (hold2)
              o[k] = __fadd_rn(o[k], bn_dx_of<T>(g2[k], xv[k], relu, training, n, co2[k]));
            else
              o[k] = __fadd_rn(o[k], bn_dx_of<T>(g2[k], xv[k], relu, training, n, b.co[w.pc * K + k]));
          }
        }
#pragma unroll
        for (int k = 0; k < K; ++k)
          if (add) o[k] = __fadd_rn(old[k], o[k]);
        store_pack(dx + w.at(r, K), o);
      });
}

// The channel sums of accumulate() over channels-last tensors: each thread sums its K channels over its
// rows in f32, the block adds its rows' sums in double and writes one partial per channel for its row
// group.
template <int Mode, class T>
__global__ void __launch_bounds__(256) k_channel_partials_rows(view4 v, int tx, const T* x, const T* dy, bool relu,
                                                               const float* gamma, const float* beta, const float* mean,
                                                               const float* invstd, double* partials) {
  constexpr int K = pack_width<T>, U = Mode == 2 ? 2 : 4;
  const row_walk w(v, tx, K);
  float s0[K], s1[K], mu[K], is[K], ga[K], be[K];
#pragma unroll
  for (int k = 0; k < K; ++k) s0[k] = s1[k] = mu[k] = is[k] = ga[k] = be[k] = 0.f;
  if (w.active()) {
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const std::uint32_t c = w.pc * K + k;
      if (Mode >= 1) mu[k] = mean[c];
      if (Mode == 2) is[k] = invstd[c];
      if (Mode == 2 && relu) ga[k] = gamma[c], be[k] = beta[c];
    }
    pack<T> xr[U], gr[U];
    w.each<U>(
        [&](int u, std::uint32_t r) {
          const std::uint32_t o = w.at(r, K);
          xr[u] = load_raw(x + o);
          if (Mode == 2) gr[u] = load_raw(dy + o);
        },
        [&](int u, std::uint32_t) {
          float xv[K], gv[K];
          unpack(xr[u], xv);
          if (Mode == 2) unpack(gr[u], gv);
#pragma unroll
          for (int k = 0; k < K; ++k) {
            if (Mode == 0) {
              s0[k] += xv[k];
            } else if (Mode == 1) {
              const float d = xv[k] - mu[k];
              s0[k] += d * d;
            } else {
              const float g = relu && !relu_passes<T>(xv[k], mu[k], is[k], ga[k], be[k]) ? 0.f : gv[k];
              s0[k] += g;
              s1[k] += g * (xv[k] - mu[k]) * is[k];
            }
          }
        });
  }
  // Lanes of a warp that share a column (tx apart) add up first, then the block's 8 warps in shared
  // memory: one thread adding ty * K values in sequence would be slow for small C.
  double d0[K], d1[K];
#pragma unroll
  for (int k = 0; k < K; ++k) {
    d0[k] = s0[k];
    d1[k] = s1[k];
    for (int o = 16; o >= tx; o >>= 1) {
      d0[k] += __shfl_down_sync(0xffffffffu, d0[k], o);
      d1[k] += __shfl_down_sync(0xffffffffu, d1[k], o);
    }
  }
  constexpr int kWarps = 256 / 32;
  __shared__ double sh0[kWarps * 32 * K], sh1[kWarps * 32 * K];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane < tx) {
#pragma unroll
    for (int k = 0; k < K; ++k) {
      sh0[(warp * tx + lane) * K + k] = d0[k];
      sh1[(warp * tx + lane) * K + k] = d1[k];
    }
  }
  __syncthreads();
  if (static_cast<int>(threadIdx.x) < tx && w.active()) {  // thread col (row0 == 0) holds column col's lanes in every warp
#pragma unroll
    for (int k = 0; k < K; ++k) {
      double t0 = 0, t1 = 0;
      for (int q = 0; q < kWarps; ++q) {
        t0 += sh0[(q * tx + w.col) * K + k];
        t1 += sh1[(q * tx + w.col) * K + k];
      }
      const std::int64_t c = static_cast<std::int64_t>(w.pc) * K + k;
      partials[(blockIdx.y * v.c + c) * 2] = t0;
      partials[(blockIdx.y * v.c + c) * 2 + 1] = t1;
    }
  }
}

// Batch statistics of channels-last tensors in one read of x (the two-pass form reads it twice): each
// thread keeps Welford's running mean and M2 for its K channels over its rows (f32; exact row counts),
// and the counts, means and M2s are merged with Chan's formula in double, first across the lanes of a
// warp that share a column, then across the block's warps, then (k_welford_finish) across row groups.
// Partials [group][C][3]: count, mean, M2.
// The merge's weights depend on the counts only, which a thread's K channels share: computed once per
// merge (two double divisions), not per channel (the divisions cost more than the rows each thread reads).
struct chan_weights {
  double f = 0, g = 0;  // nb / (n + nb) and n * nb / (n + nb); zero when both sides are empty
  __device__ chan_weights(double n, double nb) {
    const double t = n + nb;
    if (t != 0) f = nb / t, g = n * nb / t;
  }
};
__device__ __forceinline__ void chan_merge(const chan_weights& w, double& mean, double& m2, double mb, double m2b) {
  const double d = mb - mean;
  mean += d * w.f;
  m2 += m2b + d * d * w.g;
}
__device__ __forceinline__ void chan_merge(double& n, double& mean, double& m2, double nb, double mb, double m2b) {
  chan_merge(chan_weights(n, nb), mean, m2, mb, m2b);
  n += nb;
}
template <class T>
__global__ void __launch_bounds__(256) k_welford_partials_rows(view4 v, int tx, const T* x, double* partials) {
  constexpr int K = pack_width<T>, U = 4;
  const row_walk w(v, tx, K);
  // Values are taken relative to the channel's first one: a channel far from zero (mean 300, spread 1)
  // would otherwise lose the running mean's low bits to its offset at every step.
  float n = 0.f, shift[K], mean[K], m2[K];
#pragma unroll
  for (int k = 0; k < K; ++k) shift[k] = mean[k] = m2[k] = 0.f;
  if (w.active() && w.rows > 0) {
    load_pack(x + w.pc * K, shift);
    pack<T> xr[U];
    w.each<U>([&](int u, std::uint32_t r) { xr[u] = load_raw(x + w.at(r, K)); },
              [&](int u, std::uint32_t) {
                float xv[K];
                unpack(xr[u], xv);
                n += 1.f;
                const float inv = 1.f / n;
#pragma unroll
                for (int k = 0; k < K; ++k) {
                  const float e = xv[k] - shift[k], d = e - mean[k];
                  mean[k] += d * inv;
                  m2[k] += d * (e - mean[k]);
                }
              });
  }
  double dn = n, dm[K], dq[K];  // one count for the thread's K channels
#pragma unroll
  for (int k = 0; k < K; ++k) dm[k] = static_cast<double>(shift[k]) + static_cast<double>(mean[k]), dq[k] = m2[k];
  for (int o = 16; o >= tx; o >>= 1) {
    const double nb = __shfl_down_sync(0xffffffffu, dn, o);
    const chan_weights cw(dn, nb);
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const double mb = __shfl_down_sync(0xffffffffu, dm[k], o), qb = __shfl_down_sync(0xffffffffu, dq[k], o);
      chan_merge(cw, dm[k], dq[k], mb, qb);
    }
    dn += nb;
  }
  constexpr int kWarps = 256 / 32;
  __shared__ double shn[kWarps * 32], shm[kWarps * 32 * K], shq[kWarps * 32 * K];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane < tx) {
    shn[warp * tx + lane] = dn;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      shm[(warp * tx + lane) * K + k] = dm[k];
      shq[(warp * tx + lane) * K + k] = dq[k];
    }
  }
  __syncthreads();
  if (static_cast<int>(threadIdx.x) < tx && w.active()) {
    double tn = 0, tm[K], tq[K];
#pragma unroll
    for (int k = 0; k < K; ++k) tm[k] = tq[k] = 0;
    for (int q = 0; q < kWarps; ++q) {
      const double nb = shn[q * tx + w.col];
      const chan_weights cw(tn, nb);
#pragma unroll
      for (int k = 0; k < K; ++k) chan_merge(cw, tm[k], tq[k], shm[(q * tx + w.col) * K + k], shq[(q * tx + w.col) * K + k]);
      tn += nb;
    }
#pragma unroll
    for (int k = 0; k < K; ++k) {
      double* out = partials + (blockIdx.y * v.c + static_cast<std::int64_t>(w.pc) * K + k) * 3;
      out[0] = tn, out[1] = tm[k], out[2] = tq[k];
    }
  }
}
// A warp per channel merges the row groups' partials, then writes what k_finish_stats writes.
__global__ void k_welford_finish(const double* partials, int groups, std::int64_t channels, double eps,
                                 double momentum, running_stats running, float* save_mean, float* save_invstd) {
  const std::int64_t c = blockIdx.x * static_cast<std::int64_t>(kSumWarps) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (c >= channels) return;  // whole warps
  double n = 0, mean = 0, m2 = 0;
  for (std::int64_t g = lane; g < groups; g += 32) {
    const double* p = partials + (g * channels + c) * 3;
    chan_merge(n, mean, m2, p[0], p[1], p[2]);
  }
  for (int o = 16; o > 0; o >>= 1) {
    const double nb = __shfl_down_sync(0xffffffffu, n, o), mb = __shfl_down_sync(0xffffffffu, mean, o),
                 qb = __shfl_down_sync(0xffffffffu, m2, o);
    chan_merge(n, mean, m2, nb, mb, qb);
  }
  if (lane != 0) return;
  if (n == 0) mean = m2 = nan("");  // an empty batch: 0/0, as the two-pass form computes
  finish_channel(c, mean, m2 / n, n, eps, momentum, running, save_mean, save_invstd);
}

// Per channel, from the backward's sums: dgamma and dbeta, and the input gradient's coefficients.
__global__ void k_backward_coefficients(const double* sums, std::int64_t channels, bool training, float count,
                                        const float* gamma, const float* beta, const float* mean,
                                        const float* invstd, float* dgamma, float* dbeta, dx_coefficients* out) {
  const std::int64_t c = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (c >= channels) return;
  dbeta[c] = static_cast<float>(sums[c * 2]);
  dgamma[c] = static_cast<float>(sums[c * 2 + 1]);
  dx_coefficients k;
  k.mean = mean[c];
  k.invstd = invstd[c];
  k.s0 = training ? static_cast<float>(sums[c * 2]) : 0.f;
  k.s1 = training ? static_cast<float>(sums[c * 2 + 1]) : 0.f;
  k.gamma = gamma[c];
  k.beta = beta ? beta[c] : 0.f;  // read for the ReLU's mask only
  k.scale = training ? __fdiv_rn(__fmul_rn(k.gamma, k.invstd), count) : k.gamma;
  k.unused = 0.f;
  out[c] = k;
}

// Row groups: enough blocks to fill the chip, each thread summing a few hundred values at most.
int row_groups(const view4& v) {
  const std::int64_t rows = v.n * v.h * v.w;
  const std::int64_t cblocks = (v.c + kChannelsPerBlock - 1) / kChannelsPerBlock;
  std::int64_t g = (rows + kRowsPerBlock * 64 - 1) / (kRowsPerBlock * 64);
  const std::int64_t want = (ctx().sm_count * 8 + cblocks - 1) / cblocks;
  if (g > want) g = want;
  if (g < 1) g = 1;
  if (g > 65535) g = 65535;
  return static_cast<int>(g);
}

// The grid of the channels-last row kernels: TX pack columns per 256-thread block (a power of two up to
// 32), GX column blocks, and row groups. A reduction writes a partial per row group and channel, so its
// groups only fill the chip (at least 16 rows per thread); an elementwise pass takes as many groups as
// give each thread about 8 rows (enough to pay for loading its coefficients).
enum class row_pass { reduction, elementwise };
struct packed_tiling {
  int tx = 1, gx = 1, groups = 1;
  template <class T>
  static packed_tiling of(const view4& v, row_pass pass) {
    packed_tiling t;
    const std::int64_t P = v.c / pack_width<T>, rows = v.n * v.h * v.w;
    while (t.tx < 32 && t.tx * 2 <= P) t.tx *= 2;
    const std::int64_t gx = (P + t.tx - 1) / t.tx, ty = 256 / t.tx;
    const std::int64_t per_thread = pass == row_pass::reduction ? 16 : 8;
    std::int64_t groups = (rows + ty * per_thread - 1) / (ty * per_thread);
    if (pass == row_pass::reduction) groups = std::min<std::int64_t>(groups, (ctx().sm_count * 8 + gx - 1) / gx);
    t.gx = static_cast<int>(gx);
    t.groups = static_cast<int>(std::clamp<std::int64_t>(groups, 1, 65535));
    return t;
  }
  dim3 grid() const { return dim3(static_cast<unsigned>(gx), static_cast<unsigned>(groups)); }
};

// Per-channel sums (s0, s1) as doubles in `out` [C][2].
// gamma, beta: the ReLU's mask (mode 2 with relu).
template <int Mode, class T>
void channel_sums(const view4& v, const T* x, const T* dy, bool relu, const float* gamma, const float* beta,
                  const float* mean, const float* invstd, double* out) {
  if (packing_of<T>(v, {x, Mode == 2 ? dy : nullptr}) == bn_packing::channels_last) {
    const packed_tiling t = packed_tiling::of<T>(v, row_pass::reduction);
    scratch partials(static_cast<std::size_t>(t.groups) * static_cast<std::size_t>(v.c) * 2 * sizeof(double));
    k_channel_partials_rows<Mode, T><<<t.grid(), 256, 0, stream()>>>(v, t.tx, x, dy, relu, gamma, beta, mean, invstd,
                                                                     partials.as<double>());
    check_last_launch("batch_norm packed channel partials");
    sum_partials(partials.as<double>(), t.groups, v.c, out);
    return;
  }
  const bool planes = v.sw == 1 && v.sh == v.w && v.sc == v.h * v.w && v.h * v.w > 1 && small_index(v);
  if (planes) {
    // Enough (channel, group) blocks to fill the chip; each group takes every G-th sample.
    const std::int64_t want = (static_cast<std::int64_t>(ctx().sm_count) * 16 + v.c - 1) / v.c;
    const int groups = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(v.n, want)));
    scratch partials(static_cast<std::size_t>(groups) * static_cast<std::size_t>(v.c) * 2 * sizeof(double));
    k_plane_partials<Mode, T><<<dim3(static_cast<unsigned>(v.c), static_cast<unsigned>(groups)), 256, 0, stream()>>>(
        v, groups, x, dy, relu, gamma, beta, mean, invstd, partials.as<double>());
    check_last_launch("batch_norm plane partials");
    sum_partials(partials.as<double>(), groups, v.c, out);
    return;
  }
  const int groups = row_groups(v);
  scratch partials(static_cast<std::size_t>(groups) * static_cast<std::size_t>(v.c) * 2 * sizeof(double));
  const dim3 grid(static_cast<unsigned>((v.c + kChannelsPerBlock - 1) / kChannelsPerBlock), static_cast<unsigned>(groups));
  if (small_index(v))
    k_channel_partials<Mode, std::uint32_t, T><<<grid, dim3(kChannelsPerBlock, kRowsPerBlock), 0, stream()>>>(
        v, x, dy, relu, gamma, beta, mean, invstd, partials.as<double>());
  else
    k_channel_partials<Mode, std::int64_t, T><<<grid, dim3(kChannelsPerBlock, kRowsPerBlock), 0, stream()>>>(
        v, x, dy, relu, gamma, beta, mean, invstd, partials.as<double>());
  check_last_launch("batch_norm channel partials");
  sum_partials(partials.as<double>(), groups, v.c, out);
}

unsigned channel_blocks(std::int64_t c) { return static_cast<unsigned>((c + 255) / 256); }

// y = the normalised x under (gamma, beta), and b.y under b's affine map when b.y is set (one read of x).
template <bool Two, class T>
void normalize_into(const view4& v, const T* x, const float* gamma, const float* beta, const float* mean,
                    const float* invstd, bool relu, T* y, const second_output<T>& b) {
  const bn_packing pk = packing_of<T>(v, {x, y, b.y});
  const int packed_blocks = blocks_for(v.numel() / pack_width<T>);
  if (pk == bn_packing::channels_last) {
    const packed_tiling t = packed_tiling::of<T>(v, row_pass::elementwise);
    k_normalize_rows<T, Two><<<t.grid(), 256, 0, stream()>>>(v, t.tx, x, gamma, beta, mean, invstd, relu, y, b);
  } else if (pk == bn_packing::planes) {
    k_normalize_planes<T, Two><<<packed_blocks, 256, 0, stream()>>>(v, x, gamma, beta, mean, invstd, relu, y, b);
  } else if (small_index(v)) {
    k_normalize<std::uint32_t, T, Two><<<blocks_for(v.numel()), 256, 0, stream()>>>(v, x, gamma, beta, mean, invstd,
                                                                                    relu, y, b);
  } else {
    k_normalize<std::int64_t, T, Two><<<blocks_for(v.numel()), 256, 0, stream()>>>(v, x, gamma, beta, mean, invstd,
                                                                                   relu, y, b);
  }
}
template <class T>
void normalize(const view4& v, const T* x, const float* gamma, const float* beta, const float* mean,
               const float* invstd, bool relu, T* y, const second_output<T>& b = {}) {
  if (b.y)
    normalize_into<true>(v, x, gamma, beta, mean, invstd, relu, y, b);
  else
    normalize_into<false>(v, x, gamma, beta, mean, invstd, relu, y, b);
}

}  // namespace

namespace {

// Batch statistics of x into save_mean/save_invstd, and the running statistics' updates.
template <class T>
void training_statistics(const batch_norm_args& a, const T* x, const running_stats& running, float* save_mean,
                         float* save_invstd) {
  const view4& v = a.x;
  if (packing_of<T>(v, {x}) == bn_packing::channels_last) {  // statistics in one read of x
    const packed_tiling t = packed_tiling::of<T>(v, row_pass::reduction);
    scratch partials(static_cast<std::size_t>(t.groups) * static_cast<std::size_t>(v.c) * 3 * sizeof(double));
    k_welford_partials_rows<T><<<t.grid(), 256, 0, stream()>>>(v, t.tx, x, partials.as<double>());
    check_last_launch("batch_norm packed statistics");
    k_welford_finish<<<static_cast<unsigned>((v.c + kSumWarps - 1) / kSumWarps), 32 * kSumWarps, 0, stream()>>>(
        partials.as<double>(), t.groups, v.c, a.eps, a.momentum, running, save_mean, save_invstd);
    check_last_launch("batch_norm statistics");
    return;
  }
  const double count = static_cast<double>(v.n * v.h * v.w);
  scratch sums(static_cast<std::size_t>(v.c) * 2 * sizeof(double)), sq(static_cast<std::size_t>(v.c) * 2 * sizeof(double));
  channel_sums<0, T>(v, x, nullptr, false, nullptr, nullptr, nullptr, nullptr, sums.as<double>());
  k_mean<<<channel_blocks(v.c), 256, 0, stream()>>>(sums.as<double>(), v.c, count, save_mean);
  check_last_launch("batch_norm mean");
  channel_sums<1, T>(v, x, nullptr, false, nullptr, nullptr, save_mean, nullptr, sq.as<double>());
  k_finish_stats<<<channel_blocks(v.c), 256, 0, stream()>>>(sq.as<double>(), sums.as<double>(), v.c, count, a.eps,
                                                            a.momentum, running, save_mean, save_invstd);
  check_last_launch("batch_norm statistics");
}

// The gradient sums of one batch norm (its dy, masked by its ReLU) into dgamma/dbeta and the channel
// coefficients of its input gradient (`co`, [C]).
template <class T>
void gradient_coefficients(const batch_norm_args& a, bool training, const T* dy, const T* x, const float* gamma,
                           const float* beta, const float* save_mean, const float* save_invstd, float* dgamma,
                           float* dbeta, dx_coefficients* co) {
  const view4& v = a.x;
  scratch sums(static_cast<std::size_t>(v.c) * 2 * sizeof(double));
  channel_sums<2>(v, x, dy, a.relu, gamma, beta, save_mean, save_invstd, sums.as<double>());
  k_backward_coefficients<<<channel_blocks(v.c), 256, 0, stream()>>>(
      sums.as<double>(), v.c, training, static_cast<float>(v.n * v.h * v.w), gamma, a.relu ? beta : nullptr, save_mean,
      save_invstd, dgamma, dbeta, co);
  check_last_launch("batch_norm dgamma/dbeta");
}

// dx (added to what dx holds when add) from dy and the coefficients, plus b's when b.dy is set: one pass.
template <bool Two, class T>
void input_gradient_into(const batch_norm_args& a, bool training, const T* dy, const T* x, const dx_coefficients* co,
                         T* dx, bool add, const second_gradient<T>& b) {
  const view4& v = a.x;
  const double count = static_cast<double>(v.n * v.h * v.w);
  const bn_packing pk = packing_of<T>(v, {dy, x, dx, b.dy});
  if (pk == bn_packing::channels_last) {
    const packed_tiling t = packed_tiling::of<T>(v, row_pass::elementwise);
    k_bn_dx_rows<T, Two><<<t.grid(), 256, 0, stream()>>>(v, t.tx, training, count, dy, x, a.relu, co, dx, add, b);
  } else if (pk == bn_packing::planes) {
    k_bn_dx_planes<T, Two><<<blocks_for(v.numel() / pack_width<T>), 256, 0, stream()>>>(v, training, count, dy, x,
                                                                                       a.relu, co, dx, add, b);
  } else if (small_index(v)) {
    k_bn_dx<std::uint32_t, T, Two><<<blocks_for(v.numel()), 256, 0, stream()>>>(v, training, count, dy, x, a.relu, co,
                                                                                dx, add, b);
  } else {
    k_bn_dx<std::int64_t, T, Two><<<blocks_for(v.numel()), 256, 0, stream()>>>(v, training, count, dy, x, a.relu, co,
                                                                               dx, add, b);
  }
  check_last_launch("batch_norm dx");
}
template <class T>
void input_gradient(const batch_norm_args& a, bool training, const T* dy, const T* x, const dx_coefficients* co, T* dx,
                    bool add, const second_gradient<T>& b = {}) {
  if (b.dy)
    input_gradient_into<true>(a, training, dy, x, co, dx, add, b);
  else
    input_gradient_into<false>(a, training, dy, x, co, dx, add, b);
}

}  // namespace

template <storage S>
void batch_norm_forward_training(const batch_norm_args& a, const S* xs, const float* gamma, const float* beta,
                                 float* running_mean, float* running_var, S* ys, float* save_mean, float* save_invstd) {
  GRCNN_PROFILE("bn forward (train)");
  const auto* x = dev(xs);
  running_stats running;
  running.mean[0] = running_mean, running.var[0] = running_var;
  training_statistics(a, x, running, save_mean, save_invstd);
  normalize(a.x, x, gamma, beta, save_mean, save_invstd, a.relu, dev(ys));
  check_last_launch("batch_norm normalize");
}

template <storage S>
void batch_norm_forward_inference(const batch_norm_args& a, const S* xs, const float* gamma, const float* beta,
                                  const float* running_mean, const float* running_var, S* ys, float* save_mean,
                                  float* save_invstd) {
  GRCNN_PROFILE("bn forward (eval)");
  const auto* x = dev(xs);
  auto* y = dev(ys);
  const view4& v = a.x;
  k_inference_stats<<<channel_blocks(v.c), 256, 0, stream()>>>(running_mean, running_var, v.c, a.eps, save_mean, save_invstd);
  check_last_launch("batch_norm inference statistics");
  normalize(v, x, gamma, beta, save_mean, save_invstd, a.relu, y);
  check_last_launch("batch_norm normalize");
}

template <storage S>
void batch_norm_backward(const batch_norm_args& a, bool training, const S* dys, const S* xs, const float* gamma,
                         const float* beta, const float* save_mean, const float* save_invstd, S* dxs, bool add,
                         float* dgamma, float* dbeta) {
  GRCNN_PROFILE("bn backward");
  const auto *dy = dev(dys), *x = dev(xs);
  scratch coefficients(static_cast<std::size_t>(a.x.c) * sizeof(dx_coefficients));
  auto* co = coefficients.as<dx_coefficients>();
  gradient_coefficients(a, training, dy, x, gamma, beta, save_mean, save_invstd, dgamma, dbeta, co);
  if (dxs) input_gradient(a, training, dy, x, co, dev(dxs), add);
}

template <storage S>
void batch_norm_pair_forward_training(const batch_norm_args& a, const S* xs, const batch_norm_affine& first,
                                      const batch_norm_affine& second, S* ys, S* y2s, float* save_mean,
                                      float* save_invstd) {
  GRCNN_PROFILE("bn pair forward (train)");
  const auto* x = dev(xs);
  running_stats running;
  running.mean[0] = first.running_mean, running.var[0] = first.running_var;
  running.mean[1] = second.running_mean, running.var[1] = second.running_var;
  training_statistics(a, x, running, save_mean, save_invstd);
  second_output<device_t<S>> b;
  b.gamma = second.gamma, b.beta = second.beta, b.y = dev(y2s);
  normalize(a.x, x, first.gamma, first.beta, save_mean, save_invstd, a.relu, dev(ys), b);
  check_last_launch("batch_norm pair normalize");
}

template <storage S>
void batch_norm_pair_backward(const batch_norm_args& a, const S* dys, const S* dy2s, const S* xs,
                              const batch_norm_affine& first, const batch_norm_affine& second, const float* save_mean,
                              const float* save_invstd, S* dxs, bool add, float* dgamma, float* dbeta,
                              float* dgamma2, float* dbeta2) {
  GRCNN_PROFILE("bn pair backward");
  const auto *dy = dev(dys), *dy2 = dev(dy2s), *x = dev(xs);
  scratch coefficients(static_cast<std::size_t>(a.x.c) * 2 * sizeof(dx_coefficients));
  auto* co = coefficients.as<dx_coefficients>();
  gradient_coefficients(a, true, dy, x, first.gamma, first.beta, save_mean, save_invstd, dgamma, dbeta, co);
  gradient_coefficients(a, true, dy2, x, second.gamma, second.beta, save_mean, save_invstd, dgamma2, dbeta2, co + a.x.c);
  if (!dxs) return;
  second_gradient<device_t<S>> b;
  b.dy = dy2, b.co = co + a.x.c;
  input_gradient(a, true, dy, x, co, dev(dxs), add, b);
}

namespace detail {
void channel_totals(const view4& v, const float* x, double* out) {
  channel_sums<0>(v, x, static_cast<const float*>(nullptr), false, nullptr, nullptr, nullptr, nullptr, out);
}
void channel_totals(const view4& v, const __nv_bfloat16* x, double* out) {
  channel_sums<0>(v, x, static_cast<const __nv_bfloat16*>(nullptr), false, nullptr, nullptr, nullptr, nullptr, out);
}
}  // namespace detail

#define GRCNN_BATCH_NORM_FOR(S)                                                                                   \
  template void batch_norm_forward_training<S>(const batch_norm_args&, const S*, const float*, const float*, float*,  \
                                               float*, S*, float*, float*);                                           \
  template void batch_norm_forward_inference<S>(const batch_norm_args&, const S*, const float*, const float*,         \
                                                const float*, const float*, S*, float*, float*);                      \
  template void batch_norm_backward<S>(const batch_norm_args&, bool, const S*, const S*, const float*, const float*, \
                                       const float*, const float*, S*, bool, float*, float*);  \
  template void batch_norm_pair_forward_training<S>(const batch_norm_args&, const S*, const batch_norm_affine&,       \
                                                    const batch_norm_affine&, S*, S*, float*, float*);                \
  template void batch_norm_pair_backward<S>(const batch_norm_args&, const S*, const S*, const S*,                     \
                                            const batch_norm_affine&, const batch_norm_affine&, const float*,         \
                                            const float*, S*, bool, float*, float*, float*, float*);
GRCNN_BATCH_NORM_FOR(float)
GRCNN_BATCH_NORM_FOR(bf16)
#undef GRCNN_BATCH_NORM_FOR

}  // namespace grcnn::cuda
