#pragma once
// oneDNN plumbing shared by the kernels: the engine and stream, memory descriptors for our tensors,
// the opaque weight format, and the per-thread plan cache that keeps a steady-state step free of
// primitive creation.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <sstream>
#include <string>
#include <unordered_map>

#include <oneapi/dnnl/dnnl.hpp>

#include "grcnn/backends/backend.hpp"
#include "grcnn/core/cpu_dispatch.hpp"

namespace grcnn::backends::onednn_detail {

inline dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}
inline dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

// Counters that tests and benchmarks read to prove the steady state does no setup work.
struct counters {
  std::atomic<std::size_t> plans_created{0};    // primitive descriptors + primitives built
  std::atomic<std::size_t> weight_reorders{0};  // weights converted at run time (plain -> preferred)
  std::atomic<std::size_t> grad_reorders{0};    // weight gradients converted to the weight's format
};
inline counters& stats() {
  static counters c;
  return c;
}

inline status check_dtype(dtype t) {
  if (std::find(onednn::dtypes.begin(), onednn::dtypes.end(), t) != onednn::dtypes.end()) return status::yes();
  return status::no("oneDNN computes in f32 or bf16, not " + std::string(name_of(t)));
}

inline dnnl::memory::data_type dt(dtype t) {
  switch (t) {
    case dtype::f32: return dnnl::memory::data_type::f32;
    case dtype::bf16: return dnnl::memory::data_type::bf16;
    default: throw backend_error("onednn: no oneDNN data type for " + std::string(name_of(t)));
  }
}
inline dnnl::memory::dims dims_of(const grcnn::shape& s) { return dnnl::memory::dims(s.begin(), s.end()); }

// Plain or nhwc descriptor of a logical shape.
inline dnnl::memory::desc md(const grcnn::shape& s, dtype t, layout l) {
  using tag = dnnl::memory::format_tag;
  tag f = tag::undef;
  switch (s.rank()) {
    case 1: f = tag::a; break;
    case 2: f = tag::ab; break;
    case 3: f = tag::abc; break;
    case 4: f = l == layout::nhwc ? tag::nhwc : tag::nchw; break;
    case 5: f = tag::abcde; break;
    default: throw backend_error("onednn: unsupported rank " + std::to_string(s.rank()));
  }
  return dnnl::memory::desc(dims_of(s), dt(t), f);
}
inline dnnl::memory::desc md(const ops::tensor_desc& d) { return md(d.dims, d.type, d.memory_layout); }

// A oneDNN blocked format carried by a tensor; converts to and from plain through reorders.
class dnnl_format final : public opaque_format {
 public:
  dnnl_format(dnnl::memory::desc blocked, dnnl::memory::desc plain) : blocked_(blocked), plain_(plain) {}
  const dnnl::memory::desc& desc() const { return blocked_; }
  std::string describe() const override {
    const auto& b = blocked_.data.format_desc.blocking;
    std::ostringstream os;  // e.g. "onednn:1x16:0x16": dimension 1 blocked by 16, then dimension 0 by 16
    os << "onednn";
    for (int i = 0; i < b.inner_nblks; ++i) os << ':' << b.inner_idxs[i] << 'x' << b.inner_blks[i];
    return os.str();
  }
  std::size_t bytes() const override { return blocked_.get_size(); }
  bool same_as(const opaque_format& o) const override {
    const auto* d = dynamic_cast<const dnnl_format*>(&o);
    return d && d->blocked_ == blocked_;
  }
  void to_plain(const void* src, void* dst) const override { reorder(blocked_, src, plain_, dst); }
  void from_plain(const void* src, void* dst) const override {
    std::memset(dst, 0, bytes());  // blocked formats may pad; padding must hold zeros
    reorder(plain_, src, blocked_, dst);
  }

 private:
  static void reorder(const dnnl::memory::desc& from, const void* src, const dnnl::memory::desc& to, void* dst) {
    dnnl::memory a(from, engine(), const_cast<void*>(src)), b(to, engine(), dst);
    dnnl::reorder(a, b).execute(stream(), a, b);
    stream().wait();
  }
  dnnl::memory::desc blocked_, plain_;
};

// The descriptor of a tensor as it is in memory (opaque tensors carry theirs; `as` gives the logical
// dims oneDNN expects, e.g. grouped conv weights as 5-D).
inline dnnl::memory::desc md_of(const tensor& t, const dnnl::memory::desc& plain_as) {
  if (t.memory_layout() == layout::opaque) {
    const auto* f = dynamic_cast<const dnnl_format*>(t.format().get());
    GRCNN_CHECK(f, backend_error, "onednn: tensor ", t.describe(), " carries another backend's format");
    return f->desc();
  }
  return plain_as;
}
// The CPU kernels read memory on the host: a device tensor here is a usage error, reported as one.
inline void host_only(std::string_view op, std::initializer_list<const tensor*> ts) {
  for (const tensor* t : ts)
    GRCNN_CHECK(!t->defined() || t->on_host(), backend_error, "onednn ", op, ": tensor ", t->describe(), " is on ",
                t->where().str(), "; the CPU backend needs host tensors (tensor::to_device(cpu_device))");
}
inline dnnl::memory mem(const dnnl::memory::desc& d, const tensor& t) {
  GRCNN_CHECK(!t.defined() || t.on_host(), backend_error, "onednn: tensor ", t.describe(), " is on ", t.where().str(),
              "; the CPU backend needs host tensors (tensor::to_device(cpu_device))");
  return dnnl::memory(d, engine(), t.raw());
}
inline dnnl::memory mem(const tensor& t) { return mem(md(t.dims(), t.type(), t.memory_layout()), t); }

