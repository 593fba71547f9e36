// The CUDA runtime behind grcnn's device tensors: context, stream-ordered memory pool, copies, gradient
// accumulation, normal draws and layout permutes. The ops' elementwise kernels are elementwise.cu, the
// optimizers' updates optimizer.cu (train's, registered through grcnn/train/cuda_updates.hpp).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <vector>

#include "common.cuh"
#include "elementwise.cuh"
#include "grcnn/backends/cuda/runtime.hpp"
#include "grcnn/core/philox.hpp"

namespace grcnn::cuda {

namespace detail {

namespace {
struct profile_table {
  std::mutex mu;
  std::atomic<bool> on{false};
  std::map<std::string, std::pair<std::size_t, double>> entries;
};
profile_table& profile() {
  static profile_table* t = new profile_table;
  return *t;
}
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

namespace {
std::atomic<int>& chosen_device() {
  static std::atomic<int> d{0};
  return d;
}
std::atomic<bool>& context_made() {
  static std::atomic<bool> made{false};
  return made;
}
}  // namespace

context& ctx() {
  static context* c = [] {
    auto* r = new context;
    int count = 0;
    GRCNN_CUDA_CHECK(cudaGetDeviceCount(&count));
    if (count == 0) throw backend_error("cuda: no CUDA device");
    const int dev = chosen_device().load();
    if (dev >= count)
      throw backend_error(grcnn::detail::concat("cuda: GPU ", dev, " was selected, this process sees ", count));
    GRCNN_CUDA_CHECK(cudaSetDevice(dev));
    GRCNN_CUDA_CHECK(cudaStreamCreateWithFlags(&r->stream, cudaStreamNonBlocking));
    GRCNN_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&r->pool, dev));
    // Keep freed blocks in the pool: after warm-up a training step allocates nothing from the driver.
    std::uint64_t keep = UINT64_MAX;
    GRCNN_CUDA_CHECK(cudaMemPoolSetAttribute(r->pool, cudaMemPoolAttrReleaseThreshold, &keep));
    GRCNN_CUDA_CHECK(cudaDeviceGetAttribute(&r->sm_count, cudaDevAttrMultiProcessorCount, dev));
    GRCNN_CUBLAS_CHECK(cublasCreate(&r->blas));
    GRCNN_CUBLAS_CHECK(cublasSetStream(r->blas, r->stream));
    GRCNN_CUDNN_CHECK(cudnnCreate(&r->dnn));
    GRCNN_CUDNN_CHECK(cudnnSetStream(r->dnn, r->stream));
    context_made().store(true);
    return r;
  }();
  // Host threads other than the first (the data loader's pinned copies, a communicator's) start on
  // device 0: every entry into the component puts them on ours.
  thread_local int current = -1;
  if (current != chosen_device().load()) {
    GRCNN_CUDA_CHECK(cudaSetDevice(chosen_device().load()));
    current = chosen_device().load();
  }
  return *c;
}

}  // namespace detail

void select_device(int ordinal) {
  if (ordinal < 0) throw backend_error(grcnn::detail::concat("cuda: no GPU ", ordinal));
  if (detail::context_made().load() && detail::chosen_device().load() != ordinal)
    throw backend_error(grcnn::detail::concat("cuda: GPU ", ordinal, " selected after the component started on GPU ",
                                              detail::chosen_device().load()));
  detail::chosen_device().store(ordinal);
}
int selected_device() { return detail::chosen_device().load(); }
int visible_device_count() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess ? count : 0;
}

using namespace detail;

void set_profiling(bool on) { profile().on = on; }
void reset_profile() {
  std::lock_guard lock(profile().mu);
  profile().entries.clear();
}
std::string profile_report() {
  auto& t = profile();
  std::lock_guard lock(t.mu);
  std::vector<std::pair<std::string, std::pair<std::size_t, double>>> rows(t.entries.begin(), t.entries.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.second > b.second.second; });
  double total = 0;
  for (const auto& r : rows) total += r.second.second;
  std::string out;
  char line[200];
  for (const auto& r : rows) {
    std::snprintf(line, sizeof line, "%-28s %8zu calls %10.3f ms %5.1f%%\n", r.first.c_str(), r.second.first,
                  r.second.second * 1e3, total > 0 ? 100.0 * r.second.second / total : 0.0);
    out += line;
  }
  std::snprintf(line, sizeof line, "%-28s %25.3f ms\n", "total", total * 1e3);
  return out + line;
}

