#pragma once
// Batch normalisation through oneDNN, with ReLU fused by fuse_norm_relu. oneDNN returns the biased batch
// variance; the running statistics are updated here with PyTorch's unbiased correction.
//
// NaN: oneDNN's fused ReLU maps NaN to 0 and masks its gradient there; PyTorch's ReLU keeps NaN and
// passes the gradient where its output is NaN. So a fused ReLU in evaluation runs as our own pass
// (relu(x * scale + shift) per channel, one read and one write like oneDNN's; its backward masks dy the
// PyTorch way and runs oneDNN's unfused backward), and in training, where a NaN can reach the ReLU only
// through non-finite batch statistics or parameters (checked per channel, O(C)), such a call runs on the
// reference backend in double: rare, and exact.
#include "grcnn/backends/onednn/context.hpp"
#include "grcnn/backends/onednn/vector_math.hpp"

namespace grcnn::backends {

namespace onednn_detail {
struct bn_plan : plan_base {
  dnnl::batch_normalization_forward::primitive_desc fwd_pd;
  dnnl::batch_normalization_forward fwd;
  std::unique_ptr<dnnl::batch_normalization_backward::primitive_desc> bwd_pd;
  dnnl::batch_normalization_backward bwd;
  dnnl::normalization_flags flags;
};
struct bn_payload : plan_payload<bn_plan> {
  std::unique_ptr<autograd::payload> reference;  // the reference backend's state when it ran the call
};
}  // namespace onednn_detail

template <>
struct kernel<onednn, ops::batch_norm_op> {
  using P = ops::batch_norm_problem;
  using payload = onednn_detail::bn_payload;
  using Ref = kernel<reference<double>, ops::batch_norm_op>;

  static status can_implement(const P& pr) {
    if (pr.param_type != dtype::f32) return status::no("oneDNN batch norm keeps its parameters in f32");
    return onednn_detail::check_dtype(pr.x.type);
  }