// Holds `t` in descriptor `want`, reordering (into a fresh buffer) only when its format differs.
inline tensor as_format(const tensor& t, const dnnl::memory::desc& have, const dnnl::memory::desc& want,
                        const std::shared_ptr<const dnnl_format>& want_format, const grcnn::shape& logical) {
  if (have == want) return t;
  tensor r = want_format ? tensor::empty_opaque(logical, t.type(), want_format) : tensor::empty(logical, t.type());
  if (want_format) std::memset(r.raw(), 0, r.bytes());
  dnnl::memory a(have, engine(), t.raw()), b(want, engine(), r.raw());
  dnnl::reorder(a, b).execute(stream(), a, b);
  stream().wait();
  return r;
}

// f32 arithmetic on f32 or bf16 storage (bf16 rounded to nearest even on the way back).
inline float to_f32(float v) { return v; }
inline float to_f32(bf16 v) { return static_cast<float>(v); }
template <class T>
T from_f32(float v) {
  if constexpr (std::is_same_v<T, bf16>) return bf16(v);
  else return v;
}

// Whether a host tensor holds a NaN or an infinity: one vectorised read of its exponent bits (f32, bf16;
// other dtypes through their values). Plain and channels-last tensors are read in memory order.
inline bool has_nonfinite(const tensor& t) {
  if (!t.defined() || t.numel() == 0) return false;
  std::atomic<bool> found{false};
  const std::int64_t n = t.numel();
  auto scan = [&]<class U>(const U* p, U mask) {
    vectorised_chunks(n, 1 << 14, 1 << 16, [&](std::int64_t lo, std::int64_t hi) GRCNN_VECTOR_BODY {
      U bad = 0;
      for (std::int64_t i = lo; i < hi; ++i) bad |= static_cast<U>((p[i] & mask) == mask);
      if (bad) found.store(true, std::memory_order_relaxed);
    });
  };
  if (t.type() == dtype::f32 && t.memory_layout() != layout::opaque)
    scan(static_cast<const std::uint32_t*>(t.raw()), std::uint32_t(0x7f800000u));
  else if (t.type() == dtype::bf16 && t.memory_layout() != layout::opaque)
    scan(static_cast<const std::uint16_t*>(t.raw()), std::uint16_t(0x7f80u));
  else
    for (const double v : t.values<double>())
      if (!std::isfinite(v)) return true;
  return found.load(std::memory_order_relaxed);
}

// Primitives are created with a user-managed scratchpad, which execute() takes from the caching
// allocator: no allocation inside oneDNN per call, and the memory is reused across steps.
inline dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr a;
  a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return a;
}
inline void execute(const dnnl::primitive& p, std::unordered_map<int, dnnl::memory> args) {
  const dnnl_memory_desc_t* scratch = dnnl_primitive_desc_query_md(p.get_primitive_desc(), dnnl_query_scratchpad_md, 0);
  tensor pad;
  if (scratch && dnnl_memory_desc_get_size(scratch) > 0) {
    const dnnl::memory::desc d(*scratch);
    pad = tensor::empty(grcnn::shape{static_cast<std::int64_t>((d.get_size() + 7) / 8)}, dtype::i64);
    args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(d, engine(), pad.raw()));
  }
  p.execute(stream(), args);
  stream().wait();
}

// Per-thread cache of plans (primitive descriptors and primitives) keyed by the problem.
struct plan_base {
  virtual ~plan_base() = default;
};
template <class Plan, class Make>
Plan& cached_plan(const std::string& key, Make&& make) {
  thread_local std::unordered_map<std::string, std::unique_ptr<plan_base>> cache;
  auto it = cache.find(key);
  if (it == cache.end()) {
    stats().plans_created++;
    it = cache.emplace(key, std::unique_ptr<plan_base>(new Plan(make()))).first;
  }
  return static_cast<Plan&>(*it->second);
}

// Runs f(i) for i in [0, n) on OpenMP threads (the runtime oneDNN itself uses).
template <class F>
void parallel_for(std::int64_t n, F&& f) {
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) f(i);
}

// Payload that points at a cached plan (plans live as long as the thread's cache).
template <class Plan>
struct plan_payload : autograd::payload {
  Plan* plan = nullptr;
  std::shared_ptr<const opaque_format> weight_format;  // the weight's own format, for its gradient
  std::vector<tensor> buffers;                          // workspaces, statistics
};

}  // namespace grcnn::backends::onednn_detail
