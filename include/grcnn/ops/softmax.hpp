#pragma once
#include "grcnn/ops/detail.hpp"

namespace grcnn::ops {

template <class B = backends::default_backend>
variable softmax(const variable& x, bool log = false) {
  const std::string_view op = log ? "log_softmax" : "softmax";
  detail::expect_rank(op, "input", x.value(), 2);
  detail::expect_activation(op, "input", x.value());
  const softmax_problem pr{tensor_desc::of(x.value()), log};
  return backends::dispatch<B, softmax_op>::run(pr, [&]<class K>(std::type_identity<K>) {
    const bool rec = autograd::should_record({&x});
    variable y = variable::result(K::forward(pr, x.value()), rec);
    if (rec)
      autograd::record_op(softmax_op::name, {&x}, {&y}, {y.value()}, nullptr,
                          [pr](autograd::node& n, grad_inputs og, grad_slots ig) {
                            ig[0] = K::backward(pr, og[0], n.saved[0]);
                          });
    return y;
  });
}
template <class B = backends::default_backend>
variable log_softmax(const variable& x) {
  return softmax<B>(x, true);
}

}  // namespace grcnn::ops