  // given_statistics: a training forward that normalises with statistics handed to it (the second BN
  // of a pair, ops::paired_batch_norm), its workspace (the ReLU mask) the one a training backward reads.
  static onednn_detail::bn_plan& plan(const P& pr, bool given_statistics = false) {
    using namespace onednn_detail;
    return cached_plan<bn_plan>(given_statistics ? pr.str() + " with given statistics" : pr.str(), [&] {
      bn_plan p;
      using F = dnnl::normalization_flags;
      p.flags = F::use_scale | F::use_shift;
      if (!pr.training || given_statistics) p.flags = p.flags | F::use_global_stats;
      if (pr.fuse_relu) p.flags = p.flags | F::fuse_norm_relu;
      p.fwd_pd = dnnl::batch_normalization_forward::primitive_desc(
          dnnl::batch_normalization_forward::desc(dnnl::prop_kind::forward_training, md(pr.x), static_cast<float>(pr.eps),
                                                  p.flags),
          user_scratchpad(), engine());
      p.fwd = dnnl::batch_normalization_forward(p.fwd_pd);
      return p;
    });
  }
  // Runs a plan's forward primitive from x into y with these parameters and statistics (written in
  // training, read with use_global_stats); returns the workspace (the fused ReLU's mask; empty without).
  static tensor run_forward(const onednn_detail::bn_plan& p, const P& pr, const tensor& x, tensor& y, const tensor& gamma,
                            const tensor& beta, const tensor& mean, const tensor& var) {
    using namespace onednn_detail;
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, mem(md(pr.x), x)}, {DNNL_ARG_DST, mem(md(pr.x), y)},
                                               {DNNL_ARG_SCALE, mem(gamma)},     {DNNL_ARG_SHIFT, mem(beta)},
                                               {DNNL_ARG_MEAN, mem(mean)},       {DNNL_ARG_VARIANCE, mem(var)}};
    tensor ws;
    if (pr.fuse_relu) {
      const auto ws_md = p.fwd_pd.workspace_desc();
      ws = tensor::empty(grcnn::shape{static_cast<std::int64_t>((ws_md.get_size() + 3) / 4)}, dtype::f32);
      args.emplace(DNNL_ARG_WORKSPACE, mem(ws_md, ws));
    }
    execute(p.fwd, args);
    return ws;
  }
  // The problem without the fused ReLU (evaluation runs its ReLU itself).
  static P unfused(const P& pr) {
    P q = pr;
    q.fuse_relu = false;
    return q;
  }
  // Our evaluation pass applies the ReLU; oneDNN's fused one would drop NaN.
  static bool own_eval_relu(const P& pr) { return pr.fuse_relu && !pr.training; }

  static tensor forward(const P& pr, const tensor& x, const tensor& gamma, const tensor& beta, tensor& running_mean,
                        tensor& running_var, std::unique_ptr<autograd::payload>& state) {
    onednn_detail::host_only("batch_norm", {&x, &gamma, &beta, &running_mean, &running_var});
    using namespace onednn_detail;
    if (own_eval_relu(pr)) return eval_relu_forward(pr, x, gamma, beta, running_mean, running_var, state);
    bn_plan& p = plan(pr);
    const auto C = pr.x.dims[1];
    tensor y = tensor::empty(pr.x.dims, pr.x.type, pr.x.memory_layout);
    auto s = std::make_unique<payload>();
    s->plan = &p;
    // Eval mode keeps copies: a later training forward updates the running statistics in place.
    tensor mean = pr.training ? tensor::empty(grcnn::shape{C}) : running_mean.clone();
    tensor var = pr.training ? tensor::empty(grcnn::shape{C}) : running_var.clone();
    tensor ws = run_forward(p, pr, x, y, gamma, beta, mean, var);
    if (pr.training) {
      // A NaN or infinity anywhere in a channel makes its batch statistics non-finite; with those or
      // non-finite parameters the fused ReLU may meet NaN: the reference computes this call instead.
      if (pr.fuse_relu && (has_nonfinite(mean) || has_nonfinite(var) || has_nonfinite(gamma) || has_nonfinite(beta))) {
        y = Ref::forward(pr, x, gamma, beta, running_mean, running_var, s->reference);
        state = std::move(s);
        return y;
      }
      update_running(pr, mean, var, running_mean, running_var);
    }
    s->buffers = {mean, var, ws, beta};  // oneDNN's backward takes the shift argument too (unused in the math)
    state = std::move(s);
    return y;
  }

  // PyTorch's running statistics from a batch's mean and biased variance (unbiased with the count).
  static void update_running(const P& pr, const tensor& mean, const tensor& var, tensor& running_mean, tensor& running_var) {
    const auto C = pr.x.dims[1];
    const float m = static_cast<float>(pr.momentum);
    const double M = static_cast<double>(pr.x.dims.numel() / C);
    const float unbias = static_cast<float>(M > 1 ? M / (M - 1) : 1.0);
    float *rm = running_mean.data<float>(), *rv = running_var.data<float>();
    const float *bm = mean.data<float>(), *bv = var.data<float>();
    for (std::int64_t c = 0; c < C; ++c) {
      rm[c] = (1.0f - m) * rm[c] + m * bm[c];
      rv[c] = (1.0f - m) * rv[c] + m * bv[c] * unbias;
    }
  }

  // Evaluation with the ReLU: y = relu(x * scale + shift) with scale = gamma / sqrt(var + eps) and shift =
  // beta - mean * scale per channel (PyTorch's inference arithmetic), NaN kept.
  static tensor eval_relu_forward(const P& pr, const tensor& x, const tensor& gamma, const tensor& beta,
                                  const tensor& running_mean, const tensor& running_var,
                                  std::unique_ptr<autograd::payload>& state) {
    using namespace onednn_detail;
    const auto C = pr.x.dims[1];
    std::vector<float> scale(static_cast<std::size_t>(C)), shift(static_cast<std::size_t>(C));
    const float *g = gamma.data<float>(), *b = beta.data<float>(), *rm = running_mean.data<float>(),
                *rv = running_var.data<float>();
    for (std::int64_t c = 0; c < C; ++c) {
      const float k = g[c] / std::sqrt(rv[c] + static_cast<float>(pr.eps));
      scale[static_cast<std::size_t>(c)] = k;
      shift[static_cast<std::size_t>(c)] = b[c] - rm[c] * k;
    }
    tensor y = tensor::empty(pr.x.dims, pr.x.type, pr.x.memory_layout);
    if (pr.x.type == dtype::f32) affine_relu<float>(pr, x, scale, shift, y);
    else affine_relu<bf16>(pr, x, scale, shift, y);
    auto s = std::make_unique<payload>();
    s->plan = &plan(unfused(pr));  // the backward is oneDNN's unfused one on the masked gradient
    s->buffers = {running_mean.clone(), running_var.clone(), tensor(), beta};
    state = std::move(s);
    return y;
  }
  template <class T>
  static void affine_relu(const P& pr, const tensor& x, const std::vector<float>& scale, const std::vector<float>& shift,
                          tensor& y) {
    using namespace onednn_detail;
    const auto C = pr.x.dims[1], HW = pr.x.dims.rank() == 4 ? pr.x.dims[2] * pr.x.dims[3] : 1;
    const T* __restrict xv = static_cast<const T*>(x.raw());
    T* __restrict yv = static_cast<T*>(y.raw());
    const float* __restrict k = scale.data();
    const float* __restrict h = shift.data();
    const bool channels_last = pr.x.memory_layout == layout::nhwc || HW == 1;
    // Rows of C channels (channels-last or [N, C]), or planes of HW pixels of one channel (NCHW).
    const std::int64_t rows = channels_last ? x.numel() / C : x.numel() / HW, len = channels_last ? C : HW;
    const std::int64_t per_chunk = std::max<std::int64_t>(1, (1 << 14) / std::max<std::int64_t>(len, 1));
    vectorised_chunks(rows, per_chunk, 0, [&](std::int64_t lo, std::int64_t hi) GRCNN_VECTOR_BODY {
      for (std::int64_t r = lo; r < hi; ++r) {
        const T* xr = xv + r * len;
        T* yr = yv + r * len;
        if (channels_last) {
          for (std::int64_t c = 0; c < len; ++c) {
            const float v = to_f32(xr[c]) * k[c] + h[c];
            yr[c] = from_f32<T>(select(v <= 0.f, 0.f, v));
          }
        } else {
          const float kc = k[r % C], hc = h[r % C];
          for (std::int64_t i = 0; i < len; ++i) {
            const float v = to_f32(xr[i]) * kc + hc;
            yr[i] = from_f32<T>(select(v <= 0.f, 0.f, v));
          }
        }
      }
    });
  }

  static void backward(const P& pr, autograd::payload* state, const tensor& dy, const tensor& x, const tensor& y,
                       const tensor& gamma, tensor* dx, tensor* dgamma, tensor* dbeta) {
    using namespace onednn_detail;
    auto& s = *static_cast<payload*>(state);
    if (s.reference) return Ref::backward(pr, s.reference.get(), dy, x, y, gamma, dx, dgamma, dbeta);
    if (own_eval_relu(pr)) return run_backward(unfused(pr), s, relu_masked(pr, dy, y), x, gamma, dx, dgamma, dbeta);
    run_backward(pr, s, dy, x, gamma, dx, dgamma, dbeta);
  }
  // PyTorch's ReLU gradient: dy where y > 0 or y is NaN, else 0.
  static tensor relu_masked(const P& pr, const tensor& dy, const tensor& y) {
    using namespace onednn_detail;
    tensor g = tensor::empty(pr.x.dims, pr.x.type, pr.x.memory_layout);
    const std::int64_t n = g.numel();
    auto run = [&]<class T>() {
      const T* __restrict d = static_cast<const T*>(dy.raw());
      const T* __restrict yv = static_cast<const T*>(y.raw());
      T* __restrict o = static_cast<T*>(g.raw());
      vectorised_chunks(n, 1 << 14, 0, [&](std::int64_t lo, std::int64_t hi) GRCNN_VECTOR_BODY {
        for (std::int64_t i = lo; i < hi; ++i) o[i] = from_f32<T>(select(to_f32(yv[i]) <= 0.f, 0.f, to_f32(d[i])));
      });
    };
    if (pr.x.type == dtype::f32) run.template operator()<float>();
    else run.template operator()<bf16>();
    return g;
  }

  static void run_backward(const P& pr, payload& s, const tensor& dy, const tensor& x, const tensor& gamma, tensor* dx,
                           tensor* dgamma, tensor* dbeta) {
    using namespace onednn_detail;
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

// Two batch norms of one input in training (ops::paired_batch_norm): the first runs oneDNN's training
// forward, which computes the batch statistics; the second normalises with those (use_global_stats: no
// statistics pass, the same output its own training forward gives) and both running statistics take
// them. oneDNN's backward primitive computes one BN's reductions and dx inside itself, so the backward
// runs it per BN with the shared statistics (the full training gradient) and adds the two dx.
template <>
struct kernel<onednn, ops::paired_batch_norm_op> {
  using P = ops::batch_norm_problem;
  using single = kernel<onednn, ops::batch_norm_op>;
  struct payload : autograd::payload {
    std::unique_ptr<autograd::payload> first, second;
  };

  static status can_implement(const P& pr) {
    if (!pr.training) return status::no("paired batch norm is a training kernel (evaluation uses each BN's own running statistics)");
    return single::can_implement(pr);
  }

  static std::array<tensor, 2> forward(const P& pr, const tensor& x, const tensor& ga, const tensor& ba, const tensor& gb,
                                       const tensor& bb, tensor& rma, tensor& rva, tensor& rmb, tensor& rvb,
                                       std::unique_ptr<autograd::payload>& state) {
    using namespace onednn_detail;
    host_only("paired_batch_norm", {&x, &ga, &ba, &gb, &bb, &rma, &rva, &rmb, &rvb});
    auto s = std::make_unique<payload>();
    std::array<tensor, 2> y;
    y[0] = single::forward(pr, x, ga, ba, rma, rva, s->first);
    const auto& first = *static_cast<const bn_payload*>(s->first.get());
    bn_plan& given = single::plan(pr, true);
    const bool same_workspace = !pr.fuse_relu || given.fwd_pd.workspace_desc() == first.plan->fwd_pd.workspace_desc();
    // Where the first ran on the reference (non-finite statistics) or b's parameters are non-finite, the
    // second is its own plain batch norm too.
    if (first.reference || !same_workspace || has_nonfinite(gb) || has_nonfinite(bb)) {
      y[1] = single::forward(pr, x, gb, bb, rmb, rvb, s->second);
      state = std::move(s);
      return y;
    }
    const tensor& mean = first.buffers[0];
    const tensor& var = first.buffers[1];
    y[1] = tensor::empty(pr.x.dims, pr.x.type, pr.x.memory_layout);
    tensor ws = single::run_forward(given, pr, x, y[1], gb, bb, mean, var);
    single::update_running(pr, mean, var, rmb, rvb);
    auto second = std::make_unique<bn_payload>();
    second->plan = first.plan;  // the training plan: its backward is the full training gradient
    second->buffers = {mean, var, ws, bb};
    s->second = std::move(second);
    state = std::move(s);
    return y;
  }

  static void backward(const P& pr, autograd::payload* state, const tensor& dya, const tensor& dyb, const tensor& x,
                       const tensor& ya, const tensor& yb, const tensor& ga, const tensor& gb, tensor* dx, tensor* dga,
                       tensor* dba, tensor* dgb, tensor* dbb) {
    auto& s = *static_cast<payload*>(state);
    tensor dxa, dxb;
    const auto one = [&](autograd::payload* st, const tensor& dy, const tensor& y, const tensor& g, tensor& dxk, tensor* dg,
                         tensor* db) {
      if (!dy.defined()) {  // an output nothing used: no gradient from it
        if (dg) *dg = tensor::zeros(grcnn::shape{pr.x.dims[1]});
        if (db) *db = tensor::zeros(grcnn::shape{pr.x.dims[1]});
        return;
      }
      single::backward(pr, st, dy, x, y, g, dx ? &dxk : nullptr, dg, db);
    };
    one(s.first.get(), dya, ya, ga, dxa, dga, dba);
    one(s.second.get(), dyb, yb, gb, dxb, dgb, dbb);
    if (!dx) return;
    if (dxa.defined() && dxb.defined()) add_inplace(dxa, dxb);
    *dx = dxa.defined() ? dxa : dxb;
  }
};

}  // namespace grcnn::backends
