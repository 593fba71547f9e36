#pragma once
// Runs one op case forward and backward on a backend and collects everything a check compares.
#include "support/op_cases.hpp"

namespace grcnn::testing {

struct case_result {
  tensor output;
  std::vector<tensor> grads;    // per input; undefined where not differentiable
  std::vector<tensor> buffers;  // buffers after the call (BN running statistics)
};

// `seed_grad` is the upstream gradient (same shape as the output); `prefill` optionally pre-sets the
// gradient of each differentiable input, to check that backward accumulates into it.
inline case_result run_case(const op_case& c, const run_fn& run, const case_data& d, const tensor& seed_grad,
                            const std::vector<tensor>& prefill = {}) {
  std::vector<variable> vars;
  for (std::size_t i = 0; i < d.inputs.size(); ++i) {
    vars.emplace_back(d.inputs[i].clone(), c.inputs[i].differentiable);
    if (!prefill.empty() && prefill[i].defined()) vars.back().set_grad(prefill[i].clone());
  }
  std::vector<tensor> buffers;
  for (const auto& b : d.buffers) buffers.push_back(b.clone());
  variable out = run(vars, buffers);
  case_result r;
  r.output = out.value();
  autograd::backward(out, seed_grad);
  for (auto& v : vars) r.grads.push_back(v.requires_grad() ? v.grad() : tensor());
  r.buffers = buffers;
  return r;
}

// The forward output only, recording nothing (for finite differences).
inline tensor forward_only(const run_fn& run, const std::vector<tensor>& inputs, const std::vector<tensor>& buffers) {
  autograd::no_grad_guard ng;
  std::vector<variable> vars;
  for (const auto& t : inputs) vars.emplace_back(t);
  std::vector<tensor> b;
  for (const auto& t : buffers) b.push_back(t.clone());
  return run(vars, b).value();
}

// A Catch2 check that `got` matches `want` within a relative error (see grcnn::relative_error).
#define GRCNN_CHECK_CLOSE(what, got, want, tol)                                            \
  do {                                                                                    \
    INFO((what) << ": got " << (got).describe() << ", want " << (want).describe());      \
    REQUIRE((got).dims() == (want).dims());                                               \
    const double grcnn_err_ = ::grcnn::relative_error((got), (want));                     \
    INFO("relative error " << grcnn_err_ << " (tolerance " << (tol) << ")");              \
    CHECK(grcnn_err_ <= (tol));                                                           \
  } while (0)

}  // namespace grcnn::testing
