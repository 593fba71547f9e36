#pragma once
// The oneDNN (CPU) backend: channels-last activations, weights in the primitive's preferred blocked
// layout, plans cached per problem, ReLU fused into batch norm and the GRCL gate fused into one binary
// primitive with post-ops. What a kernel refuses (f64 inputs, say) falls back, counted, to the
// reference backend computing in double.
#include <array>

#include "grcnn/backends/reference/reference.hpp"

namespace grcnn::backends {

struct onednn {
  static constexpr std::string_view name = "onednn";
  using fallback = reference<double>;
  static constexpr std::array<dtype, 2> dtypes{dtype::f32, dtype::bf16};  // floating types it computes in

  // The blocked layout this build's convolution prefers for the problem's weights. Converting a weight
  // once (tensor::to_format) avoids a reorder in every step; gradients then arrive in the same format.
  static std::shared_ptr<const opaque_format> preferred_conv_weight_format(const ops::conv2d_problem& pr);
};

}  // namespace grcnn::backends

#include "grcnn/backends/onednn/context.hpp"
#include "grcnn/backends/onednn/conv2d.hpp"
#include "grcnn/backends/onednn/batch_norm.hpp"
#include "grcnn/backends/onednn/sync_batch_norm.hpp"
#include "grcnn/backends/onednn/elementwise.hpp"
#include "grcnn/backends/onednn/pool2d.hpp"
#include "grcnn/backends/onednn/linear.hpp"
#include "grcnn/backends/onednn/softmax_losses.hpp"
#include "grcnn/backends/onednn/sk_select.hpp"
#include "grcnn/backends/onednn/vone.hpp"

namespace grcnn::backends {
// Every op of ops::op_table has a oneDNN kernel (which may refuse a problem at run time, counted).
static_assert(complete<onednn>);
}  // namespace grcnn::backends
