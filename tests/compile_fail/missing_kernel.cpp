// Must not compile: a backend that has no kernel for an op of ops::op_table (vone_response_op) and does
// not name it in falls_back; complete<B> fails with one error naming the backend and the op. With every
// op named in falls_back (run by reference<double>) it compiles.
#include <grcnn/backends/reference/reference.hpp>

namespace ops = grcnn::ops;

struct partial_backend {
  static constexpr std::string_view name = "partial";
  using fallback = grcnn::backends::reference<double>;
  static constexpr std::array<grcnn::dtype, 1> dtypes{grcnn::dtype::f32};
  using falls_back = ops::op_list<ops::conv2d_op, ops::batch_norm_op, ops::sync_batch_norm_op, ops::paired_batch_norm_op,
                                  ops::eltwise_op, ops::binary_op, ops::gated_update_op, ops::cast_op, ops::pool2d_op,
                                  ops::linear_op, ops::softmax_op, ops::cross_entropy_op, ops::kl_div_op,
                                  ops::jensen_shannon_op, ops::group_logsumexp_op, ops::sk_select_op
#ifdef GRCNN_EXPECT_OK
                                  , ops::vone_response_op
#endif
                                  >;
};
static_assert(grcnn::backends::complete<partial_backend>);

int main() { return 0; }
