// The NCCL engine (include/grcnn/dist/nccl.hpp): libnccl loaded at run time, collectives on the engine's
// own stream ordered after the compute stream by events, completion polled with NCCL's asynchronous
// error check and a timeout.
#include <dlfcn.h>
#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "common.cuh"
#include "grcnn/dist/nccl.hpp"

namespace grcnn::dist {

namespace {

// The NCCL entry points we use, from the library found at run time.
struct nccl_api {
  decltype(&ncclGetUniqueId) get_unique_id = nullptr;
  decltype(&ncclCommInitRank) init_rank = nullptr;
  decltype(&ncclAllReduce) all_reduce = nullptr;
  decltype(&ncclBroadcast) broadcast = nullptr;
  decltype(&ncclCommGetAsyncError) async_error = nullptr;
  decltype(&ncclCommAbort) abort = nullptr;
  decltype(&ncclCommDestroy) destroy = nullptr;
  decltype(&ncclGetErrorString) error_string = nullptr;
  decltype(&ncclGetVersion) version = nullptr;
  std::string path;
};

const nccl_api& api() {
  static const nccl_api a = [] {
    std::vector<std::string> tries;
    if (const char* e = std::getenv("GRCNN_NCCL_LIBRARY"); e && *e) tries.emplace_back(e);
    tries.emplace_back("libnccl.so.2");
#ifdef GRCNN_NCCL_LIBRARY_HINT
    tries.emplace_back(GRCNN_NCCL_LIBRARY_HINT);
#endif
    std::string why;
    for (const auto& t : tries) {
      void* h = dlopen(t.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!h) {
        const char* e = dlerror();
        why += ::grcnn::detail::concat("\n  ", t, ": ", e ? e : "not found");
        continue;
      }
      nccl_api r;
      r.path = t;
      bool ok = true;
      auto sym = [&](auto& f, const char* name) {
        f = reinterpret_cast<std::remove_reference_t<decltype(f)>>(dlsym(h, name));
        if (!f) ok = false, why += ::grcnn::detail::concat("\n  ", t, ": no symbol ", name);
      };
      sym(r.get_unique_id, "ncclGetUniqueId");
      sym(r.init_rank, "ncclCommInitRank");
      sym(r.all_reduce, "ncclAllReduce");
      sym(r.broadcast, "ncclBroadcast");
      sym(r.async_error, "ncclCommGetAsyncError");
      sym(r.abort, "ncclCommAbort");
      sym(r.destroy, "ncclCommDestroy");
      sym(r.error_string, "ncclGetErrorString");
      sym(r.version, "ncclGetVersion");
      if (ok) return r;
      dlclose(h);
    }
    throw dist_error(::grcnn::detail::concat(
        "nccl: cannot load libnccl.so.2 (set GRCNN_NCCL_LIBRARY to its path, or put its folder on "
        "LD_LIBRARY_PATH; pip's nvidia-nccl package has it under nvidia/nccl/lib):",
        why));
  }();
  return a;
}

std::string nccl_error(ncclResult_t r) {
  const char* s = api().error_string ? api().error_string(r) : nullptr;
  return ::grcnn::detail::concat(s ? s : "unknown NCCL error", " (", static_cast<int>(r), ")");
}

#define GRCNN_NCCL_CHECK(call, what)                                                                   \
  do {                                                                                                 \
    const ncclResult_t grcnn_n_ = (call);                                                              \
    if (grcnn_n_ != ncclSuccess) throw dist_error(::grcnn::detail::concat("nccl: ", what, ": ", nccl_error(grcnn_n_))); \
  } while (0)

// The staging conversions run on the engine's stream, so they are its own: the backend's casts
// (cuda::cast_*) launch on the compute stream.
template <class S>
__global__ void k_to_f32(const S* x, float* y, std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    y[i] = static_cast<float>(x[i]);
}
__global__ void k_f32_to_bf16(const float* x, __nv_bfloat16* y, std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    y[i] = __float2bfloat16_rn(x[i]);
}
__global__ void k_f32_to_f16(const float* x, __half* y, std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    y[i] = __float2half_rn(x[i]);
}
// dst = src * f: f32 and f64 in their own type, bf16 through f32 rounded once (as the host's bf16(float)).
template <class T, class F>
__global__ void k_scale(T* d, const T* s, std::size_t n, F f) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    d[i] = s[i] * f;
}
__global__ void k_scale_bf16(__nv_bfloat16* d, const __nv_bfloat16* s, std::size_t n, float f) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    d[i] = __float2bfloat16_rn(__bfloat162float(s[i]) * f);
}
unsigned blocks_for(std::size_t n) {
  return static_cast<unsigned>(std::min<std::size_t>((n + 255) / 256, 4096));
}

