#pragma once
// Max pooling (with its workspace carried in the payload) and average pooling, including padding in
// the divisor as PyTorch's count_include_pad=True does.
//
// NaN: oneDNN's max pooling skips NaN (PyTorch's wins its window, and the gradient goes to it) and starts
// its windows at the lowest finite float (a window of -Inf gives -3.4e38). A max pooling whose input
// holds a NaN or an infinity (one vectorised read of x decides) runs on the reference backend in double.
#include "grcnn/backends/onednn/context.hpp"

namespace grcnn::backends {

namespace onednn_detail {
struct pool_plan : plan_base {
  dnnl::pooling_v2_forward::primitive_desc fwd_pd;
  dnnl::pooling_v2_forward fwd;
  std::unique_ptr<dnnl::pooling_v2_backward::primitive_desc> bwd_pd;
  dnnl::pooling_v2_backward bwd;
};
struct pool_payload : plan_payload<pool_plan> {
  std::unique_ptr<autograd::payload> reference;  // the reference backend's state when it ran the call
};
}  // namespace onednn_detail

template <>
struct kernel<onednn, ops::pool2d_op> {
  using P = ops::pool2d_problem;
  using payload = onednn_detail::pool_payload;
  using Ref = kernel<reference<double>, ops::pool2d_op>;
  static status can_implement(const P& pr) { return onednn_detail::check_dtype(pr.x.type); }

  static dnnl::algorithm algo(const P& pr) {
    return pr.kind == ops::pool_kind::max ? dnnl::algorithm::pooling_max : dnnl::algorithm::pooling_avg_include_padding;
  }
  struct geometry {
    dnnl::memory::dims strides, kernel, dilation{0, 0}, pad_l, pad_r;
  };
  static geometry geom(const P& pr) {
    geometry g{{pr.stride_h, pr.stride_w}, {pr.kernel_h, pr.kernel_w}, {0, 0}, {pr.pad_h, pr.pad_w}, {}};
    g.pad_r = {(pr.y.dims[2] - 1) * pr.stride_h + pr.kernel_h - pr.x.dims[2] - pr.pad_h,
               (pr.y.dims[3] - 1) * pr.stride_w + pr.kernel_w - pr.x.dims[3] - pr.pad_w};
    return g;
  }

  static tensor forward(const P& pr, const tensor& x, std::unique_ptr<autograd::payload>& state) {
    using namespace onednn_detail;
    if (pr.kind == ops::pool_kind::max && has_nonfinite(x)) {
      auto s = std::make_unique<payload>();
      tensor y = Ref::forward(pr, x, s->reference);
      state = std::move(s);
      return y;
    }
    pool_plan& p = cached_plan<pool_plan>(pr.str(), [&] {
      const auto g = geom(pr);
      pool_plan q;
      q.fwd_pd = dnnl::pooling_v2_forward::primitive_desc(
          dnnl::pooling_v2_forward::desc(dnnl::prop_kind::forward_training, algo(pr), md(pr.x), md(pr.y), g.strides,
                                         g.kernel, g.dilation, g.pad_l, g.pad_r),
          user_scratchpad(), engine());
      q.fwd = dnnl::pooling_v2_forward(q.fwd_pd);
      return q;
    });
    tensor y = tensor::empty(pr.y.dims, pr.y.type, pr.y.memory_layout);
    auto s = std::make_unique<payload>();
    s->plan = &p;
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, mem(md(pr.x), x)}, {DNNL_ARG_DST, mem(md(pr.y), y)}};
    if (pr.kind == ops::pool_kind::max) {
      const auto ws_md = p.fwd_pd.workspace_desc();
      tensor ws = tensor::empty(grcnn::shape{static_cast<std::int64_t>((ws_md.get_size() + 3) / 4)}, dtype::f32);
      args.emplace(DNNL_ARG_WORKSPACE, mem(ws_md, ws));
      s->buffers = {ws};
    }
    execute(p.fwd, args);
    state = std::move(s);
    return y;
  }

  static tensor backward(const P& pr, autograd::payload* state, const tensor& dy) {
    using namespace onednn_detail;
    auto& s = *static_cast<payload*>(state);
    if (s.reference) return Ref::backward(pr, s.reference.get(), dy);
    pool_plan& p = *s.plan;
    if (!p.bwd_pd) {
      const auto g = geom(pr);
      p.bwd_pd = std::make_unique<dnnl::pooling_v2_backward::primitive_desc>(
          dnnl::pooling_v2_backward::desc(algo(pr), md(pr.x), md(pr.y), g.strides, g.kernel, g.dilation, g.pad_l,
                                          g.pad_r),
          user_scratchpad(), engine(), p.fwd_pd);
      p.bwd = dnnl::pooling_v2_backward(*p.bwd_pd);
      stats().plans_created++;
    }
    tensor dx = tensor::empty(pr.x.dims, pr.x.type, pr.x.memory_layout);
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_DIFF_DST, mem(md(pr.y), dy)}, {DNNL_ARG_DIFF_SRC, mem(md(pr.x), dx)}};
    if (pr.kind == ops::pool_kind::max) args.emplace(DNNL_ARG_WORKSPACE, mem(p.bwd_pd->workspace_desc(), s.buffers[0]));
    execute(p.bwd, args);
    return dx;
  }
};

}  // namespace grcnn::backends
