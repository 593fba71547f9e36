#pragma once
// The synchronised batch norm (ops/batch_norm.hpp) on the GPU: refused for now (below says why).
#include <span>
#include <vector>

#include "grcnn/backends/cuda/context.hpp"

namespace grcnn::backends {

// The synchronised batch norm's per-rank passes have no CUDA kernels yet: refused with the reason
// (a world of one runs the plain batch norm, as PyTorch's SyncBatchNorm does; grcnn-train refuses
// --sync-bn on GPUs with more than one rank). The members exist so the dispatcher's table is complete;
// none is reached.
template <class P>
struct kernel<cuda_t<P>, ops::sync_batch_norm_op> {
  using Pr = ops::batch_norm_problem;
  static status can_implement(const Pr&) {
    return status::no("batch norm synchronised across ranks has no CUDA kernels yet (a world of one runs the plain one)");
  }
  [[noreturn]] static void unreachable() { throw backend_error("sync_batch_norm: no CUDA kernel (refused by can_implement)"); }
  static void batch_statistics(const Pr&, const tensor&, std::vector<double>&, std::vector<double>&) { unreachable(); }
  static tensor normalize(const Pr&, const tensor&, const tensor&, const tensor&, const std::vector<double>&,
                          const std::vector<double>&) { unreachable(); }
  static void gradient_sums(const Pr&, const tensor&, const tensor&, const tensor&, const std::vector<double>&,
                            std::span<double>, std::span<double>) { unreachable(); }
  static tensor input_gradient(const Pr&, const tensor&, const tensor&, const tensor&, const tensor&,
                               const std::vector<double>&, const std::vector<double>&, const std::vector<double>&,
                               const std::vector<double>&) { unreachable(); }
};

}  // namespace grcnn::backends
