#pragma once
// ReLU (our own vectorised pass: oneDNN's maps NaN to 0 and masks its gradient there, PyTorch keeps NaN
// and passes the gradient), sigmoid (eltwise primitive, differentiated through its output), add and mul
// (binary primitive), and the GRCL gate x + sigmoid(a + b) * y as one binary primitive with post-ops
// (logistic, mul y, add x). The gate's backward is our own single pass over memory that recomputes the
// sigmoid (vector_math.hpp). Casts between f32 and bf16 are reorders.
#include "grcnn/backends/onednn/context.hpp"
#include "grcnn/backends/onednn/vector_math.hpp"
#include "grcnn/core/cpu_dispatch.hpp"

namespace grcnn::backends {

namespace onednn_detail {
struct eltwise_plan : plan_base {
  dnnl::eltwise_forward::primitive_desc fwd_pd;
  dnnl::eltwise_forward fwd;
  dnnl::eltwise_backward bwd;
};
struct binary_plan : plan_base {
  dnnl::binary fwd;
};
struct cast_plan : plan_base {
  dnnl::reorder fwd, bwd;  // x -> target dtype, and the gradient back
};
}  // namespace onednn_detail

template <>
struct kernel<onednn, ops::eltwise_op> {
  using P = ops::eltwise_problem;
  static status can_implement(const P& pr) { return onednn_detail::check_dtype(pr.x.type); }

  static onednn_detail::eltwise_plan& plan(const P& pr) {
    using namespace onednn_detail;
    return cached_plan<eltwise_plan>(pr.str(), [&] {
      const auto algo = pr.kind == ops::eltwise_kind::relu ? dnnl::algorithm::eltwise_relu_use_dst_for_bwd
                                                           : dnnl::algorithm::eltwise_logistic_use_dst_for_bwd;
      eltwise_plan p;
      const auto d = md(pr.x);
      p.fwd_pd = dnnl::eltwise_forward::primitive_desc(
          dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training, algo, d, 0.f, 0.f), user_scratchpad(), engine());
      p.fwd = dnnl::eltwise_forward(p.fwd_pd);
      p.bwd = dnnl::eltwise_backward(dnnl::eltwise_backward::primitive_desc(
          dnnl::eltwise_backward::desc(algo, d, d, 0.f, 0.f), user_scratchpad(), engine(), p.fwd_pd));
      return p;
    });
  }
  static tensor forward(const P& pr, const tensor& x) {
    using namespace onednn_detail;
    tensor y = tensor::empty(pr.x.dims, pr.x.type, pr.x.memory_layout);
    if (pr.kind == ops::eltwise_kind::relu) {
      host_only("relu", {&x});
      relu_map(pr, {&x}, y);
      return y;
    }
    execute(plan(pr).fwd, {{DNNL_ARG_SRC, mem(md(pr.x), x)}, {DNNL_ARG_DST, mem(md(pr.x), y)}});
    return y;
  }
  static tensor backward(const P& pr, const tensor& dy, const tensor& y) {
    using namespace onednn_detail;
    tensor dx = tensor::empty(pr.x.dims, pr.x.type, pr.x.memory_layout);
    if (pr.kind == ops::eltwise_kind::relu) {
      host_only("relu backward", {&dy, &y});
      relu_map(pr, {&dy, &y}, dx);
      return dx;
    }
    execute(plan(pr).bwd, {{DNNL_ARG_DST, mem(md(pr.x), y)},
                           {DNNL_ARG_DIFF_DST, mem(md(pr.x), dy)},
                           {DNNL_ARG_DIFF_SRC, mem(md(pr.x), dx)}});
    return dx;
  }
  // PyTorch's ReLU over memory order: forward (one input x) y = x <= 0 ? 0 : x, NaN kept; backward (dy, y)
  // dx = y <= 0 ? 0 : dy, so the gradient passes where y is NaN.
  static void relu_map(const P& pr, std::initializer_list<const tensor*> in, tensor& out) {
    using namespace onednn_detail;
    const std::int64_t n = out.numel();
    const bool fwd = in.size() == 1;
    auto run = [&]<class T>() {
      const T* __restrict a = static_cast<const T*>((*in.begin())->raw());
      const T* __restrict yv = fwd ? a : static_cast<const T*>((*(in.begin() + 1))->raw());
      T* __restrict o = static_cast<T*>(out.raw());
      vectorised_chunks(n, 1 << 14, 0, [&](std::int64_t lo, std::int64_t hi) GRCNN_VECTOR_BODY {
        if (fwd)
          for (std::int64_t i = lo; i < hi; ++i) o[i] = from_f32<T>(select(to_f32(a[i]) <= 0.f, 0.f, to_f32(a[i])));
        else
          for (std::int64_t i = lo; i < hi; ++i) o[i] = from_f32<T>(select(to_f32(yv[i]) <= 0.f, 0.f, to_f32(a[i])));
      });
    };
    if (pr.x.type == dtype::f32) run.template operator()<float>();
    else if (pr.x.type == dtype::bf16) run.template operator()<bf16>();
    else throw backend_error("onednn relu: unsupported dtype " + std::string(name_of(pr.x.type)));
  }
};

