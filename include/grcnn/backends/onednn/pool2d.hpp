#pragma once
// Max pooling (with its workspace carried in the payload) and average pooling, including padding in
// the divisor as PyTorch's count_include_pad=True does.
//
// A global average (one output pixel whose window is the whole unpadded map: SKConv's pooling over up to
// 56 x 56 pixels) is our own pass summing in double: oneDNN's average sums in f32 in sequence, which left
// skgrcnn55's logits 5x further from float64 than PyTorch's pairwise f32 mean.
//
// NaN: oneDNN's max pooling skips NaN (PyTorch's wins its window, and the gradient goes to it) and starts
// its windows at the lowest finite float (a window of -Inf gives -3.4e38). A max pooling whose input
// holds a NaN or an infinity (one vectorised read of x decides) runs on the reference backend in double.
#include <vector>

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
  bool global_average = false;                   // our own pass ran (no plan)
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

  static bool is_global_average(const P& pr) {
    return pr.kind == ops::pool_kind::avg && pr.y.dims[2] == 1 && pr.y.dims[3] == 1 && pr.kernel_h == pr.x.dims[2] &&
           pr.kernel_w == pr.x.dims[3] && pr.pad_h == 0 && pr.pad_w == 0 &&
           (pr.x.memory_layout == layout::plain || pr.x.memory_layout == layout::nhwc);
  }
  // y[n, c] = the mean of x[n, c, :, :], summed in double (four partial sums over a plane; a sample's
  // channels side by side in channels-last). y [N, C, 1, 1] has one memory order in both layouts.
  template <class T>
  static void global_average(const P& pr, const T* x, T* y) {
    const auto N = pr.x.dims[0], C = pr.x.dims[1], HW = pr.x.dims[2] * pr.x.dims[3];
    const double inv = 1.0 / static_cast<double>(HW);
    if (pr.x.memory_layout == layout::nhwc) {
      onednn_detail::parallel_for(N, [&](std::int64_t n) {
        std::vector<double> sum(static_cast<std::size_t>(C), 0.0);
        for (std::int64_t p = 0; p < HW; ++p) {
          const T* row = x + (n * HW + p) * C;
          for (std::int64_t c = 0; c < C; ++c) sum[static_cast<std::size_t>(c)] += onednn_detail::to_f32(row[c]);
        }
        for (std::int64_t c = 0; c < C; ++c)
          y[n * C + c] = onednn_detail::from_f32<T>(static_cast<float>(sum[static_cast<std::size_t>(c)] * inv));
      });
      return;
    }
    onednn_detail::parallel_for(N * C, [&](std::int64_t plane) {
      const T* p = x + plane * HW;
      double s[4] = {0, 0, 0, 0};
      std::int64_t i = 0;
      for (; i + 4 <= HW; i += 4)
        for (int k = 0; k < 4; ++k) s[k] += onednn_detail::to_f32(p[i + k]);
      for (; i < HW; ++i) s[0] += onednn_detail::to_f32(p[i]);
      y[plane] = onednn_detail::from_f32<T>(static_cast<float>(((s[0] + s[1]) + (s[2] + s[3])) * inv));
    });
  }
  // dx[n, c, h, w] = dy[n, c] / (H W), as PyTorch's mean backward.
  template <class T>
  static void global_average_backward(const P& pr, const T* dy, T* dx) {
    const auto N = pr.x.dims[0], C = pr.x.dims[1], HW = pr.x.dims[2] * pr.x.dims[3];
    const float d = static_cast<float>(HW);
    const bool nhwc = pr.x.memory_layout == layout::nhwc;
    onednn_detail::parallel_for(N, [&](std::int64_t n) {
      for (std::int64_t c = 0; c < C; ++c) {
        const T g = onednn_detail::from_f32<T>(onednn_detail::to_f32(dy[n * C + c]) / d);
        for (std::int64_t p = 0; p < HW; ++p) dx[nhwc ? (n * HW + p) * C + c : (n * C + c) * HW + p] = g;
      }
    });
  }
  template <class F>
  static void with_type(dtype t, F&& f) {
    if (t == dtype::bf16)
      f.template operator()<bf16>();
    else
      f.template operator()<float>();
  }

  static tensor forward(const P& pr, const tensor& x, std::unique_ptr<autograd::payload>& state) {
    using namespace onednn_detail;
    if (is_global_average(pr)) {
      host_only("global average pool", {&x});
      tensor y = tensor::empty(pr.y.dims, pr.y.type, pr.y.memory_layout);
      with_type(pr.x.type, [&]<class T>() { global_average<T>(pr, static_cast<const T*>(x.raw()), static_cast<T*>(y.raw())); });
      auto s = std::make_unique<payload>();
      s->global_average = true;
      state = std::move(s);
      return y;
    }
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
    if (s.global_average) {
      tensor dx = tensor::empty(pr.x.dims, pr.x.type, pr.x.memory_layout);
      const tensor g = dy.memory_layout() == layout::plain || dy.memory_layout() == layout::nhwc ? dy : dy.to_layout(layout::plain);
      with_type(pr.x.type, [&]<class T>() {
        global_average_backward<T>(pr, static_cast<const T*>(g.raw()), static_cast<T*>(dx.raw()));
      });
      return dx;
    }
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