void check_last_launch(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw backend_error(grcnn::detail::concat("cuda: launch of ", what, " failed: ", cudaGetErrorString(e)));
}
void synchronize() { GRCNN_CUDA_CHECK(cudaStreamSynchronize(stream())); }

namespace {

class runtime_impl final : public device_runtime {
 public:
  void* allocate(std::size_t bytes) override {
    auto& c = ctx();
    std::uint64_t before = 0, after = 0;
    cudaMemPoolGetAttribute(c.pool, cudaMemPoolAttrReservedMemCurrent, &before);
    void* p = nullptr;
    GRCNN_CUDA_CHECK(cudaMallocAsync(&p, bytes, c.stream));
    cudaMemPoolGetAttribute(c.pool, cudaMemPoolAttrReservedMemCurrent, &after);
    std::lock_guard lock(mu_);
    stats_.allocations++;
    if (after > before) stats_.system_allocations++;
    stats_.pool_reserved = after;
    stats_.bytes_in_use += bytes;
    if (stats_.bytes_in_use > stats_.peak_bytes_in_use) stats_.peak_bytes_in_use = stats_.bytes_in_use;
    return p;
  }
  void deallocate(void* p, std::size_t bytes) override {
    // At process exit the driver may already be unloading: nothing to free then.
    if (cudaFreeAsync(p, ctx().stream) != cudaSuccess) cudaGetLastError();
    std::lock_guard lock(mu_);
    stats_.bytes_in_use -= bytes;
  }
  void copy(void* dst, device dst_dev, const void* src, device src_dev, std::size_t bytes) override {
    if (bytes == 0) return;
    GRCNN_PROFILE("copy");
    GRCNN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream()));
    // The host side may read or free its buffer right after: wait for copies that involve it, except
    // an upload from our page-locked blocks, whose reuse waits for the stream instead (deallocate_pinned).
    const bool upload_from_pinned = dst_dev.kind != device_kind::cpu && src_dev.kind == device_kind::cpu && is_pinned(src);
    if ((dst_dev.kind == device_kind::cpu || src_dev.kind == device_kind::cpu) && !upload_from_pinned)
      GRCNN_CUDA_CHECK(cudaStreamSynchronize(stream()));
  }
  void* allocate_pinned(std::size_t bytes) override {
    ctx();  // the stream deallocate_pinned records on exists from here on (a destructor must not create it)
    {
      std::lock_guard lock(pinned_mu_);
      // A cached block of this size whose last stream use is done (cudaMallocHost is slow, hence the
      // cache: a loader allocates one per batch; it holds at most the peak number of batches alive).
      auto& free_list = pinned_free_[bytes];
      for (auto it = free_list.begin(); it != free_list.end(); ++it) {
        const cudaError_t q = cudaEventQuery(it->released);
        if (q == cudaErrorNotReady) continue;
        GRCNN_CUDA_CHECK(q);
        void* p = it->ptr;
        pinned_events_[p] = it->released;
        free_list.erase(it);
        return p;
      }
    }
    // A new block, allocated outside the lock (uploads check is_pinned meanwhile). Where page-locked
    // memory runs out, pageable memory serves: its uploads then wait for the stream, as any host copy.
    void* p = nullptr;
    if (cudaMallocHost(&p, bytes) != cudaSuccess) {
      cudaGetLastError();
      p = std::malloc(bytes);
      if (!p) throw std::bad_alloc();
      std::lock_guard lock(pinned_mu_);
      pageable_fallbacks_.insert(p);
      return p;
    }
    cudaEvent_t e;
    GRCNN_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    std::lock_guard lock(pinned_mu_);
    pinned_events_[p] = e;
    return p;
  }
  void deallocate_pinned(void* p, std::size_t bytes) override {
    std::lock_guard lock(pinned_mu_);
    if (pageable_fallbacks_.erase(p)) {
      std::free(p);
      return;
    }
    const auto it = pinned_events_.find(p);
    if (it == pinned_events_.end()) return;
    // Copies enqueued so far may still read the block: it becomes reusable once the stream passes here.
    // At process exit the driver may already be unloading: then the block is simply dropped.
    if (cudaEventRecord(it->second, ctx().stream) != cudaSuccess) {
      cudaGetLastError();
      pinned_events_.erase(it);
      return;
    }
    pinned_free_[bytes].push_back({p, it->second});
    pinned_events_.erase(it);
  }
  void zero(void* p, std::size_t bytes) override { GRCNN_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream())); }
  void permute_4d(std::size_t elem_size, const void* src, void* dst, std::int64_t n, std::int64_t c, std::int64_t h,
                  std::int64_t w, bool to_channels_last) override;
  void add_inplace(dtype t, void* dst, const void* src, std::size_t n) override;
  void fill_normal(dtype t, void* dst, std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w,
                   bool channels_last, std::uint64_t seed, std::uint64_t stream) override;
  void synchronize() override { cuda::synchronize(); }
  bool is_pinned(const void* p) const {
    std::lock_guard lock(pinned_mu_);
    return pinned_events_.count(const_cast<void*>(p)) != 0;
  }
  device_memory_stats memory_stats() const override {
    std::uint64_t reserved = 0;
    cudaMemPoolGetAttribute(ctx().pool, cudaMemPoolAttrReservedMemCurrent, &reserved);
    std::lock_guard lock(mu_);
    device_memory_stats s = stats_;
    s.pool_reserved = reserved;  // live: scratch (cuDNN workspaces) draws on the same pool
    return s;
  }

 private:
  mutable std::mutex mu_;
  device_memory_stats stats_;
  // Page-locked blocks: those in use (with their event), and freed ones by size with the event that
  // marks the end of their last stream use.
  struct pinned_block {
    void* ptr;
    cudaEvent_t released;
  };
  mutable std::mutex pinned_mu_;
  std::map<void*, cudaEvent_t> pinned_events_;
  std::set<void*> pageable_fallbacks_;
  std::map<std::size_t, std::vector<pinned_block>> pinned_free_;
};

