#pragma once
// Convolution through oneDNN. Weights are described with format_tag::any so the primitive picks its
// blocked layout; a weight already held in that layout (see prepare_conv_weight) is used as is, a plain
// one is reordered per call (counted). Weight gradients come back in the weight's own format.
#include "grcnn/backends/onednn/context.hpp"

namespace grcnn::backends {

namespace onednn_detail {

struct conv_plan : plan_base {
  dnnl::memory::desc plain_weights;
  std::shared_ptr<const dnnl_format> weight_format;  // what forward wants
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_forward fwd;
  std::unique_ptr<dnnl::convolution_backward_data::primitive_desc> bwd_data_pd;
  dnnl::convolution_backward_data bwd_data;
  std::unique_ptr<dnnl::convolution_backward_weights::primitive_desc> bwd_weights_pd;
  dnnl::convolution_backward_weights bwd_weights;
  dnnl::memory::dims strides, dilates, pad_l, pad_r;
};

inline dnnl::memory::dims conv_weight_dims(const ops::conv2d_problem& pr) {
  const auto& w = pr.w.dims;
  if (pr.p.groups == 1) return {w[0], w[1], w[2], w[3]};
  return {pr.p.groups, w[0] / pr.p.groups, w[1], w[2], w[3]};
}

inline conv_plan& conv_plan_for(const ops::conv2d_problem& pr) {
  ops::conv2d_problem key_pr = pr;
  key_pr.w.memory_layout = layout::plain;  // the plan does not depend on how the caller holds weights
  return cached_plan<conv_plan>(key_pr.str(), [&] {
    using tag = dnnl::memory::format_tag;
    conv_plan p;
    const auto wd = conv_weight_dims(pr);
    p.plain_weights = dnnl::memory::desc(wd, dt(pr.w.type), pr.p.groups == 1 ? tag::oihw : tag::goihw);
    const dnnl::memory::desc w_any(wd, dt(pr.w.type), tag::any);
    const dnnl::memory::desc b_md = pr.bias ? dnnl::memory::desc({pr.w.dims[0]}, dt(pr.w.type), tag::a) : dnnl::memory::desc();
    p.strides = {pr.p.stride_h, pr.p.stride_w};
    p.dilates = {pr.p.dilation_h - 1, pr.p.dilation_w - 1};
    p.pad_l = {pr.p.pad_h, pr.p.pad_w};
    // Right padding that makes oneDNN's output size equal the floor formula.
    const auto kh = (pr.w.dims[2] - 1) * pr.p.dilation_h + 1, kw = (pr.w.dims[3] - 1) * pr.p.dilation_w + 1;
    p.pad_r = {(pr.y.dims[2] - 1) * pr.p.stride_h + kh - pr.x.dims[2] - pr.p.pad_h,
               (pr.y.dims[3] - 1) * pr.p.stride_w + kw - pr.x.dims[3] - pr.p.pad_w};
    const auto src = md(pr.x), dst = md(pr.y);
    dnnl::convolution_forward::desc d =
        pr.bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                                  src, w_any, b_md, dst, p.strides, p.dilates, p.pad_l, p.pad_r)
                : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                                  src, w_any, dst, p.strides, p.dilates, p.pad_l, p.pad_r);
    p.fwd_pd = dnnl::convolution_forward::primitive_desc(d, user_scratchpad(), engine());
    p.fwd = dnnl::convolution_forward(p.fwd_pd);
    p.weight_format = std::make_shared<dnnl_format>(p.fwd_pd.weights_desc(), p.plain_weights);
    return p;
  });
}

// Builds a backward primitive descriptor, first asking for the forward weight format (no per-step
// weight or gradient reorder) and keeping it only if oneDNN serves it with an optimised (non-reference)
// implementation; otherwise lets oneDNN choose (format_tag::any) and the caller reorders.
template <class PD, class MakeDesc>
std::unique_ptr<PD> backward_pd(const conv_plan& p, const ops::conv2d_problem& pr, MakeDesc&& make_desc) {
  try {
    auto pd = std::make_unique<PD>(make_desc(p.fwd_pd.weights_desc()), user_scratchpad(), engine(), p.fwd_pd);
    if (std::string(pd->impl_info_str()).find("ref") == std::string::npos) return pd;
  } catch (const dnnl::error&) {
    // this implementation set cannot take the forward format: fall through to `any`
  }
  const dnnl::memory::desc w_any(conv_weight_dims(pr), dt(pr.w.type), dnnl::memory::format_tag::any);
  return std::make_unique<PD>(make_desc(w_any), user_scratchpad(), engine(), p.fwd_pd);
}

