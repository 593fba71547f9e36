#pragma once
// The CUDA backend policy: cuDNN convolutions, cuBLAS linear layers, our own kernels for batch norm
// (+ReLU), the GRCL gate, pooling, softmax, losses and the selective-kernel fusion (src/cuda). Tensors
// live on the device (tensor::to_device, network::to_device). Plain NCHW and channels-last both work;
// with the legacy cuDNN convolution API NCHW is the faster order in f32/tf32 (backend_traits below). The
// precision is a policy tag: cuda_t<precision::fp32> (IEEE, the default) or cuda_t<precision::tf32>
// (tensor cores). Activations may be f32 or bf16 (bf16 mixed precision, nn/precision.hpp: cuDNN and
// cuBLAS on tensor cores with f32 accumulation, our kernels computing in f32 between bf16 loads and
// stores, batch-norm parameters and statistics in f32); losses and softmax take f32 logits. Results
// are not bitwise reproducible across processes: cuDNN's algorithm choice is timed (our own kernels use
// no atomics and reduce in a fixed order).
//
// Needs the compiled component: link grcnn::cuda (CMake option GRCNN_ENABLE_CUDA).
#include <array>
#include <string_view>

#include "grcnn/backends/backend.hpp"
#include "grcnn/backends/cuda/kernels.hpp"
#include "grcnn/backends/cuda/runtime.hpp"