__global__ void k_add_f64(double* d, const double* s, std::int64_t n) {
  GRCNN_GRID_STRIDE(i, n) d[i] += s[i];
}

void runtime_impl::add_inplace(dtype t, void* dst, const void* src, std::size_t n) {
  GRCNN_PROFILE("grad accumulate");
  const auto m = static_cast<std::int64_t>(n);
  if (t == dtype::f32) {
    auto* d = static_cast<float*>(dst);
    launch_map<float, 2, 1>("add_inplace", add_op{}, m, {d, static_cast<const float*>(src)}, {d});
  } else if (t == dtype::bf16) {
    auto* d = static_cast<__nv_bfloat16*>(dst);
    launch_map<__nv_bfloat16, 2, 1>("add_inplace", add_op{}, m, {d, static_cast<const __nv_bfloat16*>(src)}, {d});
  } else if (t == dtype::f64) {
    k_add_f64<<<blocks_for(m), 256, 0, stream()>>>(static_cast<double*>(dst), static_cast<const double*>(src), m);
    check_last_launch("add_inplace");
  } else {
    throw dtype_error(grcnn::detail::concat("cuda add_inplace: ", name_of(t), " is not supported on the device"));
  }
}

// One thread per group of four draws of one sample (core/philox.hpp, the host's arithmetic), written to
// the four elements' places in plain or channels-last order.
template <class T>
__global__ void k_fill_normal(T* dst, std::int64_t n, std::int64_t c, std::int64_t hw, bool channels_last,
                              std::uint64_t seed, std::uint64_t stream) {
  const std::int64_t per = c * hw, groups = (per + 3) / 4, total = n * groups;
  GRCNN_GRID_STRIDE(i, total) {
    const std::int64_t s = i / groups, g = i - s * groups;
    const philox::normals z =
        philox::normal4(seed, stream, static_cast<std::uint32_t>(s), static_cast<std::uint32_t>(g));
    for (int l = 0; l < 4; ++l) {
      const std::int64_t j = 4 * g + l;
      if (j >= per) break;
      const std::int64_t o = channels_last ? (j % hw) * c + j / hw : j;
      if constexpr (std::is_same_v<T, double>) dst[s * per + o] = z.v[l];
      else st(dst[s * per + o], z.v[l]);
    }
  }
}

