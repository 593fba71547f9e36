#pragma once
// The optimizers' updates of device (GPU) parameters: one multi-tensor launch or a few for a whole
// parameter group instead of one per tensor. Train declares what it needs here; a device component
// registers an implementation (CUDA: grcnn/train/cuda_updates.hpp), so core and the backends know nothing
// of optimizers and a CPU-only build links no GPU code. Every call is ordered on the device's stream.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "grcnn/core/device.hpp"
#include "grcnn/core/error.hpp"

namespace grcnn::train {

// One tensor of a multi-tensor update and the hyper-parameters its group shares (f32 parameters).
// SGD: buf is null without momentum; first: the momentum buffer starts from this step's direction.
struct sgd_slot {
  float* w;
  const float* g;
  float* buf;
  std::size_t n;
  bool first;
};
struct sgd_hyper {
  float lr, weight_decay, momentum, damp;  // damp = 1 - dampening
  bool nesterov;
};
// AdamW: step is the tensor's own 1-based step count (a tensor without a gradient on some step lags).
struct adamw_slot {
  float* w;
  const float* g;
  float* m;
  float* v;
  std::size_t n;
  std::int64_t step;
};
struct adamw_hyper {
  double lr, weight_decay, beta1, beta2, eps;
};

// Semantics as train/sgd.hpp and train/adamw.hpp apply them on the host.
class device_optimizer_kernels {
 public:
  virtual ~device_optimizer_kernels() = default;
  virtual void sgd_update(std::span<const sgd_slot> slots, const sgd_hyper& h) = 0;
  virtual void adamw_update(std::span<const adamw_slot> slots, const adamw_hyper& h) = 0;
};

namespace detail {
inline std::array<device_optimizer_kernels*, 2>& optimizer_kernels() {
  static std::array<device_optimizer_kernels*, 2> k{};
  return k;
}
}  // namespace detail

inline void register_device_optimizer_kernels(device_kind k, device_optimizer_kernels* impl) {
  detail::optimizer_kernels()[static_cast<int>(k)] = impl;
}

inline device_optimizer_kernels& optimizer_kernels_for(device d) {
  device_optimizer_kernels* k = detail::optimizer_kernels()[static_cast<int>(d.kind)];
  GRCNN_CHECK(k != nullptr, error, "optimizer: parameters on ", d.str(),
              " but no device update kernels registered; link grcnn::cuda and include <grcnn/train/cuda_updates.hpp>");
  return *k;
}

}  // namespace grcnn::train
