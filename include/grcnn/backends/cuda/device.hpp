#pragma once
// What the CUDA component sees of the machine. Declared here, compiled in the optional grcnn::cuda
// library (src/cuda), so CPU-only consumers never include CUDA headers.
#include <cstddef>
#include <string>

namespace grcnn::cuda {

struct device_report {
  int device_count = 0;
  std::string reason;          // why no device is usable, when device_count == 0
  std::string name;            // device 0
  int compute_capability = 0;  // e.g. 90 for an H100
  std::size_t total_memory = 0;
  std::size_t cudnn_version = 0;
  int runtime_version = 0;
};

// Queries the CUDA runtime and cuDNN; never throws (a machine without a GPU gets a reason).
device_report probe();

}  // namespace grcnn::cuda