namespace grcnn::backends {

namespace precision {
struct fp32 {
  static constexpr std::string_view backend_name = "cuda";
  static constexpr cuda::math_mode math = cuda::math_mode::fp32;
};
struct tf32 {
  static constexpr std::string_view backend_name = "cuda_tf32";
  static constexpr cuda::math_mode math = cuda::math_mode::tf32;
};
}  // namespace precision

template <class Precision = precision::fp32>
struct cuda_t {
  static constexpr std::string_view name = Precision::backend_name;
  static constexpr cuda::math_mode math = Precision::math;
  using fallback = void;  // nothing on the host can read device memory: refusals are errors
  static constexpr std::array<dtype, 2> dtypes{dtype::f32, dtype::bf16};
  static constexpr grcnn::device where = cuda_device;
};
using cuda = cuda_t<>;
using cuda_tf32 = cuda_t<precision::tf32>;

namespace cuda_detail {

// Registers the CUDA runtime with core before main() in every program that includes this header.
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

// With the legacy cuDNN convolution API, f32 and tf32 convolutions ran 1.3-1.9x faster in NCHW than in
// NHWC on an H100 (docs/benchmarks.md): plain is this backend's preferred activation order. bf16
// activations go channels-last, the order of cuDNN's tensor-core kernels.
template <class P>
struct backend_traits<cuda_t<P>> {
  static constexpr grcnn::device where = cuda_device;
  static constexpr layout activations = layout::plain;
  static constexpr layout mixed_activations = layout::nhwc;
};

// Conv weights held channels-last (O, KH, KW, C/groups): cuDNN's fast NHWC kernels want that filter
// format. Converted once, on the device.
template <class P>
struct weight_layout<cuda_t<P>> {
  static tensor conv(const ops::conv2d_problem& pr, const tensor& w) {
    tensor d = w.to_device(cuda_device);
    return pr.x.memory_layout == layout::nhwc ? d.to_layout(layout::nhwc) : d;
  }
};

// Under mixed precision the f32 master is held in the activations' order too (the bf16 cast keeps it).
template <class P>
struct mixed_weight_order<cuda_t<P>> {
  static layout conv(layout activations) { return activations == layout::nhwc ? layout::nhwc : layout::plain; }
};

template <class P>
struct kernel<cuda_t<P>, ops::conv2d_op> {
  using Pr = ops::conv2d_problem;
  static status can_implement(const Pr& pr) {
    if (auto s = cuda_detail::check(pr.x); !s) return s;
    return cuda_detail::check(pr.w);
  }
  // cuDNN wants the filter in the activations' order (KRSC for NHWC): a weight held otherwise is
  // permuted on the device per call (networks adopt the right order once, see weight_layout).
  static layout filter_layout(const Pr& pr) { return pr.x.memory_layout == layout::nhwc ? layout::nhwc : layout::plain; }
  static grcnn::cuda::conv_args args(const Pr& pr) {
    grcnn::cuda::conv_args a;
    a.x = cuda_detail::view_of(pr.x);
    a.y = cuda_detail::view_of(pr.y);
    a.o = pr.w.dims[0], a.cg = pr.w.dims[1], a.kh = pr.w.dims[2], a.kw = pr.w.dims[3];
    a.weight_nhwc = filter_layout(pr) == layout::nhwc;
    a.stride_h = pr.p.stride_h, a.stride_w = pr.p.stride_w, a.pad_h = pr.p.pad_h, a.pad_w = pr.p.pad_w;
    a.dil_h = pr.p.dilation_h, a.dil_w = pr.p.dilation_w, a.groups = pr.p.groups;
    a.math = P::math;
    a.bf16 = pr.x.type == dtype::bf16;
    a.key = pr.str() + (P::math == grcnn::cuda::math_mode::tf32 ? " tf32" : " fp32");
    return a;
  }
  static tensor filter(const Pr& pr, const tensor& w) {
    return w.memory_layout() == filter_layout(pr) ? w : w.to_layout(filter_layout(pr));
  }
  static tensor forward(const Pr& pr, const tensor& x, const tensor& w, const tensor& b,
                        std::unique_ptr<autograd::payload>&) {
    using namespace cuda_detail;
    on_device("conv2d", "input", x), on_device("conv2d", "weight", w), on_device("conv2d", "bias", b);
    tensor y = empty(pr.y);
    grcnn::cuda::conv2d_forward(args(pr), craw(x), craw(filter(pr, w)), craw(b), y.raw());
    return y;
  }
  static void backward(const Pr& pr, autograd::payload*, const tensor& dy, const tensor& x, const tensor& w, tensor* dx,
                       tensor* dw, tensor* db) {
    using namespace cuda_detail;
    const layout fl = filter_layout(pr);
    if (dx) *dx = empty(pr.x);
    if (dw) *dw = tensor::empty(pr.w.dims, pr.w.type, fl, cuda_device);
    if (db) *db = tensor::empty(grcnn::shape{pr.w.dims[0]}, pr.x.type, layout::plain, cuda_device);
    const tensor wf = w.defined() ? filter(pr, w) : w;
    grcnn::cuda::conv2d_backward(args(pr), craw(dy), craw(x), craw(wf), dx ? dx->raw() : nullptr,
                                 dw ? dw->raw() : nullptr, db ? db->raw() : nullptr);
    if (dw && fl != pr.w.memory_layout) *dw = dw->to_layout(pr.w.memory_layout);  // the weight's own order
  }
};

template <class P>
struct kernel<cuda_t<P>, ops::batch_norm_op> {
  using Pr = ops::batch_norm_problem;
  static status can_implement(const Pr& pr) { return cuda_detail::check(pr.x); }
  struct saved : autograd::payload {
    tensor mean, invstd;
    tensor beta;  // the fused ReLU's mask is recomputed from x in backward (the parameter, not a copy)
  };
  static grcnn::cuda::batch_norm_args args(const Pr& pr) {
    return {cuda_detail::view_of(pr.x), pr.eps, pr.momentum, pr.fuse_relu};
  }
  static tensor forward(const Pr& pr, const tensor& x, const tensor& gamma, const tensor& beta, tensor& running_mean,
                        tensor& running_var, std::unique_ptr<autograd::payload>& state) {
    using namespace cuda_detail;
    for (auto [what, t] : {std::pair<const char*, const tensor*>{"input", &x}, {"weight", &gamma}, {"bias", &beta},
                           {"running_mean", &running_mean}, {"running_var", &running_var}})
      on_device("batch_norm", what, *t);
    auto s = std::make_unique<saved>();
    s->mean = channels(pr.x.dims[1]);
    s->invstd = channels(pr.x.dims[1]);
    s->beta = beta;
    tensor y = empty(pr.x);
    with_storage(pr.x.type, [&]<class S>() {
      if (pr.training)
        grcnn::cuda::batch_norm_forward_training(args(pr), cp<S>(x), cf(gamma), cf(beta), mf(running_mean),
                                                 mf(running_var), mp<S>(y), mf(s->mean), mf(s->invstd));
      else
        grcnn::cuda::batch_norm_forward_inference(args(pr), cp<S>(x), cf(gamma), cf(beta), cf(running_mean),
                                                  cf(running_var), mp<S>(y), mf(s->mean), mf(s->invstd));
    });
    state = std::move(s);
    return y;
  }
  static void backward(const Pr& pr, autograd::payload* state, const tensor& dy, const tensor& x,
                       const tensor& /*y: the ReLU mask comes from x*/, const tensor& gamma, tensor* dx, tensor* dgamma,
                       tensor* dbeta) {
    using namespace cuda_detail;
    const auto& s = *static_cast<saved*>(state);
    const std::int64_t C = pr.x.dims[1];
    tensor dg = channels(C), dbt = channels(C);
    // x's gradient so far, when the tape hands it over (ops::batch_norm allows it), takes dx added in.
    const bool add = adds_into(dx, pr.x);
    if (dx && !add) *dx = empty(pr.x);
    with_storage(pr.x.type, [&]<class S>() {
      grcnn::cuda::batch_norm_backward(args(pr), pr.training, cp<S>(dy), cp<S>(x), cf(gamma), cf(s.beta), cf(s.mean),
                                       cf(s.invstd), dx ? mp<S>(*dx) : nullptr, add, mf(dg), mf(dbt));
    });
    if (dgamma) *dgamma = dg;
    if (dbeta) *dbeta = dbt;
  }
};

// The paired batch norm (ops::paired_batch_norm) in training: statistics once, both outputs from one
// read of x; the backward's two channel reductions, then one dx pass for both gradients
// (grcnn::cuda::batch_norm_pair_*). An output nothing used (no gradient) leaves the other's plain
// backward, with zero gradients for the unused one's parameters.
template <class P>
struct kernel<cuda_t<P>, ops::paired_batch_norm_op> {
  using Pr = ops::batch_norm_problem;
  using single = kernel<cuda_t<P>, ops::batch_norm_op>;
  struct saved : autograd::payload {
    tensor mean, invstd, beta_a, beta_b;  // the betas for the fused ReLU's masks
  };
  static status can_implement(const Pr& pr) {
    if (!pr.training) return status::no("paired batch norm is a training kernel (evaluation uses each BN's own running statistics)");
    return cuda_detail::check(pr.x);
  }
  static std::array<tensor, 2> forward(const Pr& pr, const tensor& x, const tensor& ga, const tensor& ba, const tensor& gb,
                                       const tensor& bb, tensor& rma, tensor& rva, tensor& rmb, tensor& rvb,
                                       std::unique_ptr<autograd::payload>& state) {
    using namespace cuda_detail;
    for (auto [what, t] : {std::pair<const char*, const tensor*>{"input", &x}, {"first weight", &ga}, {"first bias", &ba},
                           {"second weight", &gb}, {"second bias", &bb}, {"first running_mean", &rma},
                           {"first running_var", &rva}, {"second running_mean", &rmb}, {"second running_var", &rvb}})
      on_device("paired_batch_norm", what, *t);
    auto s = std::make_unique<saved>();
    s->mean = channels(pr.x.dims[1]);
    s->invstd = channels(pr.x.dims[1]);
    s->beta_a = ba, s->beta_b = bb;
    std::array<tensor, 2> y{empty(pr.x), empty(pr.x)};
    const grcnn::cuda::batch_norm_affine a{cf(ga), cf(ba), mf(rma), mf(rva)}, b{cf(gb), cf(bb), mf(rmb), mf(rvb)};
    with_storage(pr.x.type, [&]<class S>() {
      grcnn::cuda::batch_norm_pair_forward_training(single::args(pr), cp<S>(x), a, b, mp<S>(y[0]), mp<S>(y[1]),
                                                    mf(s->mean), mf(s->invstd));
    });
    state = std::move(s);
    return y;
  }
  static void backward(const Pr& pr, autograd::payload* state, const tensor& dya, const tensor& dyb, const tensor& x,
                       const tensor& /*ya*/, const tensor& /*yb: the ReLU masks come from x*/, const tensor& ga,
                       const tensor& gb, tensor* dx, tensor* dga, tensor* dba, tensor* dgb, tensor* dbb) {
    using namespace cuda_detail;
    const auto& s = *static_cast<saved*>(state);
    const std::int64_t C = pr.x.dims[1];
    const grcnn::cuda::batch_norm_affine a{cf(ga), cf(s.beta_a)}, b{cf(gb), cf(s.beta_b)};
    const auto zeros = [&] {
      tensor z = channels(C);
      grcnn::cuda::fill(mf(z), 0.f, C);
      return z;
    };
    // x's gradient so far, when the tape hands it over (ops::paired_batch_norm allows it), takes dx added in.
    const bool add = adds_into(dx, pr.x);
    if (!dya.defined() && !dyb.defined()) {  // nothing used either output: x's gradient stays as it was
      for (tensor* t : {dga, dba, dgb, dbb})
        if (t) *t = zeros();
      if (dx && !add) *dx = tensor();
      return;
    }
    if (dx && !add) *dx = empty(pr.x);
    if (!dya.defined() || !dyb.defined()) {  // an output nothing used: no gradient from it
      const bool first = dya.defined();
      tensor g = channels(C), bt = channels(C);
      const grcnn::cuda::batch_norm_affine& k = first ? a : b;
      const tensor& dy = first ? dya : dyb;
      with_storage(pr.x.type, [&]<class S>() {
        grcnn::cuda::batch_norm_backward(single::args(pr), true, cp<S>(dy), cp<S>(x), k.gamma, k.beta, cf(s.mean),
                                         cf(s.invstd), dx ? mp<S>(*dx) : nullptr, add, mf(g), mf(bt));
      });
      if (dga) *dga = first ? g : zeros();
      if (dba) *dba = first ? bt : zeros();
      if (dgb) *dgb = first ? zeros() : g;
      if (dbb) *dbb = first ? zeros() : bt;
      return;
    }
    tensor g1 = channels(C), b1 = channels(C), g2 = channels(C), b2 = channels(C);
    with_storage(pr.x.type, [&]<class S>() {
      grcnn::cuda::batch_norm_pair_backward(single::args(pr), cp<S>(dya), cp<S>(dyb), cp<S>(x), a, b, cf(s.mean),
                                            cf(s.invstd), dx ? mp<S>(*dx) : nullptr, add, mf(g1), mf(b1), mf(g2),
                                            mf(b2));
    });
    if (dga) *dga = g1;
    if (dba) *dba = b1;
    if (dgb) *dgb = g2;
    if (dbb) *dbb = b2;
  }
};

// The synchronised batch norm's per-rank passes have no CUDA kernels yet: refused with the reason
// (a world of one runs the plain batch norm, as PyTorch's SyncBatchNorm does; grcnn-train refuses
// --sync-bn on GPUs with more than one rank). The members exist so the dispatcher's table is complete;
// none is reached.
template <class P>
struct kernel<cuda_t<P>, ops::sync_batch_norm_op> {
  using Pr = ops::batch_norm_problem;
  static status can_implement(const Pr&) {
    return status::no("batch norm synchronised across ranks has no CUDA kernels yet (a world of one runs the plain one)");
  }
  [[noreturn]] static void unreachable() { throw backend_error("sync_batch_norm: no CUDA kernel (refused by can_implement)"); }
  static void batch_statistics(const Pr&, const tensor&, std::vector<double>&, std::vector<double>&) { unreachable(); }
  static tensor normalize(const Pr&, const tensor&, const tensor&, const tensor&, const std::vector<double>&,
                          const std::vector<double>&) { unreachable(); }
  static void gradient_sums(const Pr&, const tensor&, const tensor&, const tensor&, const std::vector<double>&,
                            std::span<double>, std::span<double>) { unreachable(); }
  static tensor input_gradient(const Pr&, const tensor&, const tensor&, const tensor&, const tensor&,
                               const std::vector<double>&, const std::vector<double>&, const std::vector<double>&,
                               const std::vector<double>&) { unreachable(); }
};

template <class P>
struct kernel<cuda_t<P>, ops::eltwise_op> {
  using Pr = ops::eltwise_problem;
  static status can_implement(const Pr& pr) { return cuda_detail::check(pr.x); }
  static tensor forward(const Pr& pr, const tensor& x) {
    using namespace cuda_detail;
    on_device("eltwise", "input", x);
    tensor y = empty(pr.x);
    with_storage(pr.x.type, [&]<class S>() {
      if (pr.kind == ops::eltwise_kind::relu)
        grcnn::cuda::relu_forward(cp<S>(x), mp<S>(y), x.numel());
      else
        grcnn::cuda::sigmoid_forward(cp<S>(x), mp<S>(y), x.numel());
    });
    return y;
  }
  static tensor backward(const Pr& pr, const tensor& dy, const tensor& y) {
    using namespace cuda_detail;
    tensor dx = empty(pr.x);
    with_storage(pr.x.type, [&]<class S>() {
      if (pr.kind == ops::eltwise_kind::relu)
        grcnn::cuda::relu_backward(cp<S>(dy), cp<S>(y), mp<S>(dx), y.numel());
      else
        grcnn::cuda::sigmoid_backward(cp<S>(dy), cp<S>(y), mp<S>(dx), y.numel());
    });
    return dx;
  }
};

// f32 <-> bf16 conversions (mixed precision) with our own kernels; the layout is kept.
template <class P>
struct kernel<cuda_t<P>, ops::cast_op> {
  using Pr = ops::cast_problem;
  static status can_implement(const Pr& pr) {
    const bool pair = (pr.x.type == dtype::f32 && pr.to == dtype::bf16) || (pr.x.type == dtype::bf16 && pr.to == dtype::f32);
    if (!pair) return status::no("cuda casts between f32 and bf16, not " + pr.str());
    if (pr.x.memory_layout == layout::opaque) return status::no("opaque (oneDNN) formats are host formats");
    return status::yes();
  }
  static tensor convert(const tensor& x, dtype to) {
    tensor y = tensor::empty(x.dims(), to, x.memory_layout(), cuda_device);
    if (to == dtype::bf16)
      grcnn::cuda::cast_f32_to_bf16(cuda_detail::cp<float>(x), cuda_detail::mp<bf16>(y), x.numel());
    else
      grcnn::cuda::cast_bf16_to_f32(cuda_detail::cp<bf16>(x), cuda_detail::mp<float>(y), x.numel());
    return y;
  }
  static tensor forward(const Pr& pr, const tensor& x) {
    cuda_detail::on_device("cast", "input", x);
    return convert(x, pr.to);
  }
  static tensor backward(const Pr& pr, const tensor& dy) { return convert(dy, pr.x.type); }
};

template <class P>
struct kernel<cuda_t<P>, ops::binary_op> {
  using Pr = ops::binary_problem;
  static status can_implement(const Pr& pr) { return cuda_detail::check(pr.a); }
  static tensor forward(const Pr& pr, const tensor& a, const tensor& b) {
    using namespace cuda_detail;
    on_device("binary", "a", a), on_device("binary", "b", b);
    tensor y = empty(pr.a);
    with_storage(pr.a.type, [&]<class S>() {
      if (pr.kind == ops::binary_kind::add)
        grcnn::cuda::add_forward(cp<S>(a), cp<S>(b), mp<S>(y), a.numel());
      else
        grcnn::cuda::mul_forward(cp<S>(a), cp<S>(b), mp<S>(y), a.numel());
    });
    return y;
  }
  static void backward(const Pr& pr, const tensor& dy, const tensor& a, const tensor& b, tensor* da, tensor* db) {
    using namespace cuda_detail;
    if (pr.kind == ops::binary_kind::add) {  // the gradient passes through unchanged
      if (da) *da = dy;
      if (db) *db = dy;
      return;
    }
    with_storage(pr.a.type, [&]<class S>() {
      if (da) {
        *da = empty(pr.a);
        grcnn::cuda::mul_forward(cp<S>(dy), cp<S>(b), mp<S>(*da), dy.numel());
      }
      if (db) {
        *db = empty(pr.a);
        grcnn::cuda::mul_forward(cp<S>(dy), cp<S>(a), mp<S>(*db), dy.numel());
      }
    });
  }
};

template <class P>
struct kernel<cuda_t<P>, ops::gated_update_op> {
  using Pr = ops::gated_update_problem;
  static status can_implement(const Pr& pr) { return cuda_detail::check(pr.x); }
  static tensor forward(const Pr& pr, const tensor& x, const tensor& a, const tensor& b, const tensor& y) {
    using namespace cuda_detail;
    for (auto [what, t] : {std::pair<const char*, const tensor*>{"x", &x}, {"a", &a}, {"b", &b}, {"y", &y}})
      on_device("gated_update", what, *t);
    tensor out = empty(pr.x);
    with_storage(pr.x.type, [&]<class S>() {
      grcnn::cuda::gated_update_forward(cp<S>(x), cp<S>(a), cp<S>(b), cp<S>(y), mp<S>(out), x.numel());
    });
    return out;
  }
  static void backward(const Pr& pr, const tensor& dout, const tensor& a, const tensor& b, const tensor& y, tensor* dx,
                       tensor* dgate, tensor* dy) {
    using namespace cuda_detail;
    if (dx) *dx = dout;
    if (dgate) *dgate = empty(pr.x);
    if (dy) *dy = empty(pr.x);
    if (dgate || dy)
      with_storage(pr.x.type, [&]<class S>() {
        grcnn::cuda::gated_update_backward(cp<S>(dout), cp<S>(a), cp<S>(b), cp<S>(y), dgate ? mp<S>(*dgate) : nullptr,
                                           dy ? mp<S>(*dy) : nullptr, dout.numel());
      });
  }
};

template <class P>
struct kernel<cuda_t<P>, ops::pool2d_op> {
  using Pr = ops::pool2d_problem;
  static status can_implement(const Pr& pr) {
    if (pr.kind == ops::pool_kind::max && std::int64_t(pr.kernel_h) * pr.kernel_w > 65536)
      return status::no("max pooling windows of at most 65,536 elements (winners are kept as 16-bit window indices)");
    return cuda_detail::check(pr.x);
  }
  struct saved : autograd::payload {
    // Max pooling's winners, a 16-bit index inside the window per output (pool_forward), held in
    // 8-byte words: the storage is private to this kernel pair.
    tensor winners;
    std::uint16_t* indices() const {
      return winners.defined() ? reinterpret_cast<std::uint16_t*>(winners.template data<std::int64_t>()) : nullptr;
    }
  };
  static grcnn::cuda::pool_args args(const Pr& pr) {
    return {cuda_detail::view_of(pr.x), cuda_detail::view_of(pr.y), pr.kind == ops::pool_kind::max, pr.kernel_h,
            pr.kernel_w, pr.stride_h, pr.stride_w, pr.pad_h, pr.pad_w};
  }
  static tensor forward(const Pr& pr, const tensor& x, std::unique_ptr<autograd::payload>& state) {
    using namespace cuda_detail;
    on_device("pool2d", "input", x);
    tensor y = empty(pr.y);
    auto s = std::make_unique<saved>();
    if (pr.kind == ops::pool_kind::max) {
      const std::int64_t outputs = pr.y.dims[0] * pr.y.dims[1] * pr.y.dims[2] * pr.y.dims[3];
      s->winners = tensor::empty(grcnn::shape{(outputs + 3) / 4}, dtype::i64, layout::plain, cuda_device);
    }
    with_storage(pr.x.type, [&]<class S>() { grcnn::cuda::pool_forward(args(pr), cp<S>(x), mp<S>(y), s->indices()); });
    state = std::move(s);
    return y;
  }
  static tensor backward(const Pr& pr, autograd::payload* state, const tensor& dy) {
    using namespace cuda_detail;
    const auto& s = *static_cast<saved*>(state);
    tensor dx = empty(pr.x);
    with_storage(pr.x.type, [&]<class S>() { grcnn::cuda::pool_backward(args(pr), cp<S>(dy), s.indices(), mp<S>(dx)); });
    return dx;
  }
};

template <class P>
struct kernel<cuda_t<P>, ops::linear_op> {
  using Pr = ops::linear_problem;
  static status can_implement(const Pr& pr) { return cuda_detail::check(pr.x); }
  static tensor forward(const Pr& pr, const tensor& x, const tensor& w, const tensor& b,
                        std::unique_ptr<autograd::payload>&) {
    using namespace cuda_detail;
    on_device("linear", "input", x), on_device("linear", "weight", w), on_device("linear", "bias", b);
    const auto N = pr.x.dims[0], K = pr.x.dims[1], M = pr.w.dims[0];
    tensor y = tensor::empty(grcnn::shape{N, M}, pr.x.type, layout::plain, cuda_device);
    with_storage(pr.x.type, [&]<class S>() {
      grcnn::cuda::linear_forward(cp<S>(x), cp<S>(w), cp<S>(b), mp<S>(y), N, K, M, P::math);
    });
    return y;
  }
  static void backward(const Pr& pr, autograd::payload*, const tensor& dy, const tensor& x, const tensor& w, tensor* dx,
                       tensor* dw, tensor* db) {
    using namespace cuda_detail;
    const auto N = pr.x.dims[0], K = pr.x.dims[1], M = pr.w.dims[0];
    if (dx) *dx = empty(pr.x);
    if (dw) *dw = empty(pr.w);
    if (db) *db = tensor::empty(grcnn::shape{M}, pr.x.type, layout::plain, cuda_device);
    with_storage(pr.x.type, [&]<class S>() {
      grcnn::cuda::linear_backward(cp<S>(dy), cp<S>(x), cp<S>(w), dx ? mp<S>(*dx) : nullptr, dw ? mp<S>(*dw) : nullptr,
                                   db ? mp<S>(*db) : nullptr, N, K, M, P::math);
    });
  }
};

template <class P>
struct kernel<cuda_t<P>, ops::softmax_op> {
  using Pr = ops::softmax_problem;
  static status can_implement(const Pr& pr) { return cuda_detail::check_f32(pr.x); }
  static tensor forward(const Pr& pr, const tensor& x) {
    using namespace cuda_detail;
    on_device(pr.log ? "log_softmax" : "softmax", "input", x);
    tensor y = empty(pr.x);
    grcnn::cuda::softmax_forward(cf(x), mf(y), pr.x.dims[0], pr.x.dims[1], pr.log);
    return y;
  }
  static tensor backward(const Pr& pr, const tensor& dy, const tensor& y) {
    using namespace cuda_detail;
    tensor dx = empty(pr.x);
    grcnn::cuda::softmax_backward(cf(dy.to_device(cuda_device)), cf(y), mf(dx), pr.x.dims[0], pr.x.dims[1], pr.log);
    return dx;
  }
};

template <class P>
struct kernel<cuda_t<P>, ops::cross_entropy_op> {
  using Pr = ops::cross_entropy_problem;
  static status can_implement(const Pr& pr) { return cuda_detail::check_f32(pr.logits); }
  struct saved : autograd::payload {
    tensor prob, q;
  };
  // Labels or soft targets may come from the host (a loader's batch): they are copied over.
  static tensor forward(const Pr& pr, const tensor& logits, const tensor& target,
                        std::unique_ptr<autograd::payload>& state) {
    using namespace cuda_detail;
    on_device("cross_entropy", "logits", logits);
    const tensor t = target.to_device(cuda_device);
    auto s = std::make_unique<saved>();
    s->prob = empty(pr.logits);
    s->q = empty(pr.logits);
    tensor loss = tensor::empty(grcnn::shape{}, dtype::f32, layout::plain, cuda_device);
    const bool hard = pr.target == ops::target_kind::hard;
    grcnn::cuda::cross_entropy_forward(cf(logits), hard ? t.template data<std::int64_t>() : nullptr, hard ? nullptr : cf(t),
                                       pr.label_smoothing, pr.logits.dims[0], pr.logits.dims[1], mf(loss), mf(s->prob),
                                       mf(s->q));
    state = std::move(s);
    return loss;
  }
  static tensor backward(const Pr& pr, autograd::payload* state, const tensor& dloss) {
    using namespace cuda_detail;
    const auto& s = *static_cast<saved*>(state);
    tensor d = empty(pr.logits);
    const tensor g = dloss.to_device(cuda_device);
    grcnn::cuda::cross_entropy_backward(cf(g), cf(s.prob), cf(s.q), mf(d), pr.logits.dims[0], pr.logits.dims[1]);
    return d;
  }
};

template <class P>
struct kernel<cuda_t<P>, ops::kl_div_op> {
  using Pr = ops::kl_div_problem;
  static status can_implement(const Pr& pr) { return cuda_detail::check_f32(pr.input); }
  static tensor forward(const Pr& pr, const tensor& input, const tensor& target) {
    using namespace cuda_detail;
    on_device("kl_div", "input", input), on_device("kl_div", "target", target);
    tensor loss = tensor::empty(grcnn::shape{}, dtype::f32, layout::plain, cuda_device);
    grcnn::cuda::kl_div_forward(cf(input), cf(target), mf(loss), pr.input.dims[0], pr.input.dims[1]);
    return loss;
  }
  static void backward(const Pr& pr, const tensor& dloss, const tensor& input, const tensor& target, tensor* dinput,
                       tensor* dtarget) {
    using namespace cuda_detail;
    if (dinput) *dinput = empty(pr.input);
    if (dtarget) *dtarget = empty(pr.input);
    const tensor g = dloss.to_device(cuda_device);
    grcnn::cuda::kl_div_backward(cf(g), cf(input), cf(target), dinput ? mf(*dinput) : nullptr,
                                 dtarget ? mf(*dtarget) : nullptr, pr.input.dims[0], pr.input.dims[1]);
  }
};

template <class P>
struct kernel<cuda_t<P>, ops::jensen_shannon_op> {
  using Pr = ops::jensen_shannon_problem;
  static status can_implement(const Pr& pr) { return cuda_detail::check_f32(pr.logits); }
  struct saved : autograd::payload {
    tensor grad_unit;
  };
  static tensor forward(const Pr& pr, const tensor& logits, std::unique_ptr<autograd::payload>& state) {
    using namespace cuda_detail;
    on_device("jensen_shannon", "logits", logits);
    auto s = std::make_unique<saved>();
    s->grad_unit = empty(pr.logits);
    tensor loss = tensor::empty(grcnn::shape{}, dtype::f32, layout::plain, cuda_device);
    grcnn::cuda::jensen_shannon_forward(cf(logits), pr.logits.dims[0], pr.logits.dims[1], pr.views, mf(loss),
                                        mf(s->grad_unit));
    state = std::move(s);
    return loss;
  }
  static tensor backward(const Pr& pr, autograd::payload* state, const tensor& dloss) {
    using namespace cuda_detail;
    tensor d = empty(pr.logits);
    const tensor g = dloss.to_device(cuda_device);
    grcnn::cuda::scale_by_device_scalar(cf(g), cf(static_cast<saved*>(state)->grad_unit), mf(d), d.numel());
    return d;
  }
};

template <class P>
struct kernel<cuda_t<P>, ops::group_logsumexp_op> {
  using Pr = ops::group_logsumexp_problem;
  static status can_implement(const Pr& pr) { return cuda_detail::check_f32(pr.x); }
  static tensor forward(const Pr& pr, const tensor& x, const tensor& map) {
    using namespace cuda_detail;
    on_device("group_logsumexp", "x", x), on_device("group_logsumexp", "group map", map);
    tensor y = tensor::empty(grcnn::shape{pr.x.dims[0], pr.groups}, dtype::f32, layout::plain, cuda_device);
    grcnn::cuda::group_logsumexp_forward(cf(x), map.template data<std::int64_t>(), pr.x.dims[0], pr.x.dims[1], pr.groups,
                                         mf(y));
    return y;
  }
  static tensor backward(const Pr& pr, const tensor& dy, const tensor& x, const tensor& y, const tensor& map) {
    using namespace cuda_detail;
    tensor dx = empty(pr.x);
    grcnn::cuda::group_logsumexp_backward(cf(dy.to_device(cuda_device)), cf(x), cf(y), map.template data<std::int64_t>(),
                                          pr.x.dims[0], pr.x.dims[1], pr.groups, mf(dx));
    return dx;
  }
};

template <class P>
struct kernel<cuda_t<P>, ops::sk_select_op> {
  using Pr = ops::sk_select_problem;
  static status can_implement(const Pr& pr) {
    if (pr.branches > 8) return status::no("at most 8 branches");
    return cuda_detail::check(pr.branch);
  }
  static tensor forward(const Pr& pr, const std::vector<tensor>& branches, const tensor& logits) {
    using namespace cuda_detail;
    for (const auto& b : branches) on_device("sk_select", "branch", b);
    on_device("sk_select", "logits", logits);
    tensor out = empty(pr.branch);
    with_storage(pr.branch.type, [&]<class S>() {
      std::vector<const S*> ptrs;
      for (const auto& b : branches) ptrs.push_back(cp<S>(b));
      grcnn::cuda::sk_select_forward(view_of(pr.branch), pr.branches, ptrs.data(), cp<S>(logits), mp<S>(out));
    });
    return out;
  }
  static void backward(const Pr& pr, const tensor& dout, const std::vector<tensor>& branches, const tensor& logits,
                       const std::vector<tensor*>& dbranches, tensor* dlogits) {
    using namespace cuda_detail;
    for (std::size_t m = 0; m < branches.size(); ++m)
      if (dbranches[m]) *dbranches[m] = empty(pr.branch);
    if (dlogits)  // the logits' own dtype: the branches' (checked by the op)
      *dlogits = tensor::empty(grcnn::shape{pr.branch.dims[0], pr.branches * pr.branch.dims[1]}, pr.branch.type,
                               layout::plain, cuda_device);
    with_storage(pr.branch.type, [&]<class S>() {
      std::vector<const S*> ptrs;
      std::vector<S*> dptrs;
      for (std::size_t m = 0; m < branches.size(); ++m) {
        ptrs.push_back(cp<S>(branches[m]));
        dptrs.push_back(dbranches[m] ? mp<S>(*dbranches[m]) : nullptr);
      }
      grcnn::cuda::sk_select_backward(view_of(pr.branch), pr.branches, cp<S>(dout), ptrs.data(), cp<S>(logits),
                                      dptrs.data(), dlogits ? mp<S>(*dlogits) : nullptr);
    });
  }
};

template <class P>
struct kernel<cuda_t<P>, ops::vone_response_op> {
  using Pr = ops::vone_response_problem;
  static status can_implement(const Pr& pr) { return cuda_detail::check(pr.q0); }
  static grcnn::cuda::vone_args args(const Pr& pr, const tensor& q1) {
    grcnn::cuda::vone_args a;
    a.q0 = cuda_detail::view_of(pr.q0);
    if (q1.defined()) a.q1 = cuda_detail::view_of(ops::tensor_desc::of(q1));
    a.simple = pr.simple, a.k_exc = pr.k.k_exc, a.mode = pr.k.mode, a.scale = pr.k.scale, a.level = pr.k.level;
    return a;
  }
  static tensor forward(const Pr& pr, const tensor& q0, const tensor& q1, const tensor& eps) {
    using namespace cuda_detail;
    on_device("vone_response", "q0", q0), on_device("vone_response", "q1", q1), on_device("vone_response", "eps", eps);
    tensor y = empty(pr.q0);
    with_storage(pr.q0.type, [&]<class S>() {
      grcnn::cuda::vone_response_forward(args(pr, q1), cp<S>(q0), cp<S>(q1), cp<S>(eps), mp<S>(y));
    });
    return y;
  }
  static void backward(const Pr& pr, const tensor& dy, const tensor& q0, const tensor& q1, const tensor& eps, tensor* dq0,
                       tensor* dq1) {
    using namespace cuda_detail;
    if (dq0) *dq0 = empty(pr.q0);
    const bool want_q1 = dq1 && q1.defined();
    if (want_q1) *dq1 = empty(ops::tensor_desc::of(q1));
    const tensor g = dy.to_device(cuda_device);
    with_storage(pr.q0.type, [&]<class S>() {
      grcnn::cuda::vone_response_backward(args(pr, q1), cp<S>(g), cp<S>(q0), cp<S>(q1), cp<S>(eps),
                                          dq0 ? mp<S>(*dq0) : nullptr, want_q1 ? mp<S>(*dq1) : nullptr);
    });
  }
};

// Every op of ops::op_table has a CUDA kernel (some refuse by design at run time, with the reason).
static_assert(complete<cuda>);
static_assert(complete<cuda_tf32>);

}  // namespace grcnn::backends