template <>
struct kernel<onednn, ops::binary_op> {
  using P = ops::binary_problem;
  static status can_implement(const P& pr) { return onednn_detail::check_dtype(pr.a.type); }

  static dnnl::binary& prim(const ops::tensor_desc& d, dnnl::algorithm algo) {
    using namespace onednn_detail;
    return cached_plan<binary_plan>("binary" + std::to_string(static_cast<int>(algo)) + d.str(), [&] {
      const auto m = md(d);
      binary_plan p;
      p.fwd = dnnl::binary(dnnl::binary::primitive_desc(dnnl::binary::desc(algo, m, m, m), user_scratchpad(), engine()));
      return p;
    }).fwd;
  }
  static tensor run(const ops::tensor_desc& d, dnnl::algorithm algo, const tensor& a, const tensor& b) {
    using namespace onednn_detail;
    tensor y = tensor::empty(d.dims, d.type, d.memory_layout);
    execute(prim(d, algo), {{DNNL_ARG_SRC_0, mem(md(d), a)}, {DNNL_ARG_SRC_1, mem(md(d), b)}, {DNNL_ARG_DST, mem(md(d), y)}});
    return y;
  }
  static tensor forward(const P& pr, const tensor& a, const tensor& b) {
    return run(pr.a, pr.kind == ops::binary_kind::add ? dnnl::algorithm::binary_add : dnnl::algorithm::binary_mul, a, b);
  }
  static void backward(const P& pr, const tensor& dy, const tensor& a, const tensor& b, tensor* da, tensor* db) {
    if (pr.kind == ops::binary_kind::add) {
      if (da) *da = dy;
      if (db) *db = dy;
      return;
    }
    if (da) *da = run(pr.a, dnnl::algorithm::binary_mul, dy, b);
    if (db) *db = run(pr.a, dnnl::algorithm::binary_mul, dy, a);
  }
};

template <>
struct kernel<onednn, ops::cast_op> {
  using P = ops::cast_problem;
  static status can_implement(const P& pr) {
    if (auto s = onednn_detail::check_dtype(pr.x.type); !s) return s;
    return onednn_detail::check_dtype(pr.to);
  }
  static onednn_detail::cast_plan& plan(const P& pr) {
    using namespace onednn_detail;
    return cached_plan<cast_plan>(pr.str(), [&] {
      const auto from = md(pr.x), to = md(pr.x.dims, pr.to, pr.x.memory_layout);
      cast_plan p;
      p.fwd = dnnl::reorder(dnnl::reorder::primitive_desc(engine(), from, engine(), to, user_scratchpad()));
      p.bwd = dnnl::reorder(dnnl::reorder::primitive_desc(engine(), to, engine(), from, user_scratchpad()));
      return p;
    });
  }
  static tensor run(const dnnl::reorder& r, const ops::tensor_desc& from, const ops::tensor_desc& to, const tensor& src) {
    using namespace onednn_detail;
    tensor dst = tensor::empty(to.dims, to.type, to.memory_layout);
    execute(r, {{DNNL_ARG_FROM, mem(md(from), src)}, {DNNL_ARG_TO, mem(md(to), dst)}});
    return dst;
  }
  static ops::tensor_desc target(const P& pr) { return {pr.x.dims, pr.to, pr.x.memory_layout}; }
  static tensor forward(const P& pr, const tensor& x) { return run(plan(pr).fwd, pr.x, target(pr), x); }
  static tensor backward(const P& pr, const tensor& dy) { return run(plan(pr).bwd, target(pr), pr.x, dy); }
};

template <>
struct kernel<onednn, ops::gated_update_op> {
  using P = ops::gated_update_problem;
  static status can_implement(const P& pr) { return onednn_detail::check_dtype(pr.x.type); }

