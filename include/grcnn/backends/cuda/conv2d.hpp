#pragma once
// Convolution through cuDNN (src/cuda/conv.cu, cudnn_graph.cu): the filter is used in the activations'
// order, the math mode (fp32 / tf32) comes from the policy, bf16 data run on tensor cores.
#include "grcnn/backends/cuda/context.hpp"

namespace grcnn::backends {

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

}  // namespace grcnn::backends