inline void build_conv_backward(conv_plan& p, const ops::conv2d_problem& pr) {
  if (p.bwd_data_pd) return;
  using tag = dnnl::memory::format_tag;
  const auto src = md(pr.x), dst = md(pr.y);
  const auto algo = dnnl::algorithm::convolution_direct;
  p.bwd_data_pd = backward_pd<dnnl::convolution_backward_data::primitive_desc>(p, pr, [&](const dnnl::memory::desc& w) {
    return dnnl::convolution_backward_data::desc(algo, src, w, dst, p.strides, p.dilates, p.pad_l, p.pad_r);
  });
  p.bwd_data = dnnl::convolution_backward_data(*p.bwd_data_pd);
  const dnnl::memory::desc b_md = pr.bias ? dnnl::memory::desc({pr.w.dims[0]}, dt(pr.w.type), tag::a) : dnnl::memory::desc();
  p.bwd_weights_pd = backward_pd<dnnl::convolution_backward_weights::primitive_desc>(p, pr, [&](const dnnl::memory::desc& w) {
    return pr.bias ? dnnl::convolution_backward_weights::desc(algo, src, w, b_md, dst, p.strides, p.dilates, p.pad_l, p.pad_r)
                   : dnnl::convolution_backward_weights::desc(algo, src, w, dst, p.strides, p.dilates, p.pad_l, p.pad_r);
  });
  p.bwd_weights = dnnl::convolution_backward_weights(*p.bwd_weights_pd);
  stats().plans_created++;
}

inline tensor weights_in(const conv_plan& p, const tensor& w, const dnnl::memory::desc& want) {
  const auto have = md_of(w, p.plain_weights);
  if (have == want) return w;
  stats().weight_reorders++;
  auto fmt = want == p.plain_weights ? nullptr : std::make_shared<dnnl_format>(want, p.plain_weights);
  return as_format(w, have, want, fmt, w.dims());
}

}  // namespace onednn_detail

template <>
struct kernel<onednn, ops::conv2d_op> {
  using P = ops::conv2d_problem;
  using payload = onednn_detail::plan_payload<onednn_detail::conv_plan>;

  static status can_implement(const P& pr) { return onednn_detail::check_dtype(pr.x.type); }

  static tensor forward(const P& pr, const tensor& x, const tensor& w, const tensor& b,
                        std::unique_ptr<autograd::payload>& state) {
    using namespace onednn_detail;
    conv_plan& p = conv_plan_for(pr);
    const tensor wt = weights_in(p, w, p.fwd_pd.weights_desc());
    tensor y = tensor::empty(pr.y.dims, pr.y.type, pr.y.memory_layout);
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, mem(md(pr.x), x)},
                                               {DNNL_ARG_WEIGHTS, mem(p.fwd_pd.weights_desc(), wt)},
                                               {DNNL_ARG_DST, mem(md(pr.y), y)}};
    if (pr.bias) args.emplace(DNNL_ARG_BIAS, mem(b));
    execute(p.fwd, args);
    auto s = std::make_unique<payload>();
    s->plan = &p;
    s->weight_format = w.memory_layout() == layout::opaque ? w.format() : nullptr;
    state = std::move(s);
    return y;
  }

  static void backward(const P& pr, autograd::payload* state, const tensor& dy, const tensor& x, const tensor& w,
                       tensor* dx, tensor* dw, tensor* db) {
    using namespace onednn_detail;
    auto& s = *static_cast<payload*>(state);
    conv_plan& p = *s.plan;
    build_conv_backward(p, pr);
    const auto dy_mem = mem(md(pr.y), dy);
    if (dx) {
      const tensor wt = weights_in(p, w, p.bwd_data_pd->weights_desc());
      *dx = tensor::empty(pr.x.dims, pr.x.type, pr.x.memory_layout);
      execute(p.bwd_data, {{DNNL_ARG_DIFF_DST, dy_mem},
                           {DNNL_ARG_WEIGHTS, mem(p.bwd_data_pd->weights_desc(), wt)},
                           {DNNL_ARG_DIFF_SRC, mem(md(pr.x), *dx)}});
    }
    if (dw || db) {
      const auto& got = p.bwd_weights_pd->diff_weights_desc();
      tensor raw = got == p.plain_weights ? tensor::empty(pr.w.dims, pr.w.type)
                                          : tensor::empty_opaque(pr.w.dims, pr.w.type, std::make_shared<dnnl_format>(got, p.plain_weights));
      tensor bias_grad = pr.bias ? tensor::empty(grcnn::shape{pr.w.dims[0]}, pr.w.type) : tensor();
      std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, mem(md(pr.x), x)},
                                                 {DNNL_ARG_DIFF_DST, dy_mem},
                                                 {DNNL_ARG_DIFF_WEIGHTS, mem(got, raw)}};
      if (pr.bias) args.emplace(DNNL_ARG_DIFF_BIAS, mem(bias_grad));
      execute(p.bwd_weights, args);
      if (dw) {
        // The gradient must have the weight's own format so that optimizers work elementwise.
        const auto* wf = dynamic_cast<const dnnl_format*>(s.weight_format.get());
        const dnnl::memory::desc want = wf ? wf->desc() : p.plain_weights;
        if (!(want == got)) stats().grad_reorders++;
        *dw = as_format(raw, got, want, wf ? std::static_pointer_cast<const dnnl_format>(s.weight_format) : nullptr,
                        pr.w.dims);
      }
      if (db) *db = bias_grad;
    }
  }
};

inline std::shared_ptr<const opaque_format> onednn::preferred_conv_weight_format(const ops::conv2d_problem& pr) {
  return onednn_detail::conv_plan_for(pr).weight_format;
}

template <>
struct weight_layout<onednn> {
  static tensor conv(const ops::conv2d_problem& pr, const tensor& w) {
    if (!onednn_detail::check_dtype(pr.x.type)) return w;
    return w.to_format(onednn::preferred_conv_weight_format(pr));
  }
};

}  // namespace grcnn::backends
