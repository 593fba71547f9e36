// End-to-end benchmark: a GRCNN (grcnn55/109 or VOne-GRCNN55 at 224x224, or the main job's grcnn_small;
// fp32 or bf16 mixed precision, oneDNN, channels-last): inference (eval, no tape) and a full training step
// (forward, cross-entropy, backward, SGD with momentum). Prints one JSON object per mode with the median
// step time and images/s, plus the steady-state allocation and plan counters.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <random>

#include <nlohmann/json.hpp>

#include <grcnn/models/grcnn.hpp>
#include <grcnn/train/sgd.hpp>

using namespace grcnn;
using autograd::variable;

template <class Net>
int run(int batch, int size, int steps, int warmup, const std::string& which, int classes, nn::precision precision) {
  Net net(classes, 1);
  net.set_precision(precision);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> pixels(static_cast<std::size_t>(batch) * 3 * size * size);
  for (auto& p : pixels) p = u(rng);
  const variable x(tensor::from_values(shape{batch, 3, size, size}, pixels, dtype::f32, layout::nhwc));
  std::vector<std::int64_t> y(static_cast<std::size_t>(batch));
  for (auto& l : y) l = static_cast<std::int64_t>(rng() % static_cast<unsigned>(classes));
  const tensor labels = tensor::from_values(shape{batch}, y);
  train::sgd opt(net.parameters(), {.lr = 0.01, .weight_decay = 1e-4, .momentum = 0.9});

  auto measure = [&](const char* mode, auto&& step) {
    for (int i = 0; i < warmup; ++i) step();
    const auto allocs = host_allocator::instance().stats().system_allocations;
    const auto plans = backends::onednn_detail::stats().plans_created.load();
    std::vector<double> t;
    for (int i = 0; i < steps; ++i) {
      const auto a = std::chrono::steady_clock::now();
      step();
      t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
    }
    const std::vector<double> in_order = t;
    std::sort(t.begin(), t.end());
    const double median = t[t.size() / 2];
    std::cout << nlohmann::json{{"mode", mode},
                                {"batch", batch},
                                {"size", size},
                                {"precision", std::string(nn::name_of(precision))},
                                {"median_s", median},
                                {"step_s", in_order},
                                {"images_per_s", batch / median},
                                {"steady_system_allocations", host_allocator::instance().stats().system_allocations - allocs},
                                {"steady_plans_created", backends::onednn_detail::stats().plans_created.load() - plans},
                                {"peak_bytes", host_allocator::instance().stats().peak_bytes_in_use}}
                     .dump()
              << std::endl;
  };
  if (which == "inference" || which == "both") {
    net.eval();
    measure("inference", [&] {
      autograd::no_grad_guard ng;
      (void)net.forward(x);
    });
  }
  if (which == "train" || which == "both") {
    net.train();
    measure("train", [&] {
      autograd::backward(ops::cross_entropy(net.forward(x), labels));
      opt.step();
      opt.zero_grad();
    });
  }
  return backends::fallback_log::instance().total() == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  CLI::App app{"grcnn end-to-end benchmark (oneDNN backend)"};
  std::string arch = "grcnn55", mode = "both";
  int batch = 16, size = 224, steps = 5, warmup = 2;
  int classes = 1000;
  app.add_option("--arch", arch, "grcnn55, grcnn109, vone_grcnn55 (fresh VOneBlock noise per step) or grcnn_small "
                                "(the main job's network)")
      ->check(CLI::IsMember({"grcnn55", "grcnn109", "vone_grcnn55", "grcnn_small"}));
  app.add_option("--classes", classes, "classifier width")->check(CLI::PositiveNumber);
  app.add_option("--mode", mode, "inference, train or both")->check(CLI::IsMember({"inference", "train", "both"}));
  app.add_option("--batch", batch, "batch size")->check(CLI::PositiveNumber);
  app.add_option("--size", size, "image size (the original readout needs 224)")->check(CLI::PositiveNumber);
  app.add_option("--steps", steps, "timed steps")->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed steps first")->check(CLI::NonNegativeNumber);
  std::string precision = "fp32";
  app.add_option("--precision", precision, "fp32 or bf16 (mixed: f32 master weights)")->check(CLI::IsMember({"fp32", "bf16"}));
  CLI11_PARSE(app, argc, argv);
  const nn::precision p = nn::parse_precision(precision);
  if (arch == "grcnn_small") return run<models::grcnn_small<>>(batch, size, steps, warmup, mode, classes, p);
  if (arch == "vone_grcnn55") return run<models::vone_grcnn55<>>(batch, size, steps, warmup, mode, classes, p);
  return arch == "grcnn55" ? run<models::grcnn55<>>(batch, size, steps, warmup, mode, classes, p)
                           : run<models::grcnn109<>>(batch, size, steps, warmup, mode, classes, p);
}
