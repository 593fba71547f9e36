// Shared by the CUDA component's translation units: error checks that throw grcnn's errors naming
// the call, the one compute stream, library handles and launch helpers.
#pragma once
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdint>

#include "grcnn/backends/cuda/kernels.hpp"
#include "grcnn/core/error.hpp"

#define GRCNN_CUDA_CHECK(call)                                                                                   \
  do {                                                                                                          \
    const cudaError_t grcnn_e_ = (call);                                                                        \
    if (grcnn_e_ != cudaSuccess)                                                                                \
      throw ::grcnn::backend_error(::grcnn::detail::concat("cuda: ", #call, " failed: ", cudaGetErrorString(grcnn_e_), \
                                                           " (", __FILE__, ":", __LINE__, ")"));                \
  } while (0)
#define GRCNN_CUDNN_CHECK(call)                                                                                  \
  do {                                                                                                          \
    const cudnnStatus_t grcnn_s_ = (call);                                                                      \
    if (grcnn_s_ != CUDNN_STATUS_SUCCESS)                                                                       \
      throw ::grcnn::backend_error(::grcnn::detail::concat("cudnn: ", #call, " failed: ",                       \
                                                           cudnnGetErrorString(grcnn_s_), " (", __FILE__, ":", __LINE__, ")")); \
  } while (0)
#define GRCNN_CUBLAS_CHECK(call)                                                                                 \
  do {                                                                                                          \
    const cublasStatus_t grcnn_b_ = (call);                                                                     \
    if (grcnn_b_ != CUBLAS_STATUS_SUCCESS)                                                                      \
      throw ::grcnn::backend_error(::grcnn::detail::concat("cublas: ", #call, " failed: status ",               \
                                                           static_cast<int>(grcnn_b_), " (", __FILE__, ":", __LINE__, ")")); \
  } while (0)

namespace grcnn::cuda::detail {

// The component's context: device 0, one non-blocking compute stream, the device's default memory pool
// (kept, never trimmed, so a steady-state step reuses its blocks), cuBLAS and cuDNN handles on the
// stream. Created on first use and deliberately never destroyed: tensors freed during static
// destruction still find it.
struct context {
  cudaStream_t stream = nullptr;
  cudaMemPool_t pool = nullptr;
  cublasHandle_t blas = nullptr;
  cudnnHandle_t dnn = nullptr;
  int sm_count = 0;
};
context& ctx();
inline cudaStream_t stream() { return ctx().stream; }

// Scratch device memory from the pool, released (stream-ordered) at scope exit.
struct scratch {
  void* p = nullptr;
  explicit scratch(std::size_t bytes);
  ~scratch();
  scratch(const scratch&) = delete;
  scratch& operator=(const scratch&) = delete;
  template <class T>
  T* as() const { return static_cast<T*>(p); }
};

// Scoped device-time accounting under `name` while profiling is on (see set_profiling).
bool profiling();
void profile_add(const char* name, double seconds);
// Times one library call between synchronisations when profiling is on. A call made inside another's
// scope (the cast inside bf16 pool backward) belongs to the outer one and is not counted twice.
struct profile_scope {
  const char* name;
  bool on = false, counted = false;
  double t0 = 0;
  explicit profile_scope(const char* n);
  ~profile_scope();
};
#define GRCNN_PROFILE(name) ::grcnn::cuda::detail::profile_scope grcnn_profile_scope_(name)

// Per-channel sums over N, H and W of a 4-D view in double: out[2c] = the sum, out[2c + 1] = 0
// (norm.cu: a convolution's bias gradient shares batch norm's channel reductions).
void channel_totals(const view4& v, const float* x, double* out);
void channel_totals(const view4& v, const __nv_bfloat16* x, double* out);

// cuBLAS and cuDNN take int sizes: refuse what does not fit rather than wrap around.
inline int as_int(std::int64_t v, const char* what) {
  if (v < 0 || v > 2147483647)
    throw backend_error(::grcnn::detail::concat("cuda: ", what, " ", v, " exceeds the int range of cuBLAS/cuDNN"));
  return static_cast<int>(v);
}

inline int blocks_for(std::int64_t n, int threads = 256) {
  const std::int64_t b = (n + threads - 1) / threads;
  const std::int64_t cap = static_cast<std::int64_t>(ctx().sm_count) * 32;
  return static_cast<int>(b < 1 ? 1 : (b > cap ? cap : b));
}

// Whether 32-bit index arithmetic covers the view (fewer than 2^31 elements): batch norm's and pooling's
// kernels then index in int32 (64-bit division costs them more instructions than their memory traffic allows).
inline bool small_index(const view4& v) { return v.numel() < (std::int64_t(1) << 31); }

#define GRCNN_GRID_STRIDE(i, n) \
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < (n); i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)

__device__ inline float sigmoidf_(float v) { return 1.f / (1.f + __expf(-v)); }

// Storage types (kernels.hpp): f32, or bf16 whose host type grcnn::bf16 is __nv_bfloat16's bit layout.
// Kernels are templated on the device storage type and compute in f32: ld() widens, st() rounds to
// nearest even.
template <class S>
struct device_storage {
  using type = S;
};
template <>
struct device_storage<::grcnn::bf16> {
  using type = __nv_bfloat16;
};
template <class S>
using device_t = typename device_storage<S>::type;
template <class S>
device_t<S>* dev(S* p) {
  return reinterpret_cast<device_t<S>*>(p);
}
template <class S>
const device_t<S>* dev(const S* p) {
  return reinterpret_cast<const device_t<S>*>(p);
}
__device__ __forceinline__ float ld(float v) { return v; }
__device__ __forceinline__ float ld(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ void st(float& d, float v) { d = v; }
__device__ __forceinline__ void st(__nv_bfloat16& d, float v) { d = __float2bfloat16_rn(v); }

// Block-wide sum / max over blockDim.x threads (a multiple of 32, at most 1024).
template <class T>
__device__ inline T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}
template <class T>
__device__ inline T warp_max(T v) {
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_down_sync(0xffffffffu, v, o));
  return v;
}
template <class T>
__device__ inline T block_sum(T v) {
  __shared__ T part[32];
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) part[wid] = v;
  __syncthreads();
  const int nw = (blockDim.x + 31) >> 5;
  T r = threadIdx.x < nw ? part[threadIdx.x] : T(0);
  if (wid == 0) r = warp_sum(r);
  if (threadIdx.x == 0) part[0] = r;
  __syncthreads();
  return part[0];
}
template <class T>
__device__ inline T block_max(T v, T lowest) {
  __shared__ T part[32];
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) part[wid] = v;
  __syncthreads();
  const int nw = (blockDim.x + 31) >> 5;
  T r = threadIdx.x < nw ? part[threadIdx.x] : lowest;
  if (wid == 0) r = warp_max(r);
  if (threadIdx.x == 0) part[0] = r;
  __syncthreads();
  return part[0];
}

}  // namespace grcnn::cuda::detail
