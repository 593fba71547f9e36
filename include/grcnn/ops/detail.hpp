#pragma once
// Shared plumbing of the op functions: shape checks with op-named messages and the record step.
#include <span>
#include <type_traits>

#include "grcnn/autograd/tape.hpp"
#include "grcnn/backends/default.hpp"
#include "grcnn/ops/op_table.hpp"

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
inline tensor as_layout(const tensor& g, layout l) {
  return g.memory_layout() == l || l == layout::opaque ? g : g.to_layout(l);
}
inline tensor* slot(autograd::node& n, grad_slots in, std::size_t i) { return n.needs_grad(i) ? &in[i] : nullptr; }

}  // namespace detail
}  // namespace grcnn::ops
