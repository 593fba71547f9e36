// Every op against PyTorch (python3-torch, driven by tests/torch/make_op_fixtures.py) on fixed random
// f32 inputs: relative error <= 1e-5 forward and <= 1e-4 backward, on oneDNN with activations plain and
// channels-last, and on the reference backend. NaN and +-Inf must sit where PyTorch has them, in outputs,
// gradients and buffers (the table's NaN/Inf cases).
#include <catch2/catch.hpp>

#include <filesystem>

#include "support/run_case.hpp"
#include <grcnn/backends/default.hpp>
#include <grcnn/io/safetensors.hpp>

using namespace grcnn;
using namespace grcnn::testing;

namespace {
const io::tensor_dict& fixtures() {
  static const io::tensor_dict d = io::load_safetensors("torch_op_fixtures.safetensors");
  return d;
}
}  // namespace

TEST_CASE("every op matches PyTorch forward and backward", "[torch]") {
  const auto& fx = fixtures();
  for (const op_case& c : op_cases()) {
    for (layout l : {layout::plain, layout::nhwc}) {
      for (bool on_reference : {false, true}) {
        if (on_reference && l == layout::nhwc) continue;
        DYNAMIC_SECTION(c.name << (on_reference ? " reference" : " onednn") << " " << name_of(l)) {
          case_data d;
          for (std::size_t i = 0; i < c.inputs.size(); ++i) d.inputs.push_back(fx.at(c.name + ".in" + std::to_string(i)));
          for (std::size_t i = 0; i < c.buffers.size(); ++i) d.buffers.push_back(fx.at(c.name + ".buf" + std::to_string(i)));
          const tensor& want_out = fx.at(c.name + ".out");
          const dtype t = on_reference ? dtype::f64 : dtype::f32;
          const case_data run_data = convert_case_data(c, d, t, l);
          tensor seed = fx.at(c.name + ".seed").to_dtype(t);
          if (seed.rank() == 4) seed = seed.to_layout(l);
          const case_result got = run_case(c, on_reference ? c.reference : c.onednn, run_data, seed);
          GRCNN_CHECK_MATCH("output", got.output, want_out, 1e-5);
          for (std::size_t i = 0; i < c.inputs.size(); ++i)
            if (c.inputs[i].differentiable)
              GRCNN_CHECK_MATCH("gradient of input " + std::to_string(i), got.grads[i], fx.at(c.name + ".grad" + std::to_string(i)), 1e-4);
          for (std::size_t i = 0; i < c.buffers.size(); ++i)
            GRCNN_CHECK_MATCH("buffer " + std::to_string(i) + " after the call", got.buffers[i],
                    fx.at(c.name + ".buf_after" + std::to_string(i)), 1e-5);
        }
      }
    }
  }
}
