#pragma once
// The readout layer through oneDNN's inner product (weights kept plain [M, K], as PyTorch stores them).
#include "grcnn/backends/onednn/context.hpp"

namespace grcnn::backends {

namespace onednn_detail {
struct linear_plan : plan_base {
  dnnl::inner_product_forward::primitive_desc fwd_pd;
  dnnl::inner_product_forward fwd;
  dnnl::inner_product_backward_data bwd_data;
  dnnl::inner_product_backward_weights bwd_weights;
};
}  // namespace onednn_detail

template <>
struct kernel<onednn, ops::linear_op> {
  using P = ops::linear_problem;
  using payload = onednn_detail::plan_payload<onednn_detail::linear_plan>;
  static status can_implement(const P& pr) {
    if (pr.w.memory_layout != layout::plain) return status::no("linear weights must be plain [M, K]");
    return onednn_detail::check_dtype(pr.x.type);
  }

  static onednn_detail::linear_plan& plan(const P& pr) {
    using namespace onednn_detail;
    return cached_plan<linear_plan>(pr.str(), [&] {
      linear_plan p;
      const auto x = md(pr.x), w = md(pr.w);
      const auto y = md(grcnn::shape{pr.x.dims[0], pr.w.dims[0]}, pr.x.type, layout::plain);
      const auto b = md(grcnn::shape{pr.w.dims[0]}, pr.w.type, layout::plain);
      const auto fd = pr.bias ? dnnl::inner_product_forward::desc(dnnl::prop_kind::forward_training, x, w, b, y)
                              : dnnl::inner_product_forward::desc(dnnl::prop_kind::forward_training, x, w, y);
      p.fwd_pd = dnnl::inner_product_forward::primitive_desc(fd, user_scratchpad(), engine());
      p.fwd = dnnl::inner_product_forward(p.fwd_pd);
      p.bwd_data = dnnl::inner_product_backward_data(dnnl::inner_product_backward_data::primitive_desc(
          dnnl::inner_product_backward_data::desc(x, w, y), user_scratchpad(), engine(), p.fwd_pd));
      const auto wd = pr.bias ? dnnl::inner_product_backward_weights::desc(x, w, b, y)
                              : dnnl::inner_product_backward_weights::desc(x, w, y);
      p.bwd_weights = dnnl::inner_product_backward_weights(
          dnnl::inner_product_backward_weights::primitive_desc(wd, user_scratchpad(), engine(), p.fwd_pd));
      return p;
    });
  }

  static tensor forward(const P& pr, const tensor& x, const tensor& w, const tensor& b,
                        std::unique_ptr<autograd::payload>& state) {
    using namespace onednn_detail;
    linear_plan& p = plan(pr);
    tensor y = tensor::empty(grcnn::shape{pr.x.dims[0], pr.w.dims[0]}, pr.x.type);
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, mem(x)}, {DNNL_ARG_WEIGHTS, mem(w)}, {DNNL_ARG_DST, mem(y)}};
    if (pr.bias) args.emplace(DNNL_ARG_BIAS, mem(b));
    execute(p.fwd, args);
    auto s = std::make_unique<payload>();
    s->plan = &p;
    state = std::move(s);
    return y;
  }

  static void backward(const P& pr, autograd::payload* state, const tensor& dy, const tensor& x, const tensor& w,
                       tensor* dx, tensor* dw, tensor* db) {
    using namespace onednn_detail;
    linear_plan& p = *static_cast<payload*>(state)->plan;
    const tensor g = dy.to_layout(layout::plain);
    if (dx) {
      *dx = tensor::empty(pr.x.dims, pr.x.type);
      execute(p.bwd_data, {{DNNL_ARG_DIFF_DST, mem(g)}, {DNNL_ARG_WEIGHTS, mem(w)}, {DNNL_ARG_DIFF_SRC, mem(*dx)}});
    }
    if (dw || db) {
      tensor wg = tensor::empty(pr.w.dims, pr.w.type);
      tensor bg = pr.bias ? tensor::empty(grcnn::shape{pr.w.dims[0]}, pr.w.type) : tensor();
      std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, mem(x)}, {DNNL_ARG_DIFF_DST, mem(g)}, {DNNL_ARG_DIFF_WEIGHTS, mem(wg)}};
      if (pr.bias) args.emplace(DNNL_ARG_DIFF_BIAS, mem(bg));
      execute(p.bwd_weights, args);
      if (dw) *dw = wg;
      if (db) *db = bg;
    }
  }
};

}  // namespace grcnn::backends