void runtime_impl::fill_normal(dtype t, void* dst, std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w,
                               bool channels_last, std::uint64_t seed, std::uint64_t stream) {
  GRCNN_PROFILE("normal draws");
  const std::int64_t groups = n * ((c * h * w + 3) / 4);
  if (groups == 0) return;
  const int blocks = blocks_for(groups);
  if (t == dtype::f32)
    k_fill_normal<<<blocks, 256, 0, cuda::detail::stream()>>>(static_cast<float*>(dst), n, c, h * w, channels_last, seed, stream);
  else if (t == dtype::bf16)
    k_fill_normal<<<blocks, 256, 0, cuda::detail::stream()>>>(static_cast<__nv_bfloat16*>(dst), n, c, h * w, channels_last, seed, stream);
  else if (t == dtype::f64)
    k_fill_normal<<<blocks, 256, 0, cuda::detail::stream()>>>(static_cast<double*>(dst), n, c, h * w, channels_last, seed, stream);
  else
    throw dtype_error(grcnn::detail::concat("cuda fill_normal: ", name_of(t), " is not supported on the device"));
  check_last_launch("fill_normal");
}

// dst in the other order; i runs over dst's elements (coalesced writes).
template <class T>
__global__ void k_permute(const T* src, T* dst, std::int64_t n, std::int64_t c, std::int64_t hw, bool to_cl) {
  const std::int64_t total = n * c * hw;
  GRCNN_GRID_STRIDE(i, total) {
    if (to_cl) {  // i = (n, hw, c) in dst; src is (n, c, hw)
      const std::int64_t ci = i % c, r = i / c, p = r % hw, ni = r / hw;
      dst[i] = src[(ni * c + ci) * hw + p];
    } else {  // i = (n, c, hw) in dst; src is (n, hw, c)
      const std::int64_t p = i % hw, r = i / hw, ci = r % c, ni = r / c;
      dst[i] = src[(ni * hw + p) * c + ci];
    }
  }
}

void runtime_impl::permute_4d(std::size_t elem_size, const void* src, void* dst, std::int64_t n, std::int64_t c,
                              std::int64_t h, std::int64_t w, bool to_channels_last) {
  GRCNN_PROFILE("layout permute");
  const std::int64_t total = n * c * h * w;
  if (total == 0) return;
  const int blocks = blocks_for(total);
  switch (elem_size) {
    case 2: k_permute<<<blocks, 256, 0, stream()>>>(static_cast<const std::uint16_t*>(src), static_cast<std::uint16_t*>(dst), n, c, h * w, to_channels_last); break;
    case 4: k_permute<<<blocks, 256, 0, stream()>>>(static_cast<const std::uint32_t*>(src), static_cast<std::uint32_t*>(dst), n, c, h * w, to_channels_last); break;
    case 8: k_permute<<<blocks, 256, 0, stream()>>>(static_cast<const std::uint64_t*>(src), static_cast<std::uint64_t*>(dst), n, c, h * w, to_channels_last); break;
    default: throw dtype_error("cuda permute_4d: unsupported element size");
  }
  check_last_launch("permute_4d");
}

}  // namespace

device_runtime& runtime() {
  static runtime_impl* r = new runtime_impl;
  return *r;
}
bool install_runtime() {
  register_device_runtime(device_kind::cuda, &runtime());
  return true;
}

namespace detail {
bool profiling() { return profile().on.load(std::memory_order_relaxed); }
void profile_add(const char* name, double seconds) {
  auto& t = profile();
  std::lock_guard lock(t.mu);
  auto& e = t.entries[name];
  e.first++;
  e.second += seconds;
}
namespace {
int& profile_depth() {
  thread_local int depth = 0;
  return depth;
}
}  // namespace
profile_scope::profile_scope(const char* n) : name(n) {
  if (!profiling()) return;
  counted = true;
  on = profile_depth()++ == 0;
  if (on) {
    cudaStreamSynchronize(stream());
    t0 = now_s();
  }
}
profile_scope::~profile_scope() {
  if (counted) --profile_depth();
  if (on) {
    cudaStreamSynchronize(stream());
    profile_add(name, now_s() - t0);
  }
}
scratch::scratch(std::size_t bytes) {
  if (bytes) GRCNN_CUDA_CHECK(cudaMallocAsync(&p, bytes, stream()));
}
scratch::~scratch() {
  if (p) cudaFreeAsync(p, stream());
}
}  // namespace detail

}  // namespace grcnn::cuda
