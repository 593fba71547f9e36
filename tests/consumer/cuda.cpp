// grcnn::cuda: the device probe (links the CUDA runtime and cuDNN); the test builds it, does not run it.
#include <grcnn/backends/cuda/device.hpp>

#include <cstdio>

#include "no_foreign_headers.hpp"

int main() {
  const auto r = grcnn::cuda::probe();
  std::printf("cuda consumer: %d device(s), cuDNN %zu%s%s\n", r.device_count, r.cudnn_version,
              r.device_count ? "" : ": ", r.device_count ? "" : r.reason.c_str());
  return 0;
}
