#pragma once
// Max and average pooling on our own kernels (src/cuda/pool.cu): max pooling keeps each output's
// winner as a 16-bit index inside its window for the backward.
#include "grcnn/backends/cuda/context.hpp"

namespace grcnn::backends {

template <class P>
struct kernel<cuda_t<P>, ops::pool2d_op> {
  using Pr = ops::pool2d_problem;
  static status can_implement(const Pr& pr) {
    if (pr.kind == ops::pool_kind::max && std::int64_t(pr.kernel_h) * pr.kernel_w > 65536)
      return status::no("max pooling windows of at most 65,536 elements (winners are kept as 16-bit window indices)");
    return cuda_detail::check(pr.x);
  }
  struct saved : autograd::payload {
    // Max pooling's winners, a 16-bit index inside the window per output (pool_forward), held in
    // 8-byte words: the storage is private to this kernel pair.
    tensor winners;
    std::uint16_t* indices() const {
      return winners.defined() ? reinterpret_cast<std::uint16_t*>(winners.template data<std::int64_t>()) : nullptr;
    }
  };
  static grcnn::cuda::pool_args args(const Pr& pr) {
    return {cuda_detail::view_of(pr.x), cuda_detail::view_of(pr.y), pr.kind == ops::pool_kind::max, pr.kernel_h,
            pr.kernel_w, pr.stride_h, pr.stride_w, pr.pad_h, pr.pad_w};
  }
  static tensor forward(const Pr& pr, const tensor& x, std::unique_ptr<autograd::payload>& state) {
    using namespace cuda_detail;
    on_device("pool2d", "input", x);
    tensor y = empty(pr.y);
    auto s = std::make_unique<saved>();
    if (pr.kind == ops::pool_kind::max) {
      const std::int64_t outputs = pr.y.dims[0] * pr.y.dims[1] * pr.y.dims[2] * pr.y.dims[3];
      s->winners = tensor::empty(grcnn::shape{(outputs + 3) / 4}, dtype::i64, layout::plain, cuda_device);
    }
    with_storage(pr.x.type, [&]<class S>() { grcnn::cuda::pool_forward(args(pr), cp<S>(x), mp<S>(y), s->indices()); });
    state = std::move(s);
    return y;
  }
  static tensor backward(const Pr& pr, autograd::payload* state, const tensor& dy) {
    using namespace cuda_detail;
    const auto& s = *static_cast<saved*>(state);
    tensor dx = empty(pr.x);
    with_storage(pr.x.type, [&]<class S>() { grcnn::cuda::pool_backward(args(pr), cp<S>(dy), s.indices(), mp<S>(dx)); });
    return dx;
  }
};

}  // namespace grcnn::backends
