// The CUDA component's device probe: CUDA runtime and cuDNN versions, device 0's properties.
#include <cuda_runtime.h>
#include <cudnn.h>

#include "grcnn/backends/cuda/device.hpp"

namespace grcnn::cuda {

device_report probe() {
  device_report r;
  r.cudnn_version = cudnnGetVersion();
  cudaRuntimeGetVersion(&r.runtime_version);
  const cudaError_t err = cudaGetDeviceCount(&r.device_count);
  if (err != cudaSuccess) {
    r.device_count = 0;
    r.reason = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(err);
    return r;
  }
  if (r.device_count == 0) {
    r.reason = "the CUDA runtime reports no device";
    return r;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) {
    r.name = prop.name;
    r.compute_capability = prop.major * 10 + prop.minor;
    r.total_memory = prop.totalGlobalMem;
  }
  return r;
}

}  // namespace grcnn::cuda
