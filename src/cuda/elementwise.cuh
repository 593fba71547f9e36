// Elementwise maps over contiguous tensors, 16 bytes per memory instruction: a thread loads a pack of
// 4 floats or 8 bf16 from each input, computes in f32, and stores a pack per output. 2-byte scalar
// accesses move 64 bytes per warp instruction, too few to keep HBM busy on bf16 activations. The
// arithmetic per element is the functor's, so a packed and a scalar run agree bit for bit.
#pragma once
#include <array>
#include <cstdint>

#include "common.cuh"

namespace grcnn::cuda::detail {

template <class T>
inline constexpr int pack_width = 16 / static_cast<int>(sizeof(T));
template <class T>
struct alignas(16) pack {
  T v[pack_width<T>];
};
inline bool pack_aligned(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

// A pack as stored (what a kernel keeps in flight: 4 registers) and widened to f32 (8 registers for bf16).
template <class T>
__device__ __forceinline__ pack<T> load_raw(const T* p) {
  return *reinterpret_cast<const pack<T>*>(p);
}
template <class T>
__device__ __forceinline__ void unpack(const pack<T>& q, float (&out)[pack_width<T>]) {
#pragma unroll
  for (int k = 0; k < pack_width<T>; ++k) out[k] = ld(q.v[k]);
}
template <class T>
__device__ __forceinline__ void load_pack(const T* p, float (&out)[pack_width<T>]) {
  unpack(load_raw(p), out);
}
template <class T>
__device__ __forceinline__ void store_pack(T* p, const float (&in)[pack_width<T>]) {
  pack<T> q;
#pragma unroll
  for (int k = 0; k < pack_width<T>; ++k) st(q.v[k], in[k]);
  *reinterpret_cast<pack<T>*>(p) = q;
}

// The operands of a map: In inputs, Out outputs (a null output is not stored).
template <class T, int In, int Out>
struct map_operands {
  const T* in[In];
  T* out[Out];
};

// F: `__device__ void operator()(const float (&x)[In], float (&y)[Out]) const`, every y written.
template <class T, int In, int Out, class F>
__global__ void k_map(F f, map_operands<T, In, Out> p, std::int64_t n, bool packed) {
  constexpr int K = pack_width<T>;
  std::int64_t done = 0;
  if (packed) {
    const std::int64_t packs = n / K;
    GRCNN_GRID_STRIDE(q, packs) {
      float x[In][K], y[Out][K];
#pragma unroll
      for (int j = 0; j < In; ++j) load_pack(p.in[j] + q * K, x[j]);
#pragma unroll
      for (int k = 0; k < K; ++k) {
        float xi[In], yi[Out];
#pragma unroll
        for (int j = 0; j < In; ++j) xi[j] = x[j][k];
        f(xi, yi);
#pragma unroll
        for (int j = 0; j < Out; ++j) y[j][k] = yi[j];
      }
#pragma unroll
      for (int j = 0; j < Out; ++j)
        if (p.out[j]) store_pack(p.out[j] + q * K, y[j]);
    }
    done = packs * K;
  }
  // The tail after the last whole pack, or everything when a pointer is not 16-byte aligned.
  for (std::int64_t i = done + blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    float xi[In], yi[Out];
#pragma unroll
    for (int j = 0; j < In; ++j) xi[j] = ld(p.in[j][i]);
    f(xi, yi);
#pragma unroll
    for (int j = 0; j < Out; ++j)
      if (p.out[j]) st(p.out[j][i], yi[j]);
  }
}

// Launches k_map on the compute stream over n elements; packs when every operand is 16-byte aligned.
template <class T, int In, int Out, class F>
void launch_map(const char* what, F f, std::int64_t n, const std::array<const T*, In>& in, const std::array<T*, Out>& out) {
  if (n <= 0) return;
  map_operands<T, In, Out> p;
  bool packed = true;
  for (int j = 0; j < In; ++j) p.in[j] = in[j], packed = packed && pack_aligned(in[j]);
  for (int j = 0; j < Out; ++j) p.out[j] = out[j], packed = packed && (!out[j] || pack_aligned(out[j]));
  const std::int64_t work = packed ? (n + pack_width<T> - 1) / pack_width<T> : n;
  k_map<T, In, Out, F><<<blocks_for(work), 256, 0, stream()>>>(f, p, n, packed);
  check_last_launch(what);
}

// The add op's map (elementwise.cu), shared with the runtime's gradient accumulation (runtime.cu).
struct add_op {  // also the gradient accumulation d += s (in place: a pack is loaded before it is stored)
  __device__ void operator()(const float (&x)[2], float (&y)[1]) const { y[0] = x[0] + x[1]; }
};

}  // namespace grcnn::cuda::detail
