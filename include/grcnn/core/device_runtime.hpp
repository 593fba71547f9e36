#pragma once
// What core needs from a device (GPU) runtime: memory, copies and the elementwise loops core itself
// runs (gradient accumulation, zero fill, normal draws); nothing of training (the optimizers' device
// updates are train's: train/device_updates.hpp). A device component registers its runtime at
// start-up (grcnn/backends/cuda/cuda.hpp does so for CUDA), so core stays free of CUDA headers and a
// CPU-only build never links a GPU library. Every call is ordered on the device's compute stream.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "grcnn/core/device.hpp"
#include "grcnn/core/dtype.hpp"
#include "grcnn/core/error.hpp"

namespace grcnn {

struct device_memory_stats {
  std::size_t allocations = 0;       // device allocations asked of the runtime
  std::size_t bytes_in_use = 0;      // by live tensors
  std::size_t peak_bytes_in_use = 0;
  std::size_t pool_reserved = 0;     // held by the stream-ordered pool (live plus cached)
  std::size_t system_allocations = 0;  // times the pool had to grow from the driver
};

class device_runtime {
 public:
  virtual ~device_runtime() = default;
  virtual void* allocate(std::size_t bytes) = 0;
  virtual void deallocate(void* p, std::size_t bytes) = 0;
  // Copies between host and device or within the device. A copy to the host returns once the
  // data are there; a copy from pageable host memory returns once the source may be reused; a copy
  // from page-locked memory (allocate_pinned) returns at once and runs in stream order.
  virtual void copy(void* dst, device dst_dev, const void* src, device src_dev, std::size_t bytes) = 0;
  // Page-locked host memory (tensor::empty_pinned: the data loader's batches for a GPU), which the
  // device reads by DMA without a staging copy. A freed block is reused only once the stream has passed
  // every copy enqueued before the free, so a copy in flight never reads a block given to someone else.
  // Only a copy from the start of such a block skips the wait (tensors start there).
  virtual void* allocate_pinned(std::size_t bytes) = 0;
  virtual void deallocate_pinned(void* p, std::size_t bytes) = 0;
  virtual void zero(void* p, std::size_t bytes) = 0;
  // Reorders an [N, C, H, W] tensor of elem_size-byte elements between plain (NCHW) and channels-last
  // (NHWC) order, on the device.
  virtual void permute_4d(std::size_t elem_size, const void* src, void* dst, std::int64_t n, std::int64_t c,
                          std::int64_t h, std::int64_t w, bool to_channels_last) = 0;
  // Standard normal draws (core/random.hpp: element (sample, j) is philox::normal4(seed, stream, sample,
  // j / 4) lane j % 4) into an [n, c, h, w] tensor of type t, plain or channels-last.
  virtual void fill_normal(dtype t, void* dst, std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w,
                           bool channels_last, std::uint64_t seed, std::uint64_t stream) = 0;
  // dst[i] += src[i] for n elements of type t (gradient accumulation on the device).
  virtual void add_inplace(dtype t, void* dst, const void* src, std::size_t n) = 0;
  virtual void synchronize() = 0;
  virtual device_memory_stats memory_stats() const = 0;
};

namespace detail {
inline std::array<device_runtime*, 2>& runtimes() {
  static std::array<device_runtime*, 2> r{};
  return r;
}
}  // namespace detail

inline void register_device_runtime(device_kind k, device_runtime* r) { detail::runtimes()[static_cast<int>(k)] = r; }

inline device_runtime& runtime_for(device d) {
  device_runtime* r = detail::runtimes()[static_cast<int>(d.kind)];
  GRCNN_CHECK(d.kind == device_kind::cpu || d.index == 0, error, "device ", d.str(),
              ": only device 0 of a kind is supported (select the GPU with CUDA_VISIBLE_DEVICES)");
  GRCNN_CHECK(r != nullptr, error, "device ", d.str(),
              ": no runtime registered; build with GRCNN_ENABLE_CUDA, link grcnn::cuda and include "
              "<grcnn/backends/cuda/cuda.hpp>");
  return *r;
}

}  // namespace grcnn
