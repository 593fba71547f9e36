#pragma once
// GRCNN_HD marks the few functions written once for host loops and CUDA kernels (the VOne response, the
// Philox normal draws): __host__ __device__ under nvcc, nothing elsewhere.
#if defined(__CUDACC__)
#define GRCNN_HD __host__ __device__
#else
#define GRCNN_HD
#endif

// GRCNN_HD_INLINE: GRCNN_HD with forced inlining, for helpers that must melt into the loop that calls
// them: GCC vectorises no host loop with a call left in it (core/philox.hpp's draws).
#if defined(__CUDACC__)
#define GRCNN_HD_INLINE __host__ __device__ __forceinline__
#elif defined(__GNUC__)
#define GRCNN_HD_INLINE __attribute__((always_inline)) inline
#else
#define GRCNN_HD_INLINE inline
#endif
