#pragma once
// ReLU, sigmoid, add, mul, the GRCL gate x + sigmoid(a + b) * y and the f32 <-> bf16 casts on our own
// packed elementwise kernels (src/cuda/elementwise.cu).
#include "grcnn/backends/cuda/context.hpp"

namespace grcnn::backends {

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

}  // namespace grcnn::backends
