#pragma once
// The VOneBlock's nonlinear stage in one op: simple cells (ReLU of the q0 Gabor response), complex
// cells (quadrature energy of q0 and q1), the k_exc gain and the stochastic neuronal or Gaussian
// noise with its final ReLU (formulas in vone_math.hpp). The noise is an input, so a fixed noise map
// reproduces a forward exactly and the backward sees the draw the forward used.
#include "grcnn/ops/detail.hpp"

namespace grcnn::ops {

struct vone_response_options {
  int simple_channels = 0;  // S; the remaining C - S channels of q0 are complex cells
  double k_exc = 25.0;
  vone_math::noise_mode noise = vone_math::noise_none;
  double noise_scale = 0.35, noise_level = 0.07;
};

// q0 [N, C, H, W], q1 [N, C - S, H, W] (same dtype and layout), eps [N, C, H, W] standard normal
// draws (undefined without noise; moved to q0's layout and device here). Gradients flow to q0 and q1.
template <class B = backends::default_backend>
variable vone_response(const variable& q0, const variable& q1, const tensor& eps, const vone_response_options& o) {
  constexpr std::string_view op = "vone_response";
  detail::expect_rank(op, "q0", q0.value(), 4);
  detail::expect_activation(op, "q0", q0.value());
  const auto C = q0.dims()[1];
  GRCNN_CHECK(o.simple_channels >= 0 && o.simple_channels <= C, shape_error, op, ": ", o.simple_channels,
              " simple channels do not fit the ", C, " channels of q0 ", q0.value().describe());
  GRCNN_CHECK(o.k_exc >= 0 && std::isfinite(o.k_exc), error, op, ": k_exc must be finite and non-negative, got ", o.k_exc);
  GRCNN_CHECK(o.noise == vone_math::noise_none || (o.noise_scale > 0 && std::isfinite(o.noise_scale)), error, op,
              ": the noise scale must be positive, got ", o.noise_scale);
  const auto X = C - o.simple_channels;
  if (X > 0) {
    detail::expect_dims(op, "q1", q1.value(), grcnn::shape{q0.dims()[0], X, q0.dims()[2], q0.dims()[3]});
    detail::expect_dtype(op, "q1", q1.value(), q0.value().type());
    GRCNN_CHECK(q1.value().memory_layout() == q0.value().memory_layout() && q1.value().where() == q0.value().where(),
                error, op, ": q1 ", q1.value().describe(), " must share q0's layout and device, ", q0.value().describe());
  }
  tensor noise;
  if (o.noise != vone_math::noise_none) {
    GRCNN_CHECK(eps.defined(), error, op, ": the ", o.noise == vone_math::noise_neuronal ? "neuronal" : "gaussian",
                " noise mode needs a noise map eps");
    detail::expect_dims(op, "eps", eps, q0.dims());
    noise = eps.to_dtype(q0.value().type()).to_layout(q0.value().memory_layout()).to_device(q0.value().where());
  }
  const vone_response_problem pr{tensor_desc::of(q0.value()), o.simple_channels,
                                 {o.k_exc, o.noise, o.noise_scale, o.noise_level}};
  const variable none;
  const variable& q1v = X > 0 ? q1 : none;
  return backends::dispatch<B, vone_response_op>::run(pr, [&]<class K>(std::type_identity<K>) {
    const bool rec = autograd::should_record({&q0, &q1v});
    variable y = variable::result(K::forward(pr, q0.value(), q1v.defined() ? q1v.value() : tensor(), noise), rec);
    if (rec)
      autograd::record_op(vone_response_op::name, {&q0, &q1v}, {&y},
                          {q0.value(), q1v.defined() ? q1v.value() : tensor(), noise}, nullptr,
                          [pr](autograd::node& n, grad_inputs og, grad_slots ig) {
                            K::backward(pr, detail::as_layout(og[0], pr.q0.memory_layout), n.saved[0], n.saved[1],
                                        n.saved[2], detail::slot(n, ig, 0), detail::slot(n, ig, 1));
                          });
    return y;
  });
}

}  // namespace grcnn::ops