ncclRedOp_t nccl_op(reduce_op op) {
  switch (op) {
    case reduce_op::sum: return ncclSum;
    case reduce_op::min: return ncclMin;
    case reduce_op::max: return ncclMax;
  }
  return ncclSum;
}
// NCCL's type for t; staged (bf16/f16 reduced through f32) answers ncclFloat32.
ncclDataType_t nccl_type(dtype t, bool reduce) {
  switch (t) {
    case dtype::f32: return ncclFloat32;
    case dtype::f64: return ncclFloat64;
    case dtype::i64: return ncclInt64;
    case dtype::bf16: return reduce ? ncclFloat32 : ncclBfloat16;
    case dtype::f16: return reduce ? ncclFloat32 : ncclFloat16;
    default: break;
  }
  throw dtype_error(::grcnn::detail::concat("nccl: no collective for ", name_of(t), " buffers"));
}

bool on_device(const void* p) {
  cudaPointerAttributes a{};
  const cudaError_t e = cudaPointerGetAttributes(&a, p);
  if (e == cudaErrorInvalidValue) {  // an unregistered host pointer on older runtimes
    cudaGetLastError();
    return false;
  }
  if (e != cudaSuccess) throw dist_error(::grcnn::detail::concat("nccl: where is buffer ", p, "? ", cudaGetErrorString(e)));
  return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

}  // namespace

struct nccl_communicator::impl {
  communicator* world = nullptr;  // the host engine
  nccl_options o;
  int gpu = 0;
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  bool failed = false;  // aborted after an error or a timeout: no further collective
  // The f32 copy of 16-bit buffers, reused in stream order (grown when a larger one comes).
  float* staging = nullptr;
  std::size_t staging_count = 0;

  ~impl() {
    if (comm) {
      if (failed || !drained()) api().abort(comm);
      else api().destroy(comm);
    }
    if (staging && stream) cudaFreeAsync(staging, stream);
    if (stream) {
      cudaStreamSynchronize(stream);
      cudaStreamDestroy(stream);
    }
  }
  // Waits for the engine's stream within the timeout, watching NCCL's error state (a collective a peer
  // never matched would otherwise hold it, and the process, forever).
  bool drained() {
    const auto until = std::chrono::steady_clock::now() + o.timeout;
    for (;;) {
      const cudaError_t e = cudaStreamQuery(stream);
      if (e == cudaSuccess) return true;
      if (e != cudaErrorNotReady) return false;
      ncclResult_t r = ncclSuccess;
      if (api().async_error(comm, &r) != ncclSuccess || (r != ncclSuccess && r != ncclInProgress)) return false;
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  // Aborts the NCCL communicator once (it is freed: no NCCL call may use it after) and throws.
  [[noreturn]] void fail(const std::string& why) {
    if (comm) api().abort(comm);
    comm = nullptr;
    failed = true;
    throw dist_error(::grcnn::detail::concat("rank ", world->rank(), " of ", world->world_size(), ": ", why));
  }
  void usable(const std::string& what) {
    if (failed) fail(::grcnn::detail::concat(what, " after an earlier NCCL failure (the NCCL communicator was aborted)"));
  }
  float* staging_for(std::size_t n) {
    if (n > staging_count) {
      if (staging) GRCNN_CUDA_CHECK(cudaFreeAsync(staging, stream));
      staging = nullptr;
      GRCNN_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&staging), n * sizeof(float), stream));
      staging_count = n;
    }
    return staging;
  }
};

