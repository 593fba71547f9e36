// CUDA component smoke test: the probe links against the CUDA runtime and cuDNN. Without a GPU it
// prints the reason and exits 77, which ctest reports as skipped.
#include <cstdio>

#include <grcnn/backends/cuda/device.hpp>

int main() {
  const auto r = grcnn::cuda::probe();
  std::printf("cuDNN %zu, CUDA runtime %d\n", r.cudnn_version, r.runtime_version);
  if (r.device_count == 0) {
    std::printf("SKIPPED: no usable GPU (%s)\n", r.reason.c_str());
    return 77;
  }
  std::printf("device 0: %s, sm_%d, %.1f GiB\n", r.name.c_str(), r.compute_capability,
              static_cast<double>(r.total_memory) / (1 << 30));
  return r.cudnn_version >= 90000 ? 0 : 1;
}
