// The VOneBlock response (simple / complex cells, k_exc, neuronal or Gaussian noise): one thread per
// element of q0's map, any strides, f32 or bf16 storage; the arithmetic is grcnn/contract/vone_math.hpp,
// shared with the CPU.
#include "common.cuh"
#include "grcnn/contract/vone_math.hpp"

namespace grcnn::cuda {

using namespace detail;

namespace {

struct vone_offsets {
  std::int64_t q0, q1;
  bool simple;
};
__device__ inline vone_offsets vone_at(const vone_args& a, std::int64_t i) {
  const auto& v = a.q0;
  const std::int64_t w = i % v.w, h = (i / v.w) % v.h, c = (i / (v.w * v.h)) % v.c, n = i / (v.w * v.h * v.c);
  const bool simple = c < a.simple;
  const std::int64_t o0 = n * v.sn + c * v.sc + h * v.sh + w * v.sw;
  const std::int64_t o1 = simple ? 0 : n * a.q1.sn + (c - a.simple) * a.q1.sc + h * a.q1.sh + w * a.q1.sw;
  return {o0, o1, simple};
}
__device__ inline ops::vone_math::coefficients coefficients_of(const vone_args& a) {
  ops::vone_math::coefficients k;
  k.k_exc = a.k_exc, k.mode = a.mode, k.scale = a.scale, k.level = a.level;
  return k;
}

template <class T>
__global__ void k_vone_fwd(vone_args a, const T* q0, const T* q1, const T* eps, T* y) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < a.q0.numel();
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const auto o = vone_at(a, i);
    st(y[o.q0], ops::vone_math::forward<float>(coefficients_of(a), o.simple, ld(q0[o.q0]), o.simple ? 0.f : ld(q1[o.q1]),
                                               eps ? ld(eps[o.q0]) : 0.f));
  }
}
template <class T>
__global__ void k_vone_bwd(vone_args a, const T* dy, const T* q0, const T* q1, const T* eps, T* dq0, T* dq1) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < a.q0.numel();
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const auto o = vone_at(a, i);
    float ga = 0.f, gb = 0.f;
    ops::vone_math::backward<float>(coefficients_of(a), o.simple, ld(q0[o.q0]), o.simple ? 0.f : ld(q1[o.q1]),
                                    eps ? ld(eps[o.q0]) : 0.f, ld(dy[o.q0]), ga, gb);
    if (dq0) st(dq0[o.q0], ga);
    if (dq1 && !o.simple) st(dq1[o.q1], gb);
  }
}

}  // namespace

// f32 or bf16 storage (mixed precision), f32 arithmetic either way, as the CPU kernels.
template <storage S>
void vone_response_forward(const vone_args& a, const S* q0, const S* q1, const S* eps, S* y) {
  GRCNN_PROFILE("vone_response");
  if (a.q0.numel() == 0) return;
  k_vone_fwd<<<blocks_for(a.q0.numel()), 256, 0, stream()>>>(a, dev(q0), dev(q1), dev(eps), dev(y));
  check_last_launch("vone_response forward");
}
template <storage S>
void vone_response_backward(const vone_args& a, const S* dy, const S* q0, const S* q1, const S* eps, S* dq0, S* dq1) {
  GRCNN_PROFILE("vone_response backward");
  if (a.q0.numel() == 0 || (!dq0 && !dq1)) return;
  k_vone_bwd<<<blocks_for(a.q0.numel()), 256, 0, stream()>>>(a, dev(dy), dev(q0), dev(q1), dev(eps), dev(dq0), dev(dq1));
  check_last_launch("vone_response backward");
}
template void vone_response_forward<float>(const vone_args&, const float*, const float*, const float*, float*);
template void vone_response_forward<bf16>(const vone_args&, const bf16*, const bf16*, const bf16*, bf16*);
template void vone_response_backward<float>(const vone_args&, const float*, const float*, const float*, const float*,
                                            float*, float*);
template void vone_response_backward<bf16>(const vone_args&, const bf16*, const bf16*, const bf16*, const bf16*, bf16*,
                                           bf16*);

}  // namespace grcnn::cuda
