// Backend conformance: every case of the op table on oneDNN against reference<double>, in f32 and bf16,
// with activations plain (NCHW) and channels-last (NHWC). No case may silently fall back. NaN and +-Inf
// must sit where the reference has them (GRCNN_CHECK_MATCH), the NaN/Inf cases of the table included.
#include <catch2/catch.hpp>

#include <set>
#include <string_view>

#include "support/run_case.hpp"
#include <grcnn/backends/default.hpp>
#include <grcnn/models/grcnn.hpp>

using namespace grcnn;
using namespace grcnn::testing;

namespace {

// One case on oneDNN in dtype t and layout l against reference<double>, with no silent fallback.
void check_against_reference(const op_case& c, dtype t, layout l, unsigned seed) {
  const case_data base = make_case_data(c, seed);
  const case_data dn = convert_case_data(c, base, t, l);
  const case_data ref = convert_case_data(c, dn, dtype::f64, layout::plain);
  const tensor out_shape_probe = forward_only(c.reference, ref.inputs, ref.buffers);
  std::mt19937 rng(seed * 7919u + 1u);  // independent of the input draws
  const tensor r_dn = uniform(out_shape_probe.dims(), rng, -1, 1, t, out_shape_probe.rank() == 4 ? l : layout::plain);
  const tensor r_ref = r_dn.to_dtype(dtype::f64).to_layout(layout::plain);

  const std::size_t fallbacks = backends::fallback_log::instance().total();
  const case_result got = run_case(c, c.onednn, dn, r_dn);
  CHECK(backends::fallback_log::instance().total() == fallbacks);
  const case_result want = run_case(c, c.reference, ref, r_ref);

  const double tol_fwd = t == dtype::f32 ? 1e-5 : 2e-2, tol_bwd = t == dtype::f32 ? 1e-5 : 3e-2;
  // oneDNN's bf16 convolutions (PyTorch's bf16 CPU convolution runs the same kernels) compute some
  // outputs with zero weights over neighbouring inputs: a NaN input may spread there.
  const auto rule = t == dtype::bf16 && c.name.rfind("conv", 0) == 0 ? nonfinite_rule::may_spread : nonfinite_rule::exact;
  if (got.output.rank() == 4) CHECK(got.output.memory_layout() == l);
  GRCNN_CHECK_MATCH_RULE("output", got.output, want.output, tol_fwd, rule);
  for (std::size_t i = 0; i < got.grads.size(); ++i)
    if (want.grads[i].defined())
      GRCNN_CHECK_MATCH_RULE("gradient of input " + std::to_string(i), got.grads[i], want.grads[i], tol_bwd, rule);
  for (std::size_t i = 0; i < got.buffers.size(); ++i)
    GRCNN_CHECK_MATCH("buffer " + std::to_string(i) + " after the call", got.buffers[i], want.buffers[i], 1e-5);
}

}  // namespace

TEST_CASE("oneDNN matches the reference backend on every op", "[conformance]") {
  unsigned seed = 2000;
  for (const op_case& c : op_cases()) {
    for (dtype t : {dtype::f32, dtype::bf16}) {
      if (t == dtype::bf16 && !c.bf16) continue;
      for (layout l : {layout::plain, layout::nhwc}) {
        if (l == layout::nhwc && !has_image_input(c)) continue;
        DYNAMIC_SECTION(c.name << " " << name_of(t) << " " << name_of(l)) { check_against_reference(c, t, l, ++seed); }
      }
    }
  }
}

