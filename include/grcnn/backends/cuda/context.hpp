#pragma once
// Plumbing shared by the CUDA kernels (cuda_detail): registering the device runtime with core, the
// dtype checks, raw pointers and views of our tensors, and fresh device tensors.
#include <cstdint>
#include <string>
#include <string_view>

#include "grcnn/backends/backend.hpp"
#include "grcnn/backends/cuda/kernels.hpp"
#include "grcnn/backends/cuda/runtime.hpp"

namespace grcnn::backends {

// The policy (cuda.hpp), declared so that each op family's header can specialise kernel<> for it.
template <class Mode>
struct cuda_t;

namespace cuda_detail {

// Registers the CUDA runtime with core before main() in every program that includes this header (every
// kernel header does, and so does cuda.hpp).
inline const bool runtime_installed = grcnn::cuda::install_runtime();

// Activations in f32 or bf16 (the ops our kernels template on the storage type).
inline status check(const ops::tensor_desc& d) {
  if (d.type != dtype::f32 && d.type != dtype::bf16)
    return status::no("cuda computes in f32 or bf16, got " + std::string(name_of(d.type)));
  if (d.memory_layout == layout::opaque) return status::no("opaque (oneDNN) formats are host formats");
  return status::yes();
}
// f32 only: losses and softmax (bf16 networks hand them f32 logits).
inline status check_f32(const ops::tensor_desc& d) {
  if (d.type != dtype::f32)
    return status::no("cuda runs this op in f32 only, got " + std::string(name_of(d.type)) +
                      (d.type == dtype::bf16 ? " (not built for bf16 on the GPU yet)" : ""));
  return check(d);
}
// Calls f.template operator()<S>() with S the storage type of t (float or grcnn::bf16).
template <class F>
decltype(auto) with_storage(dtype t, F&& f) {
  if (t == dtype::bf16) return f.template operator()<bf16>();
  return f.template operator()<float>();
}
template <class S>
const S* cp(const tensor& t) {
  return t.defined() ? static_cast<const S*>(t.raw()) : nullptr;
}
template <class S>
S* mp(const tensor& t) {
  return t.defined() ? static_cast<S*>(t.raw()) : nullptr;
}
inline const void* craw(const tensor& t) { return t.defined() ? t.raw() : nullptr; }
inline void on_device(std::string_view op, std::string_view what, const tensor& t) {
  GRCNN_CHECK(!t.defined() || t.where().kind == device_kind::cuda, backend_error, op, " on cuda: ", what, " ",
              t.describe(), " is on ", t.where().str(), "; move inputs and the network with to_device(cuda_device)");
}
inline grcnn::cuda::view4 view_of(const ops::tensor_desc& d) {
  grcnn::cuda::view4 v;
  const auto& s = d.dims;
  if (s.rank() == 2) {
    v.n = s[0];
    v.c = s[1];
    v.sn = s[1];
    v.sc = 1;
    return v;
  }
  v.n = s[0], v.c = s[1], v.h = s[2], v.w = s[3];
  if (d.memory_layout == layout::nhwc) {
    v.sc = 1, v.sw = v.c, v.sh = v.w * v.c, v.sn = v.h * v.w * v.c;
  } else {
    v.sw = 1, v.sh = v.w, v.sc = v.h * v.w, v.sn = v.c * v.h * v.w;
  }
  return v;
}
inline tensor empty(const ops::tensor_desc& d) { return tensor::empty(d.dims, d.type, d.memory_layout, cuda_device); }
inline const float* cf(const tensor& t) { return t.defined() ? static_cast<const float*>(t.raw()) : nullptr; }
inline float* mf(const tensor& t) { return t.defined() ? static_cast<float*>(t.raw()) : nullptr; }

// Whether a backward may add its dx into *dx: the tape handed over x's gradient so far (a defined
// device tensor of x's description); otherwise it writes a fresh dx.
inline bool adds_into(const tensor* dx, const ops::tensor_desc& x) {
  return dx && dx->defined() && dx->where() == cuda_device && dx->type() == x.type &&
         dx->memory_layout() == x.memory_layout && dx->dims() == x.dims;
}
// A [C] f32 tensor on the device.
inline tensor channels(std::int64_t c) { return tensor::empty(grcnn::shape{c}, dtype::f32, layout::plain, cuda_device); }

}  // namespace cuda_detail

}  // namespace grcnn::backends