namespace {

// A device collective in flight: its completion event on the engine's stream.
class nccl_pending final : public pending {
 public:
  nccl_pending(nccl_communicator::impl& c, std::string what)
      : c_(c), what_(std::move(what)), launched_(std::chrono::steady_clock::now()) {
    GRCNN_CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
    GRCNN_CUDA_CHECK(cudaEventRecord(done_, c_.stream));
  }
  ~nccl_pending() override { cudaEventDestroy(done_); }
  bool done() override {
    if (finished_) return true;
    c_.usable(what_);  // an abort freed the communicator this collective ran on
    const cudaError_t e = cudaEventQuery(done_);
    if (e == cudaSuccess) return finish(), true;
    if (e != cudaErrorNotReady) c_.fail(::grcnn::detail::concat(what_, ": ", cudaGetErrorString(e)));
    return false;
  }
  void wait() override {
    while (!done()) {
      ncclResult_t r = ncclSuccess;
      const ncclResult_t q = api().async_error(c_.comm, &r);
      if (q != ncclSuccess) r = q;
      if (r != ncclSuccess && r != ncclInProgress) c_.fail(::grcnn::detail::concat(what_, ": ", nccl_error(r)));
      if (std::chrono::steady_clock::now() - launched_ > c_.o.timeout)
        c_.fail(::grcnn::detail::concat(what_, " did not complete in ",
                                        std::chrono::duration<double>(c_.o.timeout).count(),
                                        " s (a rank died, stopped or took another path); NCCL communicator aborted"));
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  std::chrono::steady_clock::time_point completed_at() override { return finished_at_; }

 private:
  void finish() {
    finished_ = true;
    finished_at_ = std::chrono::steady_clock::now();
    // Later compute-stream work reads the result after the collective (already complete: cheap).
    GRCNN_CUDA_CHECK(cudaStreamWaitEvent(cuda::detail::stream(), done_, 0));
  }
  nccl_communicator::impl& c_;
  std::string what_;
  std::chrono::steady_clock::time_point launched_, finished_at_;
  cudaEvent_t done_ = nullptr;
  bool finished_ = false;
};

// The engine's stream after everything the compute stream has queued so far.
void follow_compute(cudaStream_t s) {
  cudaEvent_t ready;
  GRCNN_CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
  GRCNN_CUDA_CHECK(cudaEventRecord(ready, cuda::detail::stream()));
  GRCNN_CUDA_CHECK(cudaStreamWaitEvent(s, ready, 0));
  GRCNN_CUDA_CHECK(cudaEventDestroy(ready));  // released once the wait is done
}

}  // namespace

nccl_communicator::nccl_communicator(communicator& world, nccl_options o) : p_(std::make_unique<impl>()) {
  GRCNN_CHECK(world.accepts(cpu_device), dist_error, "nccl: the ", world.engine(), " communicator under it must reduce host buffers");
  p_->world = &world;
  p_->o = o;
  const int count = cuda::visible_device_count();
  if (count == 0)
    throw dist_error(::grcnn::detail::concat("rank ", world.rank(), ": the NCCL engine needs a GPU; this process sees none"));
  // NCCL refuses two ranks of one communicator on one GPU: say so in our words, on every rank.
  if (world.local_size() > count)
    throw dist_error(::grcnn::detail::concat("rank ", world.rank(), ": ", world.local_size(), " ranks on this node but ",
                                             count, " GPU(s) visible: start at most one rank per GPU"));
  p_->gpu = world.local_rank();
  cuda::select_device(p_->gpu);
  (void)cuda::detail::ctx();  // the component starts on that GPU
  const nccl_api& a = api();
  ncclUniqueId id{};
  static_assert(sizeof(ncclUniqueId) % sizeof(std::int64_t) == 0, "ncclUniqueId travels as i64 words");
  if (world.rank() == 0) GRCNN_NCCL_CHECK(a.get_unique_id(&id), "ncclGetUniqueId");
  world.broadcast(&id, sizeof(id) / sizeof(std::int64_t), dtype::i64, 0);
  GRCNN_CUDA_CHECK(cudaStreamCreateWithFlags(&p_->stream, cudaStreamNonBlocking));
  GRCNN_NCCL_CHECK(a.init_rank(&p_->comm, world.world_size(), id, world.rank()),
                   ::grcnn::detail::concat("ncclCommInitRank (rank ", world.rank(), " of ", world.world_size(), ", GPU ", p_->gpu, ")"));
}

nccl_communicator::~nccl_communicator() = default;  // impl: destroy when drained, else abort

int nccl_communicator::rank() const { return p_->world->rank(); }
int nccl_communicator::world_size() const { return p_->world->world_size(); }
int nccl_communicator::local_rank() const { return p_->world->local_rank(); }
int nccl_communicator::local_size() const { return p_->world->local_size(); }
int nccl_communicator::gpu() const { return p_->gpu; }
std::string nccl_communicator::nccl_version() const {
  int v = 0;
  if (api().version(&v) != ncclSuccess) return "unknown";
  if (v < 10000) return ::grcnn::detail::concat(v / 1000, ".", (v % 1000) / 100, ".", v % 100);  // before 2.9
  return ::grcnn::detail::concat(v / 10000, ".", (v % 10000) / 100, ".", v % 100);
}

void nccl_communicator::all_reduce(void* data, std::size_t count, dtype t, reduce_op op) {
  all_reduce_async(data, count, t, op)->wait();
}

std::unique_ptr<pending> nccl_communicator::all_reduce_async(void* data, std::size_t count, dtype t, reduce_op op) {
  if (count == 0 || !on_device(data)) return p_->world->all_reduce_async(data, count, t, op);
  p_->usable("all_reduce");
  const std::string what = ::grcnn::detail::concat("NCCL all_reduce (", op_name(op), ") of ", count, " ", name_of(t));
  const bool staged = t == dtype::bf16 || t == dtype::f16;
  const ncclDataType_t nt = nccl_type(t, true);
  follow_compute(p_->stream);
  if (!staged) {
    GRCNN_NCCL_CHECK(api().all_reduce(data, data, count, nt, nccl_op(op), p_->comm, p_->stream), what);
  } else {
    // Accumulated in f32, rounded once: the 16-bit buffer through an f32 copy on the engine's stream.
    float* f = p_->staging_for(count);
    if (t == dtype::bf16) k_to_f32<<<blocks_for(count), 256, 0, p_->stream>>>(static_cast<const __nv_bfloat16*>(data), f, count);
    else k_to_f32<<<blocks_for(count), 256, 0, p_->stream>>>(static_cast<const __half*>(data), f, count);
    cuda::check_last_launch("nccl staging to f32");
    GRCNN_NCCL_CHECK(api().all_reduce(f, f, count, nt, nccl_op(op), p_->comm, p_->stream), what);
    if (t == dtype::bf16) k_f32_to_bf16<<<blocks_for(count), 256, 0, p_->stream>>>(f, static_cast<__nv_bfloat16*>(data), count);
    else k_f32_to_f16<<<blocks_for(count), 256, 0, p_->stream>>>(f, static_cast<__half*>(data), count);
    cuda::check_last_launch("nccl staging from f32");
  }
  return std::make_unique<nccl_pending>(*p_, what);
}

void nccl_communicator::broadcast(void* data, std::size_t count, dtype t, int root) {
  GRCNN_CHECK(root >= 0 && root < world_size(), error, "broadcast: root ", root, " in a world of ", world_size());
  if (count == 0 || !on_device(data)) return p_->world->broadcast(data, count, t, root);
  p_->usable("broadcast");
  const std::string what = ::grcnn::detail::concat("NCCL broadcast from rank ", root, " of ", count, " ", name_of(t));
  follow_compute(p_->stream);
  GRCNN_NCCL_CHECK(api().broadcast(data, data, count, nccl_type(t, false), root, p_->comm, p_->stream), what);
  nccl_pending(*p_, what).wait();
}

void nccl_communicator::barrier() { p_->world->barrier(); }
communicator& nccl_communicator::side_channel() { return p_->world->side_channel(); }

void nccl_communicator::abort(const std::string& why, int code) {
  if (p_->comm) api().abort(p_->comm);
  p_->comm = nullptr;
  p_->failed = true;
  p_->world->abort(why, code);
  std::_Exit(code);  // not reached: the host engine's abort ends the process
}

void nccl_communicator::scale_into(void* dst, const void* src, std::size_t n, dtype t, double factor, device where) {
  if (where.kind == device_kind::cpu) return host_scale_into(dst, src, n, t, factor);
  GRCNN_CHECK(where.kind == device_kind::cuda, error, "scale_into: the NCCL communicator has no ", where.str(), " buffers");
  if (n == 0) return;
  const cudaStream_t s = cuda::detail::stream();
  switch (t) {
    case dtype::f32:
      k_scale<<<blocks_for(n), 256, 0, s>>>(static_cast<float*>(dst), static_cast<const float*>(src), n, static_cast<float>(factor));
      break;
    case dtype::f64:
      k_scale<<<blocks_for(n), 256, 0, s>>>(static_cast<double*>(dst), static_cast<const double*>(src), n, factor);
      break;
    case dtype::bf16:
      k_scale_bf16<<<blocks_for(n), 256, 0, s>>>(static_cast<__nv_bfloat16*>(dst), static_cast<const __nv_bfloat16*>(src), n,
                                                 static_cast<float>(factor));
      break;
    default:
      throw dtype_error(::grcnn::detail::concat("scale_into: gradients of type ", name_of(t), " are not reduced"));
  }
  cuda::check_last_launch("data-parallel bucket scaling");
}

}  // namespace grcnn::dist
