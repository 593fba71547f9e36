#pragma once
// Batch normalisation through oneDNN, with ReLU fused by fuse_norm_relu. oneDNN returns the biased batch
// variance; the running statistics are updated here with PyTorch's unbiased correction.
#include "grcnn/backends/onednn/context.hpp"

namespace grcnn::backends {

namespace onednn_detail {
struct bn_plan : plan_base {
  dnnl::batch_normalization_forward::primitive_desc fwd_pd;
  dnnl::batch_normalization_forward fwd;
  std::unique_ptr<dnnl::batch_normalization_backward::primitive_desc> bwd_pd;
  dnnl::batch_normalization_backward bwd;
  dnnl::normalization_flags flags;
};
}  // namespace onednn_detail

template <>
struct kernel<onednn, ops::batch_norm_op> {
  using P = ops::batch_norm_problem;
  using payload = onednn_detail::plan_payload<onednn_detail::bn_plan>;

  static status can_implement(const P& pr) {
    if (pr.param_type != dtype::f32) return status::no("oneDNN batch norm keeps its parameters in f32");
    return onednn_detail::check_dtype(pr.x.type);
  }

  static onednn_detail::bn_plan& plan(const P& pr) {
    using namespace onednn_detail;
    return cached_plan<bn_plan>(pr.str(), [&] {
      bn_plan p;
      using F = dnnl::normalization_flags;
      p.flags = F::use_scale | F::use_shift;
      if (!pr.training) p.flags = p.flags | F::use_global_stats;
      if (pr.fuse_relu) p.flags = p.flags | F::fuse_norm_relu;
      p.fwd_pd = dnnl::batch_normalization_forward::primitive_desc(
          dnnl::batch_normalization_forward::desc(dnnl::prop_kind::forward_training, md(pr.x), static_cast<float>(pr.eps),
                                                  p.flags),
          user_scratchpad(), engine());
      p.fwd = dnnl::batch_normalization_forward(p.fwd_pd);
      return p;
    });
  }

  static tensor forward(const P& pr, const tensor& x, const tensor& gamma, const tensor& beta, tensor& running_mean,
                        tensor& running_var, std::unique_ptr<autograd::payload>& state) {
    onednn_detail::host_only("batch_norm", {&x, &gamma, &beta, &running_mean, &running_var});
    using namespace onednn_detail;
    bn_plan& p = plan(pr);
    const auto C = pr.x.dims[1];
    tensor y = tensor::empty(pr.x.dims, pr.x.type, pr.x.memory_layout);
    auto s = std::make_unique<payload>();
    s->plan = &p;
    // Eval mode keeps copies: a later training forward updates the running statistics in place.
    tensor mean = pr.training ? tensor::empty(grcnn::shape{C}) : running_mean.clone();
    tensor var = pr.training ? tensor::empty(grcnn::shape{C}) : running_var.clone();
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, mem(md(pr.x), x)},     {DNNL_ARG_DST, mem(md(pr.x), y)},
                                               {DNNL_ARG_SCALE, mem(gamma)},         {DNNL_ARG_SHIFT, mem(beta)},
                                               {DNNL_ARG_MEAN, mem(mean)},           {DNNL_ARG_VARIANCE, mem(var)}};
    tensor ws;
    if (pr.fuse_relu) {
      const auto ws_md = p.fwd_pd.workspace_desc();
      ws = tensor::empty(grcnn::shape{static_cast<std::int64_t>((ws_md.get_size() + 3) / 4)}, dtype::f32);
      args.emplace(DNNL_ARG_WORKSPACE, mem(ws_md, ws));
    }
    execute(p.fwd, args);
    if (pr.training) {
      const float m = static_cast<float>(pr.momentum);
      const double M = static_cast<double>(x.numel() / C);
      const float unbias = static_cast<float>(M > 1 ? M / (M - 1) : 1.0);
      float *rm = running_mean.data<float>(), *rv = running_var.data<float>();
      const float *bm = mean.data<float>(), *bv = var.data<float>();
      for (std::int64_t c = 0; c < C; ++c) {
        rm[c] = (1.0f - m) * rm[c] + m * bm[c];
        rv[c] = (1.0f - m) * rv[c] + m * bv[c] * unbias;
      }
    }
    s->buffers = {mean, var, ws, beta};  // oneDNN's backward takes the shift argument too (unused in the math)
    state = std::move(s);
    return y;
  }

  static void backward(const P& pr, autograd::payload* state, const tensor& dy, const tensor& x, const tensor&,
                       const tensor& gamma, tensor* dx, tensor* dgamma, tensor* dbeta) {
    using namespace onednn_detail;
    auto& s = *static_cast<payload*>(state);
    bn_plan& p = *s.plan;
    if (!p.bwd_pd) {
      p.bwd_pd = std::make_unique<dnnl::batch_normalization_backward::primitive_desc>(
          dnnl::batch_normalization_backward::desc(dnnl::prop_kind::backward, md(pr.x), md(pr.x),
                                                   static_cast<float>(pr.eps), p.flags),
          user_scratchpad(), engine(), p.fwd_pd);
      p.bwd = dnnl::batch_normalization_backward(*p.bwd_pd);
      stats().plans_created++;
    }
    const auto C = pr.x.dims[1];
    tensor dxt = tensor::empty(pr.x.dims, pr.x.type, pr.x.memory_layout);
    tensor dg = tensor::empty(grcnn::shape{C}), dbt = tensor::empty(grcnn::shape{C});
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, mem(md(pr.x), x)},
                                               {DNNL_ARG_DIFF_DST, mem(md(pr.x), dy)},
                                               {DNNL_ARG_MEAN, mem(s.buffers[0])},
                                               {DNNL_ARG_VARIANCE, mem(s.buffers[1])},
                                               {DNNL_ARG_SCALE, mem(gamma)},
                                               {DNNL_ARG_SHIFT, mem(s.buffers[3])},
                                               {DNNL_ARG_DIFF_SRC, mem(md(pr.x), dxt)},
                                               {DNNL_ARG_DIFF_SCALE, mem(dg)},
                                               {DNNL_ARG_DIFF_SHIFT, mem(dbt)}};
    if (pr.fuse_relu) args.emplace(DNNL_ARG_WORKSPACE, mem(p.bwd_pd->workspace_desc(), s.buffers[2]));
    execute(p.bwd, args);
    if (dx) *dx = dxt;
    if (dgamma) *dgamma = dg;
    if (dbeta) *dbeta = dbt;
  }
};

}  // namespace grcnn::backends
