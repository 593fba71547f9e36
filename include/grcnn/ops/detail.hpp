#pragma once
// Shared plumbing of the op functions: shape checks with op-named messages and the record step.
#include <span>
#include <type_traits>

#include "grcnn/autograd/tape.hpp"
#include "grcnn/backends/backend.hpp"
#include "grcnn/contract/op_table.hpp"

namespace grcnn::ops {

using autograd::variable;
using grad_slots = std::span<tensor>;
using grad_inputs = std::span<const tensor>;

namespace detail {

inline void expect_rank(std::string_view op, std::string_view what, const tensor& t, int rank) {
  GRCNN_CHECK(t.defined(), shape_error, op, ": ", what, " is undefined");
  GRCNN_CHECK(t.rank() == rank, shape_error, op, ": ", what, " must have rank ", rank, ", got ", t.describe());
}
inline void expect_dims(std::string_view op, std::string_view what, const tensor& t, const grcnn::shape& s) {
  GRCNN_CHECK(t.defined(), shape_error, op, ": ", what, " is undefined");
  GRCNN_CHECK(t.dims() == s, shape_error, op, ": ", what, " expected shape ", s, ", got ", t.describe());
}
inline void expect_dtype(std::string_view op, std::string_view what, const tensor& t, dtype d) {
  GRCNN_CHECK(t.type() == d, dtype_error, op, ": ", what, " expected dtype ", name_of(d), ", got ", t.describe());
}
inline void expect_activation(std::string_view op, std::string_view what, const tensor& t) {
  GRCNN_CHECK(t.defined(), shape_error, op, ": ", what, " is undefined");
  GRCNN_CHECK(t.memory_layout() != layout::opaque, error, op, ": ", what,
              " must be plain or nhwc, got ", t.describe());
  GRCNN_CHECK(is_floating(t.type()), dtype_error, op, ": ", what, " must be floating point, got ", t.describe());
}
inline void expect_same(std::string_view op, std::string_view what, const tensor& ref, const tensor& t) {
  GRCNN_CHECK(t.defined(), shape_error, op, ": ", what, " is undefined");
  GRCNN_CHECK(t.dims() == ref.dims(), shape_error, op, ": ", what, " expected shape ", ref.dims(), ", got ",
              t.describe());
  GRCNN_CHECK(t.type() == ref.type(), dtype_error, op, ": ", what, " expected dtype ", name_of(ref.type()), ", got ",
              t.describe());
  GRCNN_CHECK(t.memory_layout() == ref.memory_layout(), error, op, ": ", what, " expected layout ",
              name_of(ref.memory_layout()), ", got ", t.describe());
}
// Gradients handed to kernels come in the layout of the value they belong to.
// The output extent of a sliding window (convolution, pooling) along one axis, in checked 64-bit arithmetic:
// (in + 2 pad - dilation (kernel - 1) - 1) / stride + 1, refused when the window does not fit (C++ division
// truncates toward zero, so a negative numerator must be caught before it divides) or a term overflows.
inline std::int64_t window_extent(std::string_view op, const tensor& x, std::int64_t in, std::int64_t kernel, std::int64_t stride,
                                  std::int64_t pad, std::int64_t dilation = 1) {
  std::int64_t span = 0, padded = 0, room = 0;
  const bool overflow = __builtin_mul_overflow(dilation, kernel - 1, &span) || __builtin_mul_overflow(pad, 2, &padded) ||
                        __builtin_add_overflow(in, padded, &room) || __builtin_sub_overflow(room, span + 1, &room);
  GRCNN_CHECK(!overflow, shape_error, op, ": the window (kernel ", kernel, ", dilation ", dilation, ", padding ", pad,
              ") over an extent of ", in, " overflows 64-bit arithmetic (input ", x.describe(), ")");
  GRCNN_CHECK(room >= 0, shape_error, op, ": kernel ", kernel, " (dilation ", dilation, ", padding ", pad,
              ") does not fit an extent of ", in, " of input ", x.describe());
  return room / stride + 1;
}

inline tensor as_layout(const tensor& g, layout l) {
  return g.memory_layout() == l || l == layout::opaque ? g : g.to_layout(l);
}
inline tensor* slot(autograd::node& n, grad_slots in, std::size_t i) { return n.needs_grad(i) ? &in[i] : nullptr; }

// Dispatch and recording shared by the ops with a weight and an optional bias (conv2d, linear):
// their kernels take forward(pr, x, w, b, state) and backward(pr, state, dy, x, w, dx*, dw*, db*).
template <class B, class Op>
variable weighted_op(const typename Op::problem& pr, const variable& x, const variable& w, const variable& b,
                     layout dy_layout) {
  return backends::dispatch<B, Op>::run(pr, [&]<class K>(std::type_identity<K>) {
    std::unique_ptr<autograd::payload> state;
    const bool rec = autograd::should_record({&x, &w, &b});
    variable y = variable::result(K::forward(pr, x.value(), w.value(), b.defined() ? b.value() : tensor(), state), rec);
    if (rec) {
      // x is needed only for the weight/bias gradients, w only for the input gradient.
      std::vector<tensor> saved{w.requires_grad() || b.requires_grad() ? x.value() : tensor(),
                                x.requires_grad() ? w.value() : tensor()};
      autograd::record_op(Op::name, {&x, &w, &b}, {&y}, std::move(saved), std::move(state),
                          [pr, dy_layout](autograd::node& n, grad_inputs og, grad_slots ig) {
                            K::backward(pr, n.state.get(), as_layout(og[0], dy_layout), n.saved[0], n.saved[1],
                                        slot(n, ig, 0), slot(n, ig, 1), slot(n, ig, 2));
                          });
    }
    return y;
  });
}

}  // namespace detail
}  // namespace grcnn::ops
