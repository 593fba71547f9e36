#pragma once
// Selective-kernel fusion (src/cuda/sk_select.cu): the branches weighted by a softmax over the
// branch axis of the attention logits, up to 8 branches.
#include <vector>

#include "grcnn/backends/cuda/context.hpp"

namespace grcnn::backends {

template <class P>
struct kernel<cuda_t<P>, ops::sk_select_op> {
  using Pr = ops::sk_select_problem;
  static status can_implement(const Pr& pr) {
    if (pr.branches > 8) return status::no("at most 8 branches");
    return cuda_detail::check(pr.branch);
  }
  static tensor forward(const Pr& pr, const std::vector<tensor>& branches, const tensor& logits) {
    using namespace cuda_detail;
    for (const auto& b : branches) on_device("sk_select", "branch", b);
    on_device("sk_select", "logits", logits);
    tensor out = empty(pr.branch);
    with_storage(pr.branch.type, [&]<class S>() {
      std::vector<const S*> ptrs;
      for (const auto& b : branches) ptrs.push_back(cp<S>(b));
      grcnn::cuda::sk_select_forward(view_of(pr.branch), pr.branches, ptrs.data(), cp<S>(logits), mp<S>(out));
    });
    return out;
  }
  static void backward(const Pr& pr, const tensor& dout, const std::vector<tensor>& branches, const tensor& logits,
                       const std::vector<tensor*>& dbranches, tensor* dlogits) {
    using namespace cuda_detail;
    for (std::size_t m = 0; m < branches.size(); ++m)
      if (dbranches[m]) *dbranches[m] = empty(pr.branch);
    if (dlogits)  // the logits' own dtype: the branches' (checked by the op)
      *dlogits = tensor::empty(grcnn::shape{pr.branch.dims[0], pr.branches * pr.branch.dims[1]}, pr.branch.type,
                               layout::plain, cuda_device);
    with_storage(pr.branch.type, [&]<class S>() {
      std::vector<const S*> ptrs;
      std::vector<S*> dptrs;
      for (std::size_t m = 0; m < branches.size(); ++m) {
        ptrs.push_back(cp<S>(branches[m]));
        dptrs.push_back(dbranches[m] ? mp<S>(*dbranches[m]) : nullptr);
      }
      grcnn::cuda::sk_select_backward(view_of(pr.branch), pr.branches, cp<S>(dout), ptrs.data(), cp<S>(logits),
                                      dptrs.data(), dlogits ? mp<S>(*dlogits) : nullptr);
    });
  }
};

}  // namespace grcnn::backends
