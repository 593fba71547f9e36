// The VOneBlock response (simple / complex cells, k_exc, neuronal or Gaussian noise): one thread per
// element of q0's map, any strides; the arithmetic is grcnn/ops/vone_math.hpp, shared with the CPU.
#include "common.cuh"
#include "grcnn/ops/vone_math.hpp"

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

__global__ void k_vone_fwd(vone_args a, const float* q0, const float* q1, const float* eps, float* y) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < a.q0.numel();
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const auto o = vone_at(a, i);
    y[o.q0] = ops::vone_math::forward<float>(coefficients_of(a), o.simple, q0[o.q0], o.simple ? 0.f : q1[o.q1],
                                             eps ? eps[o.q0] : 0.f);
  }
}
__global__ void k_vone_bwd(vone_args a, const float* dy, const float* q0, const float* q1, const float* eps, float* dq0,
                           float* dq1) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < a.q0.numel();
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const auto o = vone_at(a, i);
    float ga = 0.f, gb = 0.f;
    ops::vone_math::backward<float>(coefficients_of(a), o.simple, q0[o.q0], o.simple ? 0.f : q1[o.q1],
                                    eps ? eps[o.q0] : 0.f, dy[o.q0], ga, gb);
    if (dq0) dq0[o.q0] = ga;
    if (dq1 && !o.simple) dq1[o.q1] = gb;
  }
}

}  // namespace

void vone_response_forward(const vone_args& a, const float* q0, const float* q1, const float* eps, float* y) {
  GRCNN_PROFILE("vone_response");
  if (a.q0.numel() == 0) return;
  k_vone_fwd<<<blocks_for(a.q0.numel()), 256, 0, stream()>>>(a, q0, q1, eps, y);
  check_last_launch("vone_response forward");
}
void vone_response_backward(const vone_args& a, const float* dy, const float* q0, const float* q1, const float* eps,
                            float* dq0, float* dq1) {
  GRCNN_PROFILE("vone_response backward");
  if (a.q0.numel() == 0 || (!dq0 && !dq1)) return;
  k_vone_bwd<<<blocks_for(a.q0.numel()), 256, 0, stream()>>>(a, dy, q0, q1, eps, dq0, dq1);
  check_last_launch("vone_response backward");
}

}  // namespace grcnn::cuda
