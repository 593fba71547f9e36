#pragma once
// The communicator: what data-parallel training needs from a process group. Ranks, the world size and
// the rank on this node; in-place all-reduce (sum, min, max), broadcast and barrier on whole buffers of
// one element type; an asynchronous all-reduce for gradient buckets that overlap backward; abort. Two
// real engines implement it (dist/mpi.hpp: host buffers over Open MPI; dist/nccl.hpp: device buffers over
// NCCL) and `single_process` is the world of one (every collective is the identity), so a trainer written
// against the interface runs unchanged without a launcher. Tensors, the tape and the backends know
// nothing of it; train/ and dist/ use it.
//
// Contract, on every engine: collectives are called by every rank in the same order with the same
// count and type (a mismatch is the caller's bug: it hangs or fails on some engines); results are
// identical on every rank; bf16 data is accumulated in f32 and rounded once (to nearest even); a
// collective that cannot complete (a rank died or stopped answering) fails within the engine's timeout
// with the ranks named, never hangs.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "grcnn/core/device.hpp"
#include "grcnn/core/dtype.hpp"
#include "grcnn/core/error.hpp"
#include "grcnn/core/tensor.hpp"

namespace grcnn::dist {

enum class reduce_op { sum, min, max };

inline const char* op_name(reduce_op op) {
  switch (op) {
    case reduce_op::sum: return "sum";
    case reduce_op::min: return "min";
    case reduce_op::max: return "max";
  }
  return "?";
}

// Raised on every rank that learns a peer failed or a collective timed out; the message names the ranks.
struct dist_error : error {
  using error::error;
};

// A collective in flight (all_reduce_async). wait() blocks until the buffer holds the result, or throws
// dist_error; done() polls.
class pending {
 public:
  virtual ~pending() = default;
  virtual bool done() = 0;
  virtual void wait() = 0;
  // When the engine saw the collective complete (for timings); now where it does not know.
  virtual std::chrono::steady_clock::time_point completed_at() { return std::chrono::steady_clock::now(); }
};

class communicator {
 public:
  virtual ~communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual int local_rank() const = 0;        // the rank among the processes of this node
  virtual int local_size() const = 0;        // the processes of this node
  virtual std::string_view engine() const = 0;  // "mpi", "nccl", "single"
  virtual bool accepts(device d) const = 0;  // where the buffers must live

  virtual void all_reduce(void* data, std::size_t count, dtype t, reduce_op op) = 0;
  virtual std::unique_ptr<pending> all_reduce_async(void* data, std::size_t count, dtype t, reduce_op op) = 0;
  virtual void broadcast(void* data, std::size_t count, dtype t, int root) = 0;
  virtual void barrier() = 0;
  // Ends the whole job (every rank) after printing `why`; for a rank that cannot go on.
  [[noreturn]] virtual void abort(const std::string& why, int code) = 0;
  // dst[i] = src[i] * factor for n elements of type t (f32, f64, bf16) where the engine's buffers live
  // (DDP's pre-division into a bucket: mul_out(bucket_view, grad, 1/world)), the factor in t's precision
  // for f64 and in f32 otherwise. Host memory here; an engine with device buffers runs it on the device.
  virtual void scale_into(void* dst, const void* src, std::size_t n, dtype t, double factor, device where) {
    GRCNN_CHECK(where.kind == device_kind::cpu, error, "scale_into: the ", engine(), " communicator has no ",
                where.str(), " buffers");
    host_scale_into(dst, src, n, t, factor);
  }
  static void host_scale_into(void* dst, const void* src, std::size_t n, dtype t, double factor) {
    switch (t) {
      case dtype::f32: {
        const float f = static_cast<float>(factor);
        auto* d = static_cast<float*>(dst);
        const auto* s = static_cast<const float*>(src);
        for (std::size_t i = 0; i < n; ++i) d[i] = s[i] * f;
        return;
      }
      case dtype::f64: {
        auto* d = static_cast<double*>(dst);
        const auto* s = static_cast<const double*>(src);
        for (std::size_t i = 0; i < n; ++i) d[i] = s[i] * factor;
        return;
      }
      case dtype::bf16: {
        const float f = static_cast<float>(factor);
        auto* d = static_cast<bf16*>(dst);
        const auto* s = static_cast<const bf16*>(src);
        for (std::size_t i = 0; i < n; ++i) d[i] = bf16(static_cast<float>(s[i]) * f);
        return;
      }
      default:
        throw dtype_error(::grcnn::detail::concat("scale_into: gradients of type ", name_of(t), " are not reduced"));
    }
  }

  // The same ranks on a channel whose collectives are matched and completed independently of this
  // one's: for collectives issued inside backward (a synchronised batch norm's), whose position relative
  // to gradient buckets may differ between ranks (a bucket holding a parameter one rank did not use
  // starts later there). An engine without such channels answers itself.
  virtual communicator& side_channel() { return *this; }

  bool is_root() const { return rank() == 0; }
};

// The world of one: no launcher, no engine.
class single_process final : public communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 1; }
  std::string_view engine() const override { return "single"; }
  bool accepts(device) const override { return true; }
  void all_reduce(void*, std::size_t, dtype, reduce_op) override {}
  std::unique_ptr<pending> all_reduce_async(void*, std::size_t, dtype, reduce_op) override {
    struct finished final : pending {
      bool done() override { return true; }
      void wait() override {}
    };
    return std::make_unique<finished>();
  }
  void broadcast(void*, std::size_t, dtype, int root) override {
    GRCNN_CHECK(root == 0, error, "broadcast: root ", root, " in a world of one");
  }
  void barrier() override {}
  [[noreturn]] void abort(const std::string& why, int code) override {
    std::fprintf(stderr, "%s\n", why.c_str());
    std::_Exit(code);
  }
};

// Whole-tensor collectives: the tensor's entire storage (a backend's blocked format included: padding
// is zero on every rank and stays zero under sum, min and max), on a device the engine accepts.
inline void check_collective_tensor(const communicator& c, const tensor& t, const char* what) {
  GRCNN_CHECK(t.defined(), error, what, ": undefined tensor");
  GRCNN_CHECK(c.accepts(t.where()), error, what, ": the ", c.engine(), " communicator cannot reach ", t.describe());
  GRCNN_CHECK(t.bytes() % size_of(t.type()) == 0, error, what, ": storage of ", t.bytes(), " bytes for ", t.describe());
}
inline void all_reduce(communicator& c, tensor& t, reduce_op op = reduce_op::sum) {
  check_collective_tensor(c, t, "all_reduce");
  c.all_reduce(t.raw(), t.bytes() / size_of(t.type()), t.type(), op);
}
inline void broadcast(communicator& c, tensor& t, int root = 0) {
  check_collective_tensor(c, t, "broadcast");
  c.broadcast(t.raw(), t.bytes() / size_of(t.type()), t.type(), root);
}

}  // namespace grcnn::dist
