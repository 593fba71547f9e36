#pragma once
// The readout layer through cuBLAS (src/cuda/linear.cu), in the policy's math mode.
#include "grcnn/backends/cuda/context.hpp"

namespace grcnn::backends {

template <class P>
struct kernel<cuda_t<P>, ops::linear_op> {
  using Pr = ops::linear_problem;
  static status can_implement(const Pr& pr) { return cuda_detail::check(pr.x); }
  static tensor forward(const Pr& pr, const tensor& x, const tensor& w, const tensor& b,
                        std::unique_ptr<autograd::payload>&) {
    using namespace cuda_detail;
    on_device("linear", "input", x), on_device("linear", "weight", w), on_device("linear", "bias", b);
    const auto N = pr.x.dims[0], K = pr.x.dims[1], M = pr.w.dims[0];
    tensor y = tensor::empty(grcnn::shape{N, M}, pr.x.type, layout::plain, cuda_device);
    with_storage(pr.x.type, [&]<class S>() {
      grcnn::cuda::linear_forward(cp<S>(x), cp<S>(w), cp<S>(b), mp<S>(y), N, K, M, P::math);
    });
    return y;
  }
  static void backward(const Pr& pr, autograd::payload*, const tensor& dy, const tensor& x, const tensor& w, tensor* dx,
                       tensor* dw, tensor* db) {
    using namespace cuda_detail;
    const auto N = pr.x.dims[0], K = pr.x.dims[1], M = pr.w.dims[0];
    if (dx) *dx = empty(pr.x);
    if (dw) *dw = empty(pr.w);
    if (db) *db = tensor::empty(grcnn::shape{M}, pr.x.type, layout::plain, cuda_device);
    with_storage(pr.x.type, [&]<class S>() {
      grcnn::cuda::linear_backward(cp<S>(dy), cp<S>(x), cp<S>(w), dx ? mp<S>(*dx) : nullptr, dw ? mp<S>(*dw) : nullptr,
                                   db ? mp<S>(*db) : nullptr, N, K, M, P::math);
    });
  }
};

}  // namespace grcnn::backends
