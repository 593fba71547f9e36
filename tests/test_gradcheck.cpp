// Every op's gradient against central finite differences, in double on the reference backend. Gradient
// outputs are allocated NaN-poisoned (an unwritten element fails the check) and every input gradient is
// pre-filled, so backward must accumulate (+=) rather than overwrite.
#include <catch2/catch.hpp>

#include "support/run_case.hpp"

using namespace grcnn;
using namespace grcnn::testing;

TEST_CASE("every op's gradient matches central finite differences", "[gradcheck]") {
  unsigned seed = 1000;
  for (const op_case& c : op_cases()) {
    if (!c.finite_differences || !c.specials.empty()) continue;  // NaN/Inf cases have no finite differences
    DYNAMIC_SECTION(c.name) {
      const case_data d = make_case_data(c, ++seed);
      std::mt19937 rng(seed * 7);
      const tensor out0 = forward_only(c.reference, d.inputs, d.buffers);
      const tensor r = uniform(out0.dims(), rng);
      std::vector<tensor> prefill;
      for (const auto& in : d.inputs) prefill.push_back(uniform(in.dims(), rng));

      case_result analytic;
      {
        poison_allocations poison;
        analytic = run_case(c, c.reference, d, r, prefill);
      }
      const auto rv = r.values<double>();
      auto objective = [&](const std::vector<tensor>& inputs) {
        const auto o = forward_only(c.reference, inputs, d.buffers).values<double>();
        double s = 0;
        for (std::size_t k = 0; k < o.size(); ++k) s += rv[k] * o[k];
        return s;
      };
      for (std::size_t i = 0; i < d.inputs.size(); ++i) {
        if (!c.inputs[i].differentiable) continue;
        INFO("input " << i << " " << d.inputs[i].describe());
        REQUIRE(analytic.grads[i].defined());
        const auto got = analytic.grads[i].values<double>(), pre = prefill[i].values<double>();
        const double h = 1e-6;
        std::vector<tensor> in = d.inputs;
        for (auto& t : in) t = t.clone();
        double worst = 0, scale = 1.0;
        std::vector<double> numeric(got.size());
        for (std::size_t k = 0; k < got.size(); ++k) {
          auto v = in[i].values<double>();
          const double x0 = v[k];
          v[k] = x0 + h;
          in[i].assign(v);
          const double fp = objective(in);
          v[k] = x0 - h;
          in[i].assign(v);
          const double fm = objective(in);
          v[k] = x0;
          in[i].assign(v);
          numeric[k] = (fp - fm) / (2 * h);
          scale = std::max(scale, std::abs(numeric[k]));
        }
        for (std::size_t k = 0; k < got.size(); ++k) {
          const double diff = std::abs((got[k] - pre[k]) - numeric[k]);
          worst = std::isnan(diff) ? INFINITY : std::max(worst, diff);
        }
        INFO("max |analytic - numeric| / max(1, |numeric|) = " << worst / scale);
        CHECK(worst / scale < 1e-6);
      }
    }
  }
}
