#pragma once
// The CUDA implementation of the optimizers' device updates (src/cuda/optimizer.cu, in grcnn::cuda's
// library), registered at start-up by including this header. Needs the compiled component: link
// grcnn::cuda (CMake option GRCNN_ENABLE_CUDA).
#include "grcnn/train/device_updates.hpp"

namespace grcnn::cuda {
bool install_optimizer_kernels();  // registers the CUDA kernels for device_kind::cuda; returns true
}  // namespace grcnn::cuda

namespace grcnn::train::detail {
inline const bool cuda_optimizer_kernels_installed = grcnn::cuda::install_optimizer_kernels();
}  // namespace grcnn::train::detail
