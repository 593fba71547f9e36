#pragma once
// The CUDA implementation of core's device_runtime (memory pool, copies, accumulation), compiled in
// grcnn::cuda. cuda.hpp registers it at start-up; call install_runtime() yourself only when using
// device tensors without that header.
#include "grcnn/core/device_runtime.hpp"

namespace grcnn::cuda {
device_runtime& runtime();
bool install_runtime();  // registers runtime() for device_kind::cuda; returns true
}  // namespace grcnn::cuda
