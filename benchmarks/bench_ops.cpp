// Op benchmark on the oneDNN backend over the distinct conv, BN+ReLU and gate shapes of grcnn55 at 224x224
// (benchmarks/grcnn55_ops.json), in f32 or bf16 (--dtype). Prints one JSON object per op: forward and forward+backward times
// (median over --reps after a warm-up), for run_op_benchmark.py to set beside PyTorch's.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <random>

#include <nlohmann/json.hpp>

#include <grcnn/ops.hpp>

using namespace grcnn;
using autograd::variable;

namespace {

tensor random_tensor(const shape& s, std::mt19937& rng, layout l = layout::plain, dtype t = dtype::f32) {
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> v(static_cast<std::size_t>(s.numel()));
  for (auto& e : v) e = d(rng);
  return tensor::from_values(s, v, t, l);
}
shape to_shape(const nlohmann::json& j) {
  shape s;
  for (auto& d : j) s.push_back(d.get<std::int64_t>());
  return s;
}
template <class F>
double median_ms(int reps, F&& f) {
  f();  // warm-up: plans are created here
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto a = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"grcnn op benchmark (oneDNN backend)"};
  std::string spec = GRCNN_BENCH_SPEC;
  int reps = 5;
  std::string type_name = "f32", only = "all";
  app.add_option("--spec", spec, "JSON list of op shapes")->check(CLI::ExistingFile);
  app.add_option("--reps", reps, "timed repetitions per op")->check(CLI::PositiveNumber);
  app.add_option("--dtype", type_name, "activation dtype; bf16 keeps conv weights and BN parameters as torch's "
                                      "autocast does (bf16 weights, f32 BN parameters)")
      ->check(CLI::IsMember({"f32", "bf16"}));
  app.add_option("--only", only, "time only these ops")->check(CLI::IsMember({"all", "conv", "bn_relu", "gate"}));
  CLI11_PARSE(app, argc, argv);
  const dtype act = type_name == "bf16" ? dtype::bf16 : dtype::f32;
  const auto j = nlohmann::json::parse(std::ifstream(spec));
  std::mt19937 rng(1);
  for (const auto& op : j["ops"]) {
    if (only != "all" && op["op"] != only) continue;
    const shape xs = to_shape(op["x"]);
    variable x(random_tensor(xs, rng, layout::nhwc, act), true);
    double fwd = 0, fwd_bwd = 0;
    if (op["op"] == "conv") {
      const auto p = ops::conv2d_params::square(op["stride"], op["pad"], 1, op["groups"]);
      const tensor w_plain = random_tensor(to_shape(op["w"]), rng, layout::plain, act);
      const auto pr = ops::make_conv2d_problem(x.value(), w_plain, nullptr, p);
      variable w(w_plain.to_format(backends::onednn::preferred_conv_weight_format(pr)), true);
      variable b = op["bias"].get<bool>() ? variable(random_tensor({w_plain.dim(0)}, rng, layout::plain, act), true)
                                          : variable();
      const tensor seed = random_tensor(pr.y.dims, rng, layout::nhwc, act);
      fwd = median_ms(reps, [&] {
        autograd::no_grad_guard ng;
        (void)ops::conv2d(x, w, b, p);
      });
      fwd_bwd = median_ms(reps, [&] {
        autograd::backward(ops::conv2d(x, w, b, p), seed);
        x.zero_grad();
        w.zero_grad();
        if (b.defined()) b.zero_grad();
      });
    } else if (op["op"] == "gate") {  // a GRCL's gated update x + sigmoid(a + b) * y
      variable a(random_tensor(xs, rng, layout::nhwc, act), true), b(random_tensor(xs, rng, layout::nhwc, act), true),
          y(random_tensor(xs, rng, layout::nhwc, act), true);
      const tensor seed = random_tensor(xs, rng, layout::nhwc, act);
      fwd = median_ms(reps, [&] {
        autograd::no_grad_guard ng;
        (void)ops::gated_update(x, a, b, y);
      });
      fwd_bwd = median_ms(reps, [&] {
        autograd::backward(ops::gated_update(x, a, b, y), seed);
        for (variable* v : {&x, &a, &b, &y}) v->zero_grad();
      });
    } else {
      const std::int64_t c = xs[1];
      variable g(tensor::full({c}, 1.0), true), bt(tensor::zeros({c}), true);
      tensor rm = tensor::zeros({c}), rv = tensor::full({c}, 1.0);
      const tensor seed = random_tensor(xs, rng, layout::nhwc, act);
      fwd = median_ms(reps, [&] {
        autograd::no_grad_guard ng;
        (void)ops::batch_norm(x, g, bt, rm, rv, {.fuse_relu = true});
      });
      fwd_bwd = median_ms(reps, [&] {
        autograd::backward(ops::batch_norm(x, g, bt, rm, rv, {.fuse_relu = true}), seed);
        x.zero_grad();
        g.zero_grad();
        bt.zero_grad();
      });
    }
    std::cout << nlohmann::json{{"name", op["name"]}, {"fwd_ms", fwd}, {"fwd_bwd_ms", fwd_bwd}}.dump() << std::endl;
  }
  if (backends::fallback_log::instance().total() != 0) {
    std::cerr << "error: ops fell back to the reference backend\n";
    return 1;
  }
  return 0;
}