  // x + sigmoid(a + b) * y: a binary add with post-ops (sigmoid, * y, + x), cached per problem.
  static dnnl::binary& plan(const P& pr) {
    using namespace onednn_detail;
    return cached_plan<binary_plan>("gate" + pr.str(), [&] {
      const auto m = md(pr.x);
      dnnl::post_ops po;
      po.append_eltwise(1.f, dnnl::algorithm::eltwise_logistic, 0.f, 0.f);
      po.append_binary(dnnl::algorithm::binary_mul, m);
      po.append_binary(dnnl::algorithm::binary_add, m);
      dnnl::primitive_attr attr;
      attr.set_post_ops(po);
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      binary_plan p;
      p.fwd = dnnl::binary(dnnl::binary::primitive_desc(dnnl::binary::desc(dnnl::algorithm::binary_add, m, m, m), attr, engine()));
      return p;
    }).fwd;
  }

  static tensor forward(const P& pr, const tensor& x, const tensor& a, const tensor& b, const tensor& y) {
    using namespace onednn_detail;
    const auto m = md(pr.x);
    auto& prim = plan(pr);
    tensor out = tensor::empty(pr.x.dims, pr.x.type, pr.x.memory_layout);
    execute(prim, {{DNNL_ARG_SRC_0, mem(m, a)},
                   {DNNL_ARG_SRC_1, mem(m, b)},
                   {DNNL_ARG_ATTR_MULTIPLE_POST_OP(1) | DNNL_ARG_SRC_1, mem(m, y)},
                   {DNNL_ARG_ATTR_MULTIPLE_POST_OP(2) | DNNL_ARG_SRC_1, mem(m, x)},
                   {DNNL_ARG_DST, mem(m, out)}});
    return out;
  }

  // dx = dout; dy = dout * s; da = db = dout * y * s * (1 - s) with s = sigmoid(a + b) recomputed: one
  // pass that reads a, b, y, dout and writes the two gradients. Our vectorisable sigmoid (vector_math.hpp)
  // keeps it one pass; bf16 operands are widened and the results rounded (nearest even) in the same loop.
  // Per element that moves 12 bytes in bf16, against 36 for oneDNN's sigmoid binary between widening
  // reorders and a gradient pass; vectorised_chunks compiles the loop for the machine's widest vectors.
  static void backward(const P& pr, const tensor& dout, const tensor& a, const tensor& b, const tensor& y,
                       tensor* dx, tensor* dgate, tensor* dy) {
    if (dx) *dx = dout;
    if (!dgate && !dy) return;
    if (dgate) *dgate = tensor::empty(pr.x.dims, pr.x.type, pr.x.memory_layout);
    if (dy) *dy = tensor::empty(pr.x.dims, pr.x.type, pr.x.memory_layout);
    if (pr.x.type == dtype::f32) return gate_backward<float>(pr, dout, a, b, y, dgate, dy);
    GRCNN_CHECK(pr.x.type == dtype::bf16, backend_error, "onednn gated_update: unsupported dtype ", name_of(pr.x.type));
    gate_backward<bf16>(pr, dout, a, b, y, dgate, dy);
  }

  template <class T>
  static void gate_backward(const P& pr, const tensor& dout, const tensor& a, const tensor& b, const tensor& y,
                            tensor* dgate, tensor* dy) {
    using namespace onednn_detail;
    const std::int64_t n = pr.x.dims.numel();
    const T* __restrict av = static_cast<const T*>(a.raw());
    const T* __restrict bv = static_cast<const T*>(b.raw());
    const T* __restrict g = static_cast<const T*>(dout.raw());
    const T* __restrict yv = static_cast<const T*>(y.raw());
    T* __restrict dg = dgate ? static_cast<T*>(dgate->raw()) : nullptr;
    T* __restrict dyv = dy ? static_cast<T*>(dy->raw()) : nullptr;
    vectorised_chunks(n, 1 << 12, 0, [&](std::int64_t lo, std::int64_t hi) GRCNN_VECTOR_BODY {
      if (dg && dyv) {
        for (std::int64_t i = lo; i < hi; ++i) {
          const float s = vsigmoid(to_f32(av[i]) + to_f32(bv[i])), gi = to_f32(g[i]);
          dg[i] = from_f32<T>(gi * to_f32(yv[i]) * s * (1.f - s));
          dyv[i] = from_f32<T>(gi * s);
        }
      } else if (dg) {
        for (std::int64_t i = lo; i < hi; ++i) {
          const float s = vsigmoid(to_f32(av[i]) + to_f32(bv[i]));
          dg[i] = from_f32<T>(to_f32(g[i]) * to_f32(yv[i]) * s * (1.f - s));
        }
      } else {
        for (std::int64_t i = lo; i < hi; ++i) dyv[i] = from_f32<T>(to_f32(g[i]) * vsigmoid(to_f32(av[i]) + to_f32(bv[i])));
      }
    });
  }
};

}  // namespace grcnn::backends
