#pragma once
// cast: a differentiable dtype conversion, the seam of mixed precision. A bf16 network keeps f32 master
// weights and casts them per use; the gradient that comes back in bf16 is cast to f32 and accumulated
// into the master's own gradient, so the optimizer never sees a bf16 number.
#include "grcnn/ops/detail.hpp"

namespace grcnn::ops {

// x converted to `to` (round to nearest even into bf16 or f16), same shape and layout; x itself when it
// already has that dtype. Opaque (backend-blocked) tensors are refused: convert them to plain first.
// Backends: the reference casts between any floating dtypes, oneDNN and CUDA between f32 and bf16.
template <class B = backends::default_backend>
variable cast(const variable& x, dtype to) {
  constexpr std::string_view op = "cast";
  detail::expect_activation(op, "input", x.value());
  GRCNN_CHECK(is_floating(to), dtype_error, op, ": target dtype must be floating point, got ", name_of(to));
  if (x.value().type() == to) return x;
  const cast_problem pr{tensor_desc::of(x.value()), to};
  return backends::dispatch<B, cast_op>::run(pr, [&]<class K>(std::type_identity<K>) {
    const bool rec = autograd::should_record({&x});
    variable y = variable::result(K::forward(pr, x.value()), rec);
    if (rec)
      autograd::record_op(cast_op::name, {&x}, {&y}, {}, nullptr, [pr](autograd::node&, grad_inputs og, grad_slots ig) {
        ig[0] = K::backward(pr, detail::as_layout(og[0], pr.x.memory_layout));
      });
    return y;
  });
}

}  // namespace grcnn::ops
