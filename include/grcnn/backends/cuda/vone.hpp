#pragma once
// The VOneBlock response on our own kernel (src/cuda/vone.cu), the arithmetic shared with the CPU.
#include "grcnn/backends/cuda/context.hpp"

namespace grcnn::backends {

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

}  // namespace grcnn::backends
