// The CUDA runtime behind grcnn's device tensors: context, stream-ordered memory pool, copies, and the
// elementwise and optimizer kernels.
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
  void sgd_update(std::span<const sgd_slot> slots, const sgd_hyper& h) override { cuda::sgd_update(slots, h); }
  void adamw_update(std::span<const adamw_slot> slots, const adamw_hyper& h) override { cuda::adamw_update(slots, h); }
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
struct add_op {  // also the gradient accumulation d += s (in place: a pack is loaded before it is stored)
  __device__ void operator()(const float (&x)[2], float (&y)[1]) const { y[0] = x[0] + x[1]; }
};

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

// ---- elementwise kernels (T: float or __nv_bfloat16 storage, f32 math) ----
// Their arithmetic per element (f32 between loads and stores); launch_map packs the memory accesses.
// PyTorch's ReLU: NaN stays NaN (fmaxf(x, 0) would give 0), and the gradient passes where y is NaN
// (threshold_backward: y <= 0 ? 0 : dy).
struct relu_op {
  __device__ void operator()(const float (&x)[1], float (&y)[1]) const { y[0] = x[0] <= 0.f ? 0.f : x[0]; }
};
struct relu_bwd_op {  // x: dy, y
  __device__ void operator()(const float (&x)[2], float (&y)[1]) const { y[0] = x[1] <= 0.f ? 0.f : x[0]; }
};
struct sigmoid_op {
  __device__ void operator()(const float (&x)[1], float (&y)[1]) const { y[0] = 1.f / (1.f + expf(-x[0])); }
};
struct sigmoid_bwd_op {  // x: dy, y
  __device__ void operator()(const float (&x)[2], float (&y)[1]) const { y[0] = x[0] * x[1] * (1.f - x[1]); }
};
struct mul_op {
  __device__ void operator()(const float (&x)[2], float (&y)[1]) const { y[0] = x[0] * x[1]; }
};
struct gate_op {  // x: x, a, b, y; out = x + sigmoid(a + b) * y
  __device__ void operator()(const float (&x)[4], float (&y)[1]) const {
    y[0] = x[0] + 1.f / (1.f + expf(-(x[1] + x[2]))) * x[3];
  }
};
struct gate_bwd_dy_op {  // x: dout, a, b; y: dy (no gate gradient wanted: y is not read)
  __device__ void operator()(const float (&x)[3], float (&y)[1]) const {
    y[0] = x[0] * (1.f / (1.f + expf(-(x[1] + x[2]))));
  }
};
struct gate_bwd_op {  // x: dout, a, b, y; y: dgate, dy
  __device__ void operator()(const float (&x)[4], float (&y)[2]) const {
    const float s = 1.f / (1.f + expf(-(x[1] + x[2]))), g = x[0];
    y[0] = g * x[3] * s * (1.f - s);
    y[1] = g * s;
  }
};
__global__ void k_fill(float* p, float v, std::int64_t n) {
  GRCNN_GRID_STRIDE(i, n) p[i] = v;
}
template <class From, class To>
__global__ void k_convert(const From* x, To* y, std::int64_t n) {
  GRCNN_GRID_STRIDE(i, n) st(y[i], ld(x[i]));
}
// Multi-tensor optimizer updates: a launch covers up to kSlots tensors laid end to end in one index
// space (ends[s]: one past slot s's last element); a thread finds its slot by binary search over the
// ends, which sit in the kernel's parameter space. The per-element arithmetic is the single-tensor
// form's (train/sgd.hpp, train/adamw.hpp).
constexpr int kSlots = 48;  // a table stays under the 4 KB of kernel parameters
struct sgd_table {
  int count;
  std::int64_t ends[kSlots];
  float* w[kSlots];
  const float* g[kSlots];
  float* buf[kSlots];
  bool first[kSlots];
};
// 1 - beta arrives computed in double (as the host optimizer and torch do): 1.f - 0.999f is 4.7e-5 off.
struct adamw_table {
  int count;
  std::int64_t ends[kSlots];
  float* w[kSlots];
  const float* g[kSlots];
  float* m[kSlots];
  float* v[kSlots];
  float step_size[kSlots], c2[kSlots];  // lr / (1 - b1^t), sqrt(1 - b2^t) of each tensor's step t
  float decay, b1, b2, one_b1, one_b2, eps;
};
// Element i of the index space: its slot s and its offset k within that tensor.
struct slot_element {
  int s;
  std::int64_t k;
};
__device__ __forceinline__ slot_element slot_of(const std::int64_t* ends, int count, std::int64_t i) {
  int lo = 0, hi = count - 1;  // the first slot whose end exceeds i
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (ends[mid] > i) hi = mid;
    else lo = mid + 1;
  }
  return {lo, i - (lo > 0 ? ends[lo - 1] : 0)};
}
__global__ void k_sgd(const __grid_constant__ sgd_table t, float lr, float wd, float mom, float damp, bool nesterov) {
  const std::int64_t n = t.ends[t.count - 1];
  GRCNN_GRID_STRIDE(i, n) {
    const auto [s, k] = slot_of(t.ends, t.count, i);
    float* w = t.w[s];
    const float d = t.g[s][k] + wd * w[k];
    if (mom == 0.f) {
      w[k] -= lr * d;
    } else {
      const float b = t.first[s] ? d : mom * t.buf[s][k] + damp * d;
      t.buf[s][k] = b;
      w[k] -= lr * (nesterov ? d + mom * b : b);
    }
  }
}
__global__ void k_adamw(const __grid_constant__ adamw_table t) {
  const std::int64_t n = t.ends[t.count - 1];
  GRCNN_GRID_STRIDE(i, n) {
    const auto [s, k] = slot_of(t.ends, t.count, i);
    float *w = t.w[s], *m = t.m[s], *v = t.v[s];
    const float g = t.g[s][k];
    float wi = w[k] * t.decay;
    const float mi = m[k] * t.b1 + t.one_b1 * g;
    const float vi = v[k] * t.b2 + t.one_b2 * g * g;
    m[k] = mi;
    v[k] = vi;
    w[k] = wi - t.step_size[s] * (mi / (sqrtf(vi) / t.c2[s] + t.eps));
  }
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

#define GRCNN_LAUNCH(kernel, n, ...)                                             \
  do {                                                                           \
    GRCNN_PROFILE(#kernel);                                                      \
    if ((n) > 0) kernel<<<blocks_for(n), 256, 0, stream()>>>(__VA_ARGS__);       \
    check_last_launch(#kernel);                                                  \
  } while (0)

template <storage S>
void relu_forward(const S* x, S* y, std::int64_t n) {
  GRCNN_PROFILE("relu");
  launch_map<device_t<S>, 1, 1>("relu", relu_op{}, n, {dev(x)}, {dev(y)});
}
template <storage S>
void relu_backward(const S* dy, const S* y, S* dx, std::int64_t n) {
  GRCNN_PROFILE("relu backward");
  launch_map<device_t<S>, 2, 1>("relu backward", relu_bwd_op{}, n, {dev(dy), dev(y)}, {dev(dx)});
}
template <storage S>
void sigmoid_forward(const S* x, S* y, std::int64_t n) {
  GRCNN_PROFILE("sigmoid");
  launch_map<device_t<S>, 1, 1>("sigmoid", sigmoid_op{}, n, {dev(x)}, {dev(y)});
}
template <storage S>
void sigmoid_backward(const S* dy, const S* y, S* dx, std::int64_t n) {
  GRCNN_PROFILE("sigmoid backward");
  launch_map<device_t<S>, 2, 1>("sigmoid backward", sigmoid_bwd_op{}, n, {dev(dy), dev(y)}, {dev(dx)});
}
template <storage S>
void add_forward(const S* a, const S* b, S* y, std::int64_t n) {
  GRCNN_PROFILE("add");
  launch_map<device_t<S>, 2, 1>("add", add_op{}, n, {dev(a), dev(b)}, {dev(y)});
}
template <storage S>
void mul_forward(const S* a, const S* b, S* y, std::int64_t n) {
  GRCNN_PROFILE("mul");
  launch_map<device_t<S>, 2, 1>("mul", mul_op{}, n, {dev(a), dev(b)}, {dev(y)});
}
template <storage S>
void gated_update_forward(const S* x, const S* a, const S* b, const S* y, S* out, std::int64_t n) {
  GRCNN_PROFILE("gated update");
  launch_map<device_t<S>, 4, 1>("gated update", gate_op{}, n, {dev(x), dev(a), dev(b), dev(y)}, {dev(out)});
}
template <storage S>
void gated_update_backward(const S* dout, const S* a, const S* b, const S* y, S* dgate, S* dy, std::int64_t n) {
  GRCNN_PROFILE("gated update backward");
  if (!dgate)
    launch_map<device_t<S>, 3, 1>("gated update backward", gate_bwd_dy_op{}, n, {dev(dout), dev(a), dev(b)}, {dev(dy)});
  else
    launch_map<device_t<S>, 4, 2>("gated update backward", gate_bwd_op{}, n, {dev(dout), dev(a), dev(b), dev(y)},
                                  {dev(dgate), dev(dy)});
}
#define GRCNN_ELEMENTWISE_FOR(S)                                                                          \
  template void relu_forward<S>(const S*, S*, std::int64_t);                                             \
  template void relu_backward<S>(const S*, const S*, S*, std::int64_t);                                  \
  template void sigmoid_forward<S>(const S*, S*, std::int64_t);                                          \
  template void sigmoid_backward<S>(const S*, const S*, S*, std::int64_t);                               \
  template void add_forward<S>(const S*, const S*, S*, std::int64_t);                                    \
  template void mul_forward<S>(const S*, const S*, S*, std::int64_t);                                    \
  template void gated_update_forward<S>(const S*, const S*, const S*, const S*, S*, std::int64_t);        \
  template void gated_update_backward<S>(const S*, const S*, const S*, const S*, S*, S*, std::int64_t);
GRCNN_ELEMENTWISE_FOR(float)
GRCNN_ELEMENTWISE_FOR(bf16)
#undef GRCNN_ELEMENTWISE_FOR
void fill(float* p, float value, std::int64_t n) { GRCNN_LAUNCH(k_fill, n, p, value, n); }
void cast_f32_to_bf16(const float* x, bf16* y, std::int64_t n) { GRCNN_LAUNCH(k_convert, n, x, dev(y), n); }
void cast_bf16_to_f32(const bf16* x, float* y, std::int64_t n) { GRCNN_LAUNCH(k_convert, n, dev(x), y, n); }

// Fills tables of up to kSlots non-empty tensors and launches each: fill(table, slot index, position).
template <class Table, class Slot, class Fill, class Launch>
void for_tables(std::span<const Slot> slots, Table base, Fill&& fill, Launch&& launch) {
  Table t = base;
  t.count = 0;
  std::int64_t end = 0;
  for (const Slot& s : slots) {
    if (s.n == 0) continue;
    end += static_cast<std::int64_t>(s.n);
    t.ends[t.count] = end;
    fill(t, s, t.count);
    if (++t.count == kSlots) {
      launch(t, end);
      t.count = 0;
      end = 0;
    }
  }
  if (t.count > 0) launch(t, end);
}

void sgd_update(std::span<const sgd_slot> slots, const sgd_hyper& h) {
  GRCNN_PROFILE("sgd update");
  for_tables(slots, sgd_table{}, [](sgd_table& t, const sgd_slot& s, int k) {
    t.w[k] = s.w, t.g[k] = s.g, t.buf[k] = s.buf, t.first[k] = s.first;
  }, [&](const sgd_table& t, std::int64_t n) {
    k_sgd<<<blocks_for(n), 256, 0, stream()>>>(t, h.lr, h.weight_decay, h.momentum, h.damp, h.nesterov);
    check_last_launch("sgd update");
  });
}
void adamw_update(std::span<const adamw_slot> slots, const adamw_hyper& h) {
  GRCNN_PROFILE("adamw update");
  adamw_table base{};
  base.decay = static_cast<float>(1.0 - h.lr * h.weight_decay);
  base.b1 = static_cast<float>(h.beta1), base.b2 = static_cast<float>(h.beta2);
  base.one_b1 = static_cast<float>(1.0 - h.beta1), base.one_b2 = static_cast<float>(1.0 - h.beta2);
  base.eps = static_cast<float>(h.eps);
  for_tables(slots, base, [&](adamw_table& t, const adamw_slot& s, int k) {
    const double step = static_cast<double>(s.step);
    const double bc1 = 1.0 - std::pow(h.beta1, step), bc2 = std::sqrt(1.0 - std::pow(h.beta2, step));
    t.w[k] = s.w, t.g[k] = s.g, t.m[k] = s.m, t.v[k] = s.v;
    t.step_size[k] = static_cast<float>(h.lr / bc1);
    t.c2[k] = static_cast<float>(bc2);
  }, [&](const adamw_table& t, std::int64_t n) {
    k_adamw<<<blocks_for(n), 256, 0, stream()>>>(t);
    check_last_launch("adamw update");
  });
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
