#pragma once
// The NCCL engine: collectives on device (GPU) buffers, one GPU per rank, for data-parallel training on
// the CUDA backend. Built with the CUDA component when nccl.h is found (cmake/GrcnnDist.cmake); the
// implementation is compiled (src/cuda/nccl.cu) and loads libnccl.so.2 at run time (GRCNN_NCCL_LIBRARY,
// else the library search path, else the Python nvidia-nccl package CMake saw), so a program that never
// makes an NCCL communicator does not need the library.
//
// It stands on a host communicator: MPI under a launcher (rank, world size and the rank on the node
// come from MPI, right under srun too), or single_process for a world of one without MPI. Rank 0's NCCL
// unique id is broadcast through it; buffers in host memory (the trainer's agreements and metrics, a
// sync batch norm's statistics, BN counters) are reduced through it, buffers in device memory through
// NCCL; the heartbeat ring and abort are MPI's. Each channel keeps program order on every rank, so the
// two never wait on each other.
//
// Device collectives run on the engine's own stream after the compute stream's work so far (an event),
// so a gradient bucket is reduced while backward goes on. wait() polls the completion with
// ncclCommGetAsyncError: an NCCL error, or no completion within the timeout (GRCNN_DIST_TIMEOUT, 300 s),
// aborts the NCCL communicator and throws dist_error naming the collective. bf16 buffers are reduced
// through f32 (the contract: accumulated in f32, rounded once), f32, f64 and i64 directly.
//
// The GPU: the rank on the node, modulo the GPUs the process sees, is made the CUDA component's device
// before its first use (cuda::select_device); tensors still say cuda:0, meaning "this process's GPU".
#include <chrono>
#include <memory>

#include "grcnn/dist/mpi.hpp"

namespace grcnn::dist {

struct nccl_options {
  std::chrono::milliseconds timeout{std::chrono::seconds(300)};  // a collective not complete by then fails
  static nccl_options from_environment() {
    nccl_options o;
    o.timeout = mpi_options::from_environment().timeout;
    return o;
  }
};

// Whether this build has the NCCL engine (GRCNN_HAS_NCCL: the grcnn::dist component with CUDA and nccl.h).
#if defined(GRCNN_HAS_NCCL)
inline constexpr bool nccl_built = true;
#else
inline constexpr bool nccl_built = false;
#endif

class nccl_communicator final : public communicator {
 public:
  // Collective over every rank of `host` (host buffers; it must outlive this): selects the GPU, loads
  // NCCL and creates its communicator. Throws dist_error with the reason (no GPU, no libnccl, NCCL's).
  explicit nccl_communicator(communicator& host, nccl_options o = nccl_options::from_environment());
  ~nccl_communicator() override;
  nccl_communicator(const nccl_communicator&) = delete;
  nccl_communicator& operator=(const nccl_communicator&) = delete;

  int rank() const override;
  int world_size() const override;
  int local_rank() const override;
  int local_size() const override;
  std::string_view engine() const override { return "nccl"; }
  bool accepts(device d) const override { return d.kind == device_kind::cpu || d.kind == device_kind::cuda; }

  void all_reduce(void* data, std::size_t count, dtype t, reduce_op op) override;
  std::unique_ptr<pending> all_reduce_async(void* data, std::size_t count, dtype t, reduce_op op) override;
  void broadcast(void* data, std::size_t count, dtype t, int root) override;
  void barrier() override;
  [[noreturn]] void abort(const std::string& why, int code) override;
  void scale_into(void* dst, const void* src, std::size_t n, dtype t, double factor, device where) override;
  communicator& side_channel() override;  // the host engine's: host buffers only

  int gpu() const;                 // the physical GPU of this rank
  std::string nccl_version() const;  // of the library loaded, e.g. "2.28.9"

  struct impl;

 private:
  std::unique_ptr<impl> p_;
};

}  // namespace grcnn::dist
