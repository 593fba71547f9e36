// Max and average pooling over any [N, C, H, W] strides: our own kernels.
// Max pooling records each output's winner as its index inside the window (row-major over kh x kw,
// counted from the unclipped window origin): 2 bytes per output instead of an 8-byte input offset.
// The backward gathers: each input element sums the gradients of the outputs whose windows cover it
// (at most ceil(kh/sh) * ceil(kw/sw) of them), so dx is written once in its own storage, without a
// zeroed f32 buffer, atomics or a rounding pass, and the sums are deterministic.
#include <cmath>
#include <cstdint>
#include <initializer_list>

#include "common.cuh"
#include "elementwise.cuh"

namespace grcnn::cuda {

using namespace detail;

namespace {

// (n, c, h, w) of the element with physical index i of a contiguous channels-last or plain view.
template <class I>
__device__ inline void coords_of(const view4& v, I i, I& n, I& c, I& h, I& w) {
  const I C = static_cast<I>(v.c), H = static_cast<I>(v.h), W = static_cast<I>(v.w);
  if (v.sc == 1 && v.c > 1) {
    c = i % C;
    I r = i / C;
    w = r % W;
    r /= W;
    h = r % H, n = r / H;
  } else {
    w = i % W;
    I r = i / W;
    h = r % H;
    r /= H;
    c = r % C, n = r / C;
  }
}
template <class I>
__device__ inline I offset4(const view4& v, I n, I c, I h, I w) {
  return n * static_cast<I>(v.sn) + c * static_cast<I>(v.sc) + h * static_cast<I>(v.sh) + w * static_cast<I>(v.sw);
}
// The window of output (oh, ow): origin (hs, ws) and the clipped end used for the average's divisor
// (padding counts, as PyTorch's count_include_pad).
template <class I>
struct pool_window {
  I hs, ws, he, we;
  __device__ pool_window(const pool_args& a, I oh, I ow) {
    hs = oh * a.sh - a.ph, ws = ow * a.sw - a.pw;
    he = min(hs + static_cast<I>(a.kh), static_cast<I>(a.x.h + a.ph));
    we = min(ws + static_cast<I>(a.kw), static_cast<I>(a.x.w + a.pw));
  }
  __device__ float divisor() const { return static_cast<float>((he - hs) * (we - ws)); }
};
// Outputs whose windows cover input row h: oh in [lo, hi] (empty when lo > hi).
template <class I>
__device__ inline void covering(I h, int k, int s, int p, I outs, I& lo, I& hi) {
  const I first = h + p - k;  // oh * s must exceed it
  lo = first < 0 ? 0 : first / s + 1;
  hi = min((h + p) / s, outs - 1);
}

// The running maximum of a window: the first largest value, or the last NaN (PyTorch's rule).
__device__ __forceinline__ void take_max(float v, int idx, float& best, int& at) {
  if (at < 0 || v > best || isnan(v)) best = v, at = idx;
}

template <class I, class T>
__global__ void k_pool_fwd(pool_args a, const T* x, T* y, std::uint16_t* argmax) {
  const std::int64_t total = a.y.numel();
  GRCNN_GRID_STRIDE(i, total) {
    I n, c, oh, ow;
    coords_of<I>(a.y, static_cast<I>(i), n, c, oh, ow);
    const pool_window<I> win(a, oh, ow);
    const I yo = offset4<I>(a.y, n, c, oh, ow);
    const I h0 = max(win.hs, I(0)), h1 = min(win.he, static_cast<I>(a.x.h));
    const I w0 = max(win.ws, I(0)), w1 = min(win.we, static_cast<I>(a.x.w));
    if (a.max) {
      float best = 0.f;
      int at = -1;
      for (I h = h0; h < h1; ++h)
        for (I w = w0; w < w1; ++w)
          take_max(ld(x[offset4<I>(a.x, n, c, h, w)]), static_cast<int>((h - win.hs) * a.kw + (w - win.ws)), best, at);
      st(y[yo], best);
      argmax[yo] = static_cast<std::uint16_t>(at < 0 ? 0 : at);
    } else {  // summed in double: a global average runs over thousands of pixels (SKConv's pooling)
      double sum = 0.0;
      for (I h = h0; h < h1; ++h)
        for (I w = w0; w < w1; ++w) sum += ld(x[offset4<I>(a.x, n, c, h, w)]);
      st(y[yo], static_cast<float>(sum / win.divisor()));
    }
  }
}

template <class I, class T>
__global__ void k_pool_bwd(pool_args a, const T* dy, const std::uint16_t* argmax, T* dx) {
  const std::int64_t total = a.x.numel();
  GRCNN_GRID_STRIDE(i, total) {
    I n, c, h, w, oh0, oh1, ow0, ow1;
    coords_of<I>(a.x, static_cast<I>(i), n, c, h, w);
    covering<I>(h, a.kh, a.sh, a.ph, static_cast<I>(a.y.h), oh0, oh1);
    covering<I>(w, a.kw, a.sw, a.pw, static_cast<I>(a.y.w), ow0, ow1);
    float g = 0.f;
    for (I oh = oh0; oh <= oh1; ++oh)
      for (I ow = ow0; ow <= ow1; ++ow) {
        const pool_window<I> win(a, oh, ow);
        const I yo = offset4<I>(a.y, n, c, oh, ow);
        if (!a.max)
          g += ld(dy[yo]) / win.divisor();
        else if (argmax[yo] == (h - win.hs) * a.kw + (w - win.ws))
          g += ld(dy[yo]);
      }
    st(dx[offset4<I>(a.x, n, c, h, w)], g);
  }
}

// Channels-last with whole packs of channels: a thread takes a pack of K channels of one pixel, so
// every access moves 16 bytes, and the max pooling's K window indices move together (16 bytes for bf16).
template <int K>
struct alignas(2 * K) window_indices {
  std::uint16_t v[K];
};
struct pool_pack_index {
  std::uint32_t n, q, h, w;  // q: the pack within the pixel's channels
  __device__ pool_pack_index(std::uint32_t i, std::uint32_t packs, std::uint32_t H, std::uint32_t W) {
    q = i % packs;
    std::uint32_t r = i / packs;
    w = r % W;
    r /= W;
    h = r % H, n = r / H;
  }
};
template <class T>
__global__ void k_pool_fwd_packed(pool_args a, const T* x, T* y, std::uint16_t* argmax) {
  constexpr int K = pack_width<T>;
  const std::uint32_t P = static_cast<std::uint32_t>(a.x.c) / K;
  const std::int64_t total = a.y.numel() / K;
  GRCNN_GRID_STRIDE(i, total) {
    const pool_pack_index o(static_cast<std::uint32_t>(i), P, static_cast<std::uint32_t>(a.y.h),
                            static_cast<std::uint32_t>(a.y.w));
    using I = int;
    const pool_window<I> win(a, static_cast<I>(o.h), static_cast<I>(o.w));
    const I h0 = max(win.hs, 0), h1 = min(win.he, static_cast<I>(a.x.h));
    const I w0 = max(win.ws, 0), w1 = min(win.we, static_cast<I>(a.x.w));
    using U = std::uint32_t;
    float acc[K];
    double sum[K];  // average pooling sums in double (a global average runs over thousands of pixels)
    int at[K];
#pragma unroll
    for (int k = 0; k < K; ++k) acc[k] = 0.f, sum[k] = 0.0, at[k] = -1;
    for (I h = h0; h < h1; ++h)
      for (I w = w0; w < w1; ++w) {
        float v[K];
        load_pack(x + offset4<U>(a.x, o.n, o.q * K, static_cast<U>(h), static_cast<U>(w)), v);
        const int idx = (h - win.hs) * a.kw + (w - win.ws);
#pragma unroll
        for (int k = 0; k < K; ++k) {
          if (a.max)
            take_max(v[k], idx, acc[k], at[k]);
          else
            sum[k] += v[k];
        }
      }
    const U yo = offset4<U>(a.y, o.n, o.q * K, o.h, o.w);
    if (!a.max) {
      const float d = win.divisor();
#pragma unroll
      for (int k = 0; k < K; ++k) acc[k] = static_cast<float>(sum[k] / d);
    } else {
      window_indices<K> w;
#pragma unroll
      for (int k = 0; k < K; ++k) w.v[k] = static_cast<std::uint16_t>(at[k] < 0 ? 0 : at[k]);
      *reinterpret_cast<window_indices<K>*>(argmax + yo) = w;
    }
    store_pack(y + yo, acc);
  }
}
template <class T>
__global__ void k_pool_bwd_packed(pool_args a, const T* dy, const std::uint16_t* argmax, T* dx) {
  constexpr int K = pack_width<T>;
  const std::uint32_t P = static_cast<std::uint32_t>(a.x.c) / K;
  const std::int64_t total = a.x.numel() / K;
  GRCNN_GRID_STRIDE(i, total) {
    const pool_pack_index o(static_cast<std::uint32_t>(i), P, static_cast<std::uint32_t>(a.x.h),
                            static_cast<std::uint32_t>(a.x.w));
    using I = int;
    I oh0, oh1, ow0, ow1;
    covering<I>(static_cast<I>(o.h), a.kh, a.sh, a.ph, static_cast<I>(a.y.h), oh0, oh1);
    covering<I>(static_cast<I>(o.w), a.kw, a.sw, a.pw, static_cast<I>(a.y.w), ow0, ow1);
    using U = std::uint32_t;
    float g[K];
#pragma unroll
    for (int k = 0; k < K; ++k) g[k] = 0.f;
    for (I oh = oh0; oh <= oh1; ++oh)
      for (I ow = ow0; ow <= ow1; ++ow) {
        const pool_window<I> win(a, oh, ow);
        const U yo = offset4<U>(a.y, o.n, o.q * K, static_cast<U>(oh), static_cast<U>(ow));
        float d[K];
        load_pack(dy + yo, d);
        if (!a.max) {
          const float div = win.divisor();
#pragma unroll
          for (int k = 0; k < K; ++k) g[k] += d[k] / div;
        } else {
          const int idx = (static_cast<I>(o.h) - win.hs) * a.kw + (static_cast<I>(o.w) - win.ws);
          const window_indices<K> won = *reinterpret_cast<const window_indices<K>*>(argmax + yo);
#pragma unroll
          for (int k = 0; k < K; ++k)
            if (won.v[k] == idx) g[k] += d[k];
        }
      }
    store_pack(dx + offset4<U>(a.x, o.n, o.q * K, o.h, o.w), g);
  }
}

// Channels-last, contiguous, C a whole number of packs, 16-byte aligned, 32-bit offsets.
template <class T>
bool pool_packed(const pool_args& a, std::initializer_list<const void*> ptrs) {
  constexpr int K = pack_width<T>;
  auto cl = [](const view4& v) { return v.sc == 1 && v.sw == v.c && v.sh == v.w * v.c && v.sn == v.h * v.w * v.c; };
  if (!cl(a.x) || !cl(a.y) || a.x.c % K != 0 || a.x.c != a.y.c || !small_index(a.x) || !small_index(a.y)) return false;
  for (const void* p : ptrs)
    if (p && !pack_aligned(p)) return false;
  return true;
}

}  // namespace

template <storage S>
void pool_forward(const pool_args& a, const S* x, S* y, std::uint16_t* argmax) {
  GRCNN_PROFILE("pool forward");
  using T = device_t<S>;
  if (pool_packed<T>(a, {dev(x), dev(y), argmax}))
    k_pool_fwd_packed<T><<<blocks_for(a.y.numel() / pack_width<T>), 256, 0, stream()>>>(a, dev(x), dev(y), argmax);
  else if (small_index(a.x) && small_index(a.y))  // padding can make the output the larger of the two
    k_pool_fwd<std::int32_t, T><<<blocks_for(a.y.numel()), 256, 0, stream()>>>(a, dev(x), dev(y), argmax);
  else
    k_pool_fwd<std::int64_t, T><<<blocks_for(a.y.numel()), 256, 0, stream()>>>(a, dev(x), dev(y), argmax);
  check_last_launch("pool2d forward");
}
template <storage S>
void pool_backward(const pool_args& a, const S* dy, const std::uint16_t* argmax, S* dx) {
  GRCNN_PROFILE("pool backward");
  using T = device_t<S>;
  if (pool_packed<T>(a, {dev(dy), dev(dx), argmax}))
    k_pool_bwd_packed<T><<<blocks_for(a.x.numel() / pack_width<T>), 256, 0, stream()>>>(a, dev(dy), argmax, dev(dx));
  else if (small_index(a.x) && small_index(a.y))
    k_pool_bwd<std::int32_t, T><<<blocks_for(a.x.numel()), 256, 0, stream()>>>(a, dev(dy), argmax, dev(dx));
  else
    k_pool_bwd<std::int64_t, T><<<blocks_for(a.x.numel()), 256, 0, stream()>>>(a, dev(dy), argmax, dev(dx));
  check_last_launch("pool2d backward");
}
template void pool_forward<float>(const pool_args&, const float*, float*, std::uint16_t*);
template void pool_forward<bf16>(const pool_args&, const bf16*, bf16*, std::uint16_t*);
template void pool_backward<float>(const pool_args&, const float*, const std::uint16_t*, float*);
template void pool_backward<bf16>(const pool_args&, const bf16*, const std::uint16_t*, bf16*);

}  // namespace grcnn::cuda