// ggml's coverage listing: every op of ops::op_table is exercised by at least one op case (the op names
// the cases record on the tape, on the reference backend), so an op cannot enter the table untested.
TEST_CASE("every op of the table has an op case", "[conformance]") {
  std::set<std::string_view> covered;
  unsigned seed = 9100;
  for (const op_case& c : op_cases()) {
    const case_data d = make_case_data(c, ++seed);
    std::vector<variable> vars;
    for (std::size_t i = 0; i < d.inputs.size(); ++i) vars.emplace_back(d.inputs[i].clone(), c.inputs[i].differentiable);
    std::vector<tensor> buffers;
    for (const auto& b : d.buffers) buffers.push_back(b.clone());
    autograd::current_tape().clear();
    c.reference(vars, buffers);
    for (std::string_view op : autograd::current_tape().recorded_ops()) covered.insert(op);
    autograd::current_tape().clear();
  }
  std::vector<std::string_view> missing;
  [&]<class... Ops>(ops::op_list<Ops...>) {
    ((covered.count(Ops::name) ? void() : missing.push_back(Ops::name)), ...);
  }(ops::op_table{});
  std::string listing;
  for (auto op : missing) listing += std::string(listing.empty() ? "" : ", ") + std::string(op);
  INFO("ops of the table without an op case: " << listing);
  CHECK(missing.empty());
  CHECK(covered.count("paired_batch_norm") == 1);  // the listing sees ops that bypass dispatch too
}

// Restores the vector-ISA limit however a test leaves.
struct isa_limit_guard {
  cpu_isa saved = cpu_isa_limit();
  ~isa_limit_guard() { set_cpu_isa_limit(saved); }
};
// The ISAs this machine can run, baseline first.
std::vector<cpu_isa> runnable_isas() {
  std::vector<cpu_isa> out;
  for (cpu_isa isa : {cpu_isa::baseline, cpu_isa::avx2, cpu_isa::avx512})
    if (static_cast<int>(isa) <= static_cast<int>(detected_cpu_isa())) out.push_back(isa);
  return out;
}

