// Backend conformance: every case of the op table on oneDNN against reference<double>, in f32 and bf16,
// with activations plain (NCHW) and channels-last (NHWC). No case may silently fall back.
#include <catch2/catch.hpp>

#include "support/run_case.hpp"

using namespace grcnn;
using namespace grcnn::testing;

TEST_CASE("oneDNN matches the reference backend on every op", "[conformance]") {
  unsigned seed = 2000;
  for (const op_case& c : op_cases()) {
    for (dtype t : {dtype::f32, dtype::bf16}) {
      if (t == dtype::bf16 && !c.bf16) continue;
      for (layout l : {layout::plain, layout::nhwc}) {
        if (l == layout::nhwc && !has_image_input(c)) continue;
        DYNAMIC_SECTION(c.name << " " << name_of(t) << " " << name_of(l)) {
          const case_data base = make_case_data(c, ++seed);
          const case_data dn = convert_case_data(c, base, t, l);
          const case_data ref = convert_case_data(c, dn, dtype::f64, layout::plain);
          const tensor out_shape_probe = forward_only(c.reference, ref.inputs, ref.buffers);
          std::mt19937 rng(seed * 7919u + 1u);  // independent of the input draws
          const tensor r_dn = uniform(out_shape_probe.dims(), rng, -1, 1, t,
                                      out_shape_probe.rank() == 4 ? l : layout::plain);
          const tensor r_ref = r_dn.to_dtype(dtype::f64).to_layout(layout::plain);

          const std::size_t fallbacks = backends::fallback_log::instance().total();
          const case_result got = run_case(c, c.onednn, dn, r_dn);
          CHECK(backends::fallback_log::instance().total() == fallbacks);
          const case_result want = run_case(c, c.reference, ref, r_ref);

          const double tol_fwd = t == dtype::f32 ? 1e-5 : 2e-2, tol_bwd = t == dtype::f32 ? 1e-5 : 3e-2;
          if (got.output.rank() == 4) CHECK(got.output.memory_layout() == l);
          GRCNN_CHECK_CLOSE("output", got.output, want.output, tol_fwd);
          for (std::size_t i = 0; i < got.grads.size(); ++i)
            if (want.grads[i].defined()) GRCNN_CHECK_CLOSE("gradient of input " + std::to_string(i), got.grads[i], want.grads[i], tol_bwd);
          for (std::size_t i = 0; i < got.buffers.size(); ++i)
            GRCNN_CHECK_CLOSE("buffer " + std::to_string(i) + " after the call", got.buffers[i], want.buffers[i], 1e-5);
        }
      }
    }
  }
}

TEST_CASE("f64 problems fall back from oneDNN to the reference backend, counted", "[conformance]") {
  using autograd::variable;
  backends::fallback_log::instance().reset();
  variable x(tensor::full({1, 2, 3, 3}, 0.5, dtype::f64));
  const variable y = ops::relu<backends::onednn>(x);
  CHECK(y.value().type() == dtype::f64);
  CHECK(backends::fallback_log::instance().total() == 1);
  const auto entries = backends::fallback_log::instance().entries();
  REQUIRE(entries.size() == 1);
  CHECK(entries.begin()->first.find("onednn/eltwise") == 0);
  CHECK(entries.begin()->first.find("not f64") != std::string::npos);
  backends::fallback_log::instance().reset();
}

TEST_CASE("conv weights held in oneDNN's preferred format are used without reordering", "[conformance]") {
  using autograd::variable;
  std::mt19937 rng(5);
  const auto p = ops::conv2d_params::square(1, 1, 1, 32);
  variable x(uniform({2, 64, 6, 6}, rng, -1, 1, dtype::f32, layout::nhwc), true);
  const tensor w_plain = uniform({128, 2, 3, 3}, rng, -1, 1, dtype::f32);
  const auto pr = ops::make_conv2d_problem(x.value(), w_plain, nullptr, p);
  const auto fmt = backends::onednn::preferred_conv_weight_format(pr);
  variable w_blocked(w_plain.to_format(fmt), true);
  variable w_ref(w_plain.clone(), true);

  auto& st = backends::onednn_detail::stats();
  const std::size_t reorders = st.weight_reorders, grad_reorders = st.grad_reorders;
  const variable y1 = ops::conv2d(x, w_blocked, p);
  const tensor seed = uniform(y1.dims(), rng, -1, 1, dtype::f32, layout::nhwc);
  autograd::backward(y1, seed);
  const std::size_t blocked_reorders = st.weight_reorders - reorders;
  const variable y2 = ops::conv2d(x, w_ref, p);
  autograd::backward(y2, seed);

  CHECK(blocked_reorders <= 1);  // backward-data may prefer another layout than forward; forward never reorders
  INFO("weight format " << fmt->describe() << ", grad reorders " << st.grad_reorders - grad_reorders);
  CHECK(w_blocked.grad().memory_layout() == layout::opaque);
  CHECK(w_blocked.grad().format()->same_as(*fmt));
  CHECK(relative_error(y1.value(), y2.value()) < 1e-6);
  CHECK(relative_error(w_blocked.grad().to_layout(layout::plain), w_ref.grad()) < 1e-6);
  CHECK(relative_error(w_blocked.value().to_layout(layout::plain), w_plain) == 0.0);
}
