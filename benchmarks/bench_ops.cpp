// Op benchmark on the oneDNN backend over the distinct conv, BN+ReLU and gate shapes of grcnn55 at 224x224
// (benchmarks/grcnn55_ops.json), in f32 or bf16 (--dtype). Prints one JSON object per op: forward and forward+backward times
// (median over --reps after a warm-up), for run_op_benchmark.py to set beside PyTorch's. The timing code
// (op_bench.hpp) is shared with bench_backends --ops, which runs the same shapes on every backend.
#include <CLI/CLI.hpp>

#include <fstream>
#include <iostream>
#include <random>

#include <nlohmann/json.hpp>

#include <grcnn/backends/default.hpp>

#include "op_bench.hpp"

using namespace grcnn;

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
  const bench::op_setup setup{.act = type_name == "bf16" ? dtype::bf16 : dtype::f32, .order = layout::nhwc, .reps = reps};
  const auto j = nlohmann::json::parse(std::ifstream(spec));
  std::mt19937 rng(1);
  for (const auto& op : j["ops"]) {
    if (only != "all" && op["op"] != only) continue;
    const bench::op_time t = bench::time_op<backends::onednn>(op, setup, rng);
    std::cout << nlohmann::json{{"name", op["name"]}, {"fwd_ms", t.fwd_ms}, {"fwd_bwd_ms", t.fwd_bwd_ms}}.dump() << std::endl;
  }
  if (backends::fallback_log::instance().total() != 0) {
    std::cerr << "error: ops fell back to the reference backend\n";
    return 1;
  }
  return 0;
}
