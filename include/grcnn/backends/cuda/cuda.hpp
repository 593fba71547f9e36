#pragma once
// The CUDA backend policy: cuDNN convolutions, cuBLAS linear layers, our own kernels for batch norm
// (+ReLU), the GRCL gate, pooling, softmax, losses and the selective-kernel fusion (src/cuda). Tensors
// live on the device (tensor::to_device, network::to_device). Plain NCHW and channels-last both work;
// with the legacy cuDNN convolution API NCHW is the faster order in f32/tf32 (layouts.hpp). The math
// mode of the matrix units is a policy tag: cuda_t<math_mode::fp32> (IEEE, the default) or
// cuda_t<math_mode::tf32> (tensor cores). Activations may be f32 or bf16 (bf16 mixed precision,
// nn/precision.hpp: cuDNN and cuBLAS on tensor cores with f32 accumulation, our kernels computing in
// f32 between bf16 loads and stores, batch-norm parameters and statistics in f32); losses and softmax
// take f32 logits. Results are not bitwise reproducible across processes: cuDNN's algorithm choice is
// timed (our own kernels use no atomics and reduce in a fixed order).
//
// This header holds the policy and includes the kernels, one header per op family as in onednn/.
// Needs the compiled component: link grcnn::cuda (CMake option GRCNN_ENABLE_CUDA).
#include <array>
#include <string_view>

#include "grcnn/backends/backend.hpp"
#include "grcnn/backends/cuda/kernels.hpp"

namespace grcnn::backends {

// The math-mode tags cuda_t takes: the backend's name and the matrix units' cuda::math_mode. (Not
// nn::precision, which picks the activations' dtype and combines with either.)
namespace math_mode {
struct fp32 {
  static constexpr std::string_view backend_name = "cuda";
  static constexpr cuda::math_mode math = cuda::math_mode::fp32;
};
struct tf32 {
  static constexpr std::string_view backend_name = "cuda_tf32";
  static constexpr cuda::math_mode math = cuda::math_mode::tf32;
};
}  // namespace math_mode

template <class Mode = math_mode::fp32>
struct cuda_t {
  static constexpr std::string_view name = Mode::backend_name;
  static constexpr cuda::math_mode math = Mode::math;
  using fallback = void;  // nothing on the host can read device memory: refusals are errors
  static constexpr std::array<dtype, 2> dtypes{dtype::f32, dtype::bf16};
  static constexpr grcnn::device where = cuda_device;
};
using cuda = cuda_t<>;
using cuda_tf32 = cuda_t<math_mode::tf32>;

}  // namespace grcnn::backends

#include "grcnn/backends/cuda/context.hpp"
#include "grcnn/backends/cuda/layouts.hpp"
#include "grcnn/backends/cuda/conv2d.hpp"
#include "grcnn/backends/cuda/batch_norm.hpp"
#include "grcnn/backends/cuda/sync_batch_norm.hpp"
#include "grcnn/backends/cuda/elementwise.hpp"
#include "grcnn/backends/cuda/pool2d.hpp"
#include "grcnn/backends/cuda/linear.hpp"
#include "grcnn/backends/cuda/softmax_losses.hpp"
#include "grcnn/backends/cuda/sk_select.hpp"
#include "grcnn/backends/cuda/vone.hpp"

namespace grcnn::backends {
// Every op of ops::op_table has a CUDA kernel (some refuse by design at run time, with the reason).
static_assert(complete<cuda>);
static_assert(complete<cuda_tf32>);
}  // namespace grcnn::backends