// Our own loops (the gate's backward, the VOne response, gradient accumulation) are compiled per vector
// ISA and run the widest the CPU has (core/cpu_dispatch.hpp): every variant this machine can run is checked.
TEST_CASE("every vector-ISA variant of our CPU loops computes the same", "[conformance]") {
  const isa_limit_guard guard;
  INFO("this CPU: " << name_of(detected_cpu_isa()));
  for (cpu_isa isa : runnable_isas()) {
    set_cpu_isa_limit(isa);
    REQUIRE(active_cpu_isa() == isa);
    unsigned seed = 4000;
    for (const op_case& c : op_cases()) {
      if (c.name.rfind("gated_update", 0) != 0 && c.name.rfind("vone_response", 0) != 0) continue;
      for (dtype t : {dtype::f32, dtype::bf16})
        for (layout l : {layout::nhwc, layout::plain})
          DYNAMIC_SECTION(name_of(isa) << " " << c.name << " " << name_of(t) << " " << name_of(l)) {
            check_against_reference(c, t, l, ++seed);
          }
    }
    DYNAMIC_SECTION(name_of(isa) << " add_inplace") {
      std::mt19937 rng(77);
      for (dtype t : {dtype::f32, dtype::bf16}) {
        // 3 chunks of the threaded loop plus a tail; the sum of two values is rounded once.
        tensor d = uniform({1, 3, 151, 331}, rng, -4, 4, t), p = uniform({1, 3, 151, 331}, rng, -4, 4, t);
        const std::vector<float> dv = d.values<float>(), pv = p.values<float>();
        add_inplace(d, p);
        const std::vector<float> got = d.values<float>();
        std::size_t wrong = 0;
        for (std::size_t i = 0; i < got.size(); ++i) {
          const float sum = dv[i] + pv[i];
          wrong += got[i] != (t == dtype::bf16 ? static_cast<float>(bf16(sum)) : sum);
        }
        CHECK(wrong == 0);
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

// The CPU kernels' own exp and sigmoid (backends/onednn/vector_math.hpp) against libm in double, over
// their whole range, as each vector ISA compiles them (FMA contraction included), and their saturation
// beyond it.
// The op table's VOne cases are small (runs of 2-12 elements). These reach the vector loops' full
// bodies (runs of 20 channels or 35 positions), all-simple and all-complex maps, and the loops for one
// wanted gradient at a time, under every ISA variant the machine has.
TEST_CASE("the VOne response's vector loops match the reference backend", "[conformance]") {
  const isa_limit_guard guard;
  struct config {
    std::int64_t channels, simple;
  };
  unsigned seed = 6000;
  for (cpu_isa isa : runnable_isas()) {
    set_cpu_isa_limit(isa);
    for (const config cf : {config{40, 20}, config{24, 24}, config{24, 0}})
      for (layout l : {layout::nhwc, layout::plain})
        for (dtype t : {dtype::f32, dtype::bf16})
          for (auto mode : {ops::vone_math::noise_neuronal, ops::vone_math::noise_gaussian, ops::vone_math::noise_none})
            for (int wanted = 0; wanted < 3; ++wanted)  // both gradients, q0's only, q1's only
              DYNAMIC_SECTION(name_of(isa) << " C=" << cf.channels << " S=" << cf.simple << " " << name_of(l) << " "
                                           << name_of(t) << " mode " << mode << " gradients " << wanted) {
                std::mt19937 rng(++seed);
                const shape s0{2, cf.channels, 5, 7}, s1{2, cf.channels - cf.simple, 5, 7};
                const tensor a = uniform(s0, rng, -1, 1, t, l), b = uniform(s1, rng, -1, 1, t, l);
                const tensor e = uniform(s0, rng, -2, 2, t, l), g = uniform(s0, rng, -1, 1, t, l);
                const ops::vone_response_options o{.simple_channels = static_cast<int>(cf.simple), .k_exc = 3.0,
                                                   .noise = mode};
                const bool want_a = wanted != 2, want_b = wanted != 1 && cf.simple < cf.channels;
                auto run = [&]<class B>(const tensor& ta, const tensor& tb, const tensor& te, const tensor& tg) {
                  variable va(ta, want_a), vb(tb, want_b);
                  const variable y = ops::vone_response<B>(va, vb, mode == ops::vone_math::noise_none ? tensor() : te, o);
                  if (want_a || want_b) autograd::backward(y, tg);
                  return std::tuple{y.value(), want_a ? va.grad() : tensor(), want_b ? vb.grad() : tensor()};
                };
                auto plain64 = [](const tensor& x) { return x.to_dtype(dtype::f64).to_layout(layout::plain); };
                const auto [y, da, db] = run.template operator()<backends::onednn>(a, b, e, g);
                const auto [ry, rda, rdb] =
                    run.template operator()<backends::reference<double>>(plain64(a), plain64(b), plain64(e), plain64(g));
                const double tol = t == dtype::f32 ? 1e-5 : 2e-2, tol_grad = t == dtype::f32 ? 1e-5 : 3e-2;
                GRCNN_CHECK_CLOSE("output", y, ry, tol);
                if (want_a) GRCNN_CHECK_CLOSE("q0 gradient", da, rda, tol_grad);
                if (want_b) GRCNN_CHECK_CLOSE("q1 gradient", db, rdb, tol_grad);
              }
  }
}

TEST_CASE("the vectorisable exp and sigmoid of the CPU kernels are within 2 and 4 ulp", "[conformance]") {
  using backends::onednn_detail::vexp;
  using backends::onednn_detail::vsigmoid;
  const auto ulps = [](float got, double want) {
    const auto w = static_cast<float>(want);
    return std::abs(got - w) / (std::nextafter(std::abs(w), INFINITY) - std::abs(w));
  };
  std::vector<float> x(1740001);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(static_cast<int>(i) - 870000) * 1e-4f;
  const isa_limit_guard guard;
  for (cpu_isa isa : runnable_isas()) {
    std::vector<float> e(x.size()), s(x.size());
    const std::size_t n = x.size();
    run_vectorised(isa, [&]() GRCNN_VECTOR_BODY {
      for (std::size_t i = 0; i < n; ++i) e[i] = vexp(x[i]);
      for (std::size_t i = 0; i < n; ++i) s[i] = vsigmoid(x[i]);
    });
    float worst_exp = 0, worst_sigmoid = 0;
    for (std::size_t i = 0; i < n; ++i) {
      worst_exp = std::max(worst_exp, ulps(e[i], std::exp(static_cast<double>(x[i]))));
      worst_sigmoid = std::max(worst_sigmoid, ulps(s[i], 1.0 / (1.0 + std::exp(-static_cast<double>(x[i])))));
    }
    INFO(name_of(isa) << ": worst exp " << worst_exp << " ulp, worst sigmoid " << worst_sigmoid << " ulp");
    CHECK(worst_exp <= 2);
    CHECK(worst_sigmoid <= 4);
  }
  CHECK(vexp(-1000.f) == vexp(-87.f));
  CHECK(vexp(1000.f) == vexp(87.f));
  CHECK(std::isfinite(vexp(1000.f)));
  CHECK(vsigmoid(200.f) == 1.f);
  CHECK(vsigmoid(-88.f) > 0.f);
  CHECK(vsigmoid(-88.f) < 2e-38f);
  CHECK(vsigmoid(-200.f) == 0.f);  // e^200 overflows f32: PyTorch's f32 sigmoid is 0 there
  CHECK(vsigmoid(0.f) == 0.5f);
  CHECK(std::isnan(vexp(NAN)));
  CHECK(std::isnan(vsigmoid(NAN)));
  CHECK(vsigmoid(INFINITY) == 1.f);
  CHECK(vsigmoid(-INFINITY) == 0.f);
}

// Issue 21: oneDNN's fused ReLU turned NaN into 0, so a NaN input or weight gave finite logits and a
// finite loss (training from NaN weights ran on with the trainer's non-finite guard silent). Through a
// whole network on oneDNN, in training and evaluation, fp32 and bf16: NaN reaches the logits and the loss.
TEST_CASE("a NaN input or conv weight reaches the logits and the loss on oneDNN", "[conformance][nan]") {
  using autograd::variable;
  for (const bool training : {true, false})
    for (const auto precision : {nn::precision::fp32, nn::precision::bf16_mixed})
      for (const bool poison_weight : {false, true})
        DYNAMIC_SECTION((training ? "training " : "evaluation ") << (precision == nn::precision::fp32 ? "fp32 " : "bf16 ")
                                                                 << (poison_weight ? "NaN conv weight" : "NaN input")) {
          std::mt19937 rng(11);
          models::grcnn_small<backends::onednn> net(4, 5);
          net.set_precision(precision);
          if (training) net.train();
          else net.eval();
          tensor x = uniform({2, 3, 16, 16}, rng, -1, 1, dtype::f32, layout::nhwc);
          std::string poisoned = "input";
          auto with_nan = [](const tensor& t, std::size_t at) {  // t with element `at` NaN, in t's format
            tensor p = t.to_layout(layout::plain);
            auto v = p.values<double>();
            v.at(at) = std::nan("");
            p.assign(v);
            return t.memory_layout() == layout::opaque ? p.to_format(t.format()) : p.to_layout(t.memory_layout());
          };
          if (poison_weight) {
            for (auto& e : net.state())
              if (e.is_parameter() && e.value().rank() == 4) {  // the stem's convolution, followed by BN + ReLU
                e.value() = with_nan(e.value(), 5);
                poisoned = e.name;
                break;
              }
          } else {
            x = with_nan(x, 100);
          }
          INFO("NaN in " << poisoned);
          const variable logits = net.forward(variable(x));
          // Every logit is NaN, except in evaluation with the NaN in sample 0's input: there sample 1's
          // stay finite (no batch statistics mix the samples), as in PyTorch.
          const auto v = logits.value().values<double>();
          for (std::size_t i = 0; i < v.size(); ++i) {
            const bool sample0 = i < v.size() / 2;
            INFO("logit " << i << " = " << v[i]);
            if (training || poison_weight || sample0) CHECK(std::isnan(v[i]));
            else CHECK(std::isfinite(v[i]));
          }
          const variable loss = ops::cross_entropy<backends::onednn>(logits, tensor::from_values(shape{2}, std::vector<std::int64_t>{1, 3}));
          CHECK(std::isnan(loss.value().item()));
        }
}
