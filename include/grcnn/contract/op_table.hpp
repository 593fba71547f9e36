#pragma once
// The single op table. Every backend implements a kernel for each tag (backends::kernel<Backend, Op>);
// conformance tests and benchmarks iterate this list, so adding an op here makes every backend owe it.
#include <string_view>

#include "grcnn/contract/problems.hpp"

namespace grcnn::ops {

struct conv2d_op { static constexpr std::string_view name = "conv2d"; using problem = conv2d_problem; };
struct batch_norm_op { static constexpr std::string_view name = "batch_norm"; using problem = batch_norm_problem; };
// Batch norm over the batches of several ranks (ops/batch_norm.hpp with a group): the per-rank passes
// between which the statistics and gradient sums cross ranks.
struct sync_batch_norm_op { static constexpr std::string_view name = "sync_batch_norm"; using problem = batch_norm_problem; };
// Two batch norms of the same input in training (a GRCL iteration's gate BN iter_g_t.0 and bottleneck
// BN iter_t.0): one set of batch statistics, two affine maps (ops/batch_norm.hpp's paired_batch_norm).
struct paired_batch_norm_op { static constexpr std::string_view name = "paired_batch_norm"; using problem = batch_norm_problem; };
struct eltwise_op { static constexpr std::string_view name = "eltwise"; using problem = eltwise_problem; };
struct binary_op { static constexpr std::string_view name = "binary"; using problem = binary_problem; };
struct gated_update_op { static constexpr std::string_view name = "gated_update"; using problem = gated_update_problem; };
struct cast_op { static constexpr std::string_view name = "cast"; using problem = cast_problem; };
struct pool2d_op { static constexpr std::string_view name = "pool2d"; using problem = pool2d_problem; };
struct linear_op { static constexpr std::string_view name = "linear"; using problem = linear_problem; };
struct softmax_op { static constexpr std::string_view name = "softmax"; using problem = softmax_problem; };
struct cross_entropy_op { static constexpr std::string_view name = "cross_entropy"; using problem = cross_entropy_problem; };
struct kl_div_op { static constexpr std::string_view name = "kl_div"; using problem = kl_div_problem; };
struct jensen_shannon_op { static constexpr std::string_view name = "jensen_shannon"; using problem = jensen_shannon_problem; };
struct group_logsumexp_op { static constexpr std::string_view name = "group_logsumexp"; using problem = group_logsumexp_problem; };
struct vone_response_op { static constexpr std::string_view name = "vone_response"; using problem = vone_response_problem; };
struct sk_select_op { static constexpr std::string_view name = "sk_select"; using problem = sk_select_problem; };

template <class... Ops>
struct op_list {};

using op_table = op_list<conv2d_op, batch_norm_op, sync_batch_norm_op, paired_batch_norm_op, eltwise_op, binary_op, gated_update_op, cast_op, pool2d_op, linear_op,
                         softmax_op, cross_entropy_op, kl_div_op, jensen_shannon_op, group_logsumexp_op,
                         sk_select_op, vone_response_op>;

}  // namespace grcnn::ops
