// GPU end-to-end benchmark: a GRCNN on the CUDA backend (NCHW by default, --layout nhwc|both), inference (eval, no tape) and a
// full training step (forward, cross-entropy, backward, SGD momentum + weight decay), in fp32, tf32 and
// bf16 mixed precision (f32 master weights; always channels-last, the order the CUDA backend runs bf16 in).
// Times with a device synchronisation around each step (median over --steps after --warmup) and
// prints one JSON object per (precision, mode) with images/s, device memory, steady-state counters and
// which cuDNN API won the convolution searches (--cudnn-api auto|legacy|graph; GRCNN_CUDNN_LOG=1 prints
// each search's timings).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <random>

#include <nlohmann/json.hpp>

#include <grcnn/backends/cuda/cuda.hpp>
#include <grcnn/backends/cuda/device.hpp>
#include <grcnn/models/grcnn.hpp>
#include <grcnn/train/sgd.hpp>

using namespace grcnn;
using autograd::variable;

template <class Net>
void run(const std::string& precision, const std::string& which, int train_batch, int infer_batch, int size, int classes,
         int steps, int warmup, bool profile, layout act, nn::precision mixed = nn::precision::fp32) {
  using B = typename Net::backend;
  Net net(classes, 1);
  net.to_device(cuda_device);
  net.set_precision(mixed);
  auto& rt = runtime_for(cuda_device);
  std::mt19937 rng(1);
  auto input = [&](int batch) {
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::vector<float> pixels(static_cast<std::size_t>(batch) * 3 * size * size);
    for (auto& p : pixels) p = u(rng);
    return tensor::from_values(shape{batch, 3, size, size}, pixels, dtype::f32, act).to_device(cuda_device);
  };
  train::sgd opt(net.parameters(), {.lr = 0.01, .weight_decay = 1e-4, .momentum = 0.9});

  auto measure = [&](const char* mode, int batch, auto&& step) {
    for (int i = 0; i < warmup; ++i) step();
    rt.synchronize();
    const auto before = rt.memory_stats();
    const auto searches = grcnn::cuda::conv_stats().searches;
    std::vector<double> t;
    for (int i = 0; i < steps; ++i) {
      const auto a = std::chrono::steady_clock::now();
      step();
      rt.synchronize();
      t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
    }
    std::sort(t.begin(), t.end());
    const double median = t[t.size() / 2];
    const auto after = rt.memory_stats();
    const auto conv = grcnn::cuda::conv_stats();
    std::cout << nlohmann::json{{"mode", mode},
                                {"precision", precision},
                                {"layout", act == layout::nhwc ? "nhwc" : "nchw"},
                                {"batch", batch},
                                {"size", size},
                                {"median_s", median},
                                {"min_s", t.front()},
                                {"images_per_s", batch / median},
                                {"peak_bytes_in_use", after.peak_bytes_in_use},
                                {"pool_reserved_bytes", after.pool_reserved},
                                {"steady_driver_allocations", after.system_allocations - before.system_allocations},
                                {"steady_conv_searches", conv.searches - searches},
                                {"cudnn_api", grcnn::cuda::name_of(grcnn::cuda::current_conv_api())},
                                {"conv_searches_won_by_graph", conv.graph_choices},
                                {"conv_searches_won_by_legacy", conv.legacy_choices},
                                {"conv_choices_adopted", conv.adoptions}}
                     .dump()
              << std::endl;
    if (profile) {  // where the time goes: each library call timed alone (synchronised), 3 steps
      grcnn::cuda::reset_profile();
      grcnn::cuda::set_profiling(true);
      for (int i = 0; i < 3; ++i) step();
      rt.synchronize();
      grcnn::cuda::set_profiling(false);
      std::cerr << "profile " << precision << " " << mode << (act == layout::nhwc ? " nhwc" : " nchw")
                << " (3 steps):\n" << grcnn::cuda::profile_report();
    }
  };
  if (which == "train" || which == "both") {
    const tensor x = input(train_batch);
    std::vector<std::int64_t> y(static_cast<std::size_t>(train_batch));
    for (auto& l : y) l = static_cast<std::int64_t>(rng() % static_cast<unsigned>(classes));
    const tensor labels = tensor::from_values(shape{train_batch}, y).to_device(cuda_device);
    net.train();
    measure("train", train_batch, [&] {
      net.zero_grad();
      const variable loss = ops::cross_entropy<B>(net.forward(variable(x)), labels);
      autograd::backward(loss);
      opt.step();
    });
  }
  if (which == "inference" || which == "both") {
    const tensor x = input(infer_batch);
    net.eval();
    measure("inference", infer_batch, [&] {
      autograd::no_grad_guard ng;
      (void)net.forward(variable(x));
    });
  }
}

template <template <class> class Model>
void run_precisions(const std::string& precisions, const std::string& which, int tb, int ib, int size, int classes,
                    int steps, int warmup, bool profile, const std::string& layouts) {
  for (layout act : {layout::nhwc, layout::plain}) {
    if (layouts != "both" && (layouts == "nhwc") != (act == layout::nhwc)) continue;
    if (precisions == "fp32" || precisions == "all")
      run<Model<backends::cuda>>("fp32", which, tb, ib, size, classes, steps, warmup, profile, act);
    if (precisions == "tf32" || precisions == "all")
      run<Model<backends::cuda_tf32>>("tf32", which, tb, ib, size, classes, steps, warmup, profile, act);
  }
  // bf16 runs in the backend's mixed-precision order whatever --layout says: the network reorders its
  // input there (backends::preferred_activations), so that is the layout reported.
  if (precisions == "bf16" || precisions == "all")
    run<Model<backends::cuda>>("bf16", which, tb, ib, size, classes, steps, warmup, profile,
                               backends::preferred_activations<backends::cuda>(dtype::bf16), nn::precision::bf16_mixed);
}

int main(int argc, char** argv) {
  CLI::App app{"grcnn CUDA end-to-end benchmark"};
  std::string arch = "grcnn55", precision = "all", which = "both", layouts = "nchw";
  int train_batch = 128, infer_batch = 256, size = 224, classes = 1000, steps = 10, warmup = 3;
  bool profile = false;
  std::string api;  // empty: GRCNN_CUDNN_API, else auto
  app.add_option("--arch", arch, "grcnn55, vone_grcnn55 (VOneBlock noise drawn on the device) or grcnn_small")
      ->check(CLI::IsMember({"grcnn55", "vone_grcnn55", "grcnn_small"}));
  app.add_option("--precision", precision)->check(CLI::IsMember({"fp32", "tf32", "bf16", "all"}));
  app.add_option("--layout", layouts, "activations channels-last (nhwc), plain (nchw) or both")
      ->check(CLI::IsMember({"nhwc", "nchw", "both"}));
  app.add_option("--mode", which)->check(CLI::IsMember({"train", "inference", "both"}));
  app.add_option("--train-batch", train_batch)->check(CLI::PositiveNumber);
  app.add_option("--infer-batch", infer_batch)->check(CLI::PositiveNumber);
  app.add_option("--size", size)->check(CLI::PositiveNumber);
  app.add_option("--classes", classes)->check(CLI::PositiveNumber);
  app.add_option("--steps", steps)->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup)->check(CLI::NonNegativeNumber);
  app.add_option("--cudnn-api", api, "convolutions through cuDNN's legacy API, its graph API, or the faster per problem (default: GRCNN_CUDNN_API, else auto)")
      ->check(CLI::IsMember({"auto", "legacy", "graph"}));
  app.add_flag("--profile", profile, "after timing, print device time per library call over 3 synchronised steps");
  CLI11_PARSE(app, argc, argv);
  const auto r = grcnn::cuda::probe();
  if (r.device_count == 0) {
    std::cerr << "bench_grcnn_cuda: no usable GPU (" << r.reason << ")\n";
    return 77;
  }
  if (!api.empty()) grcnn::cuda::set_conv_api(grcnn::cuda::parse_conv_api(api, "--cudnn-api"));
  std::cerr << "device 0: " << r.name << ", cuDNN " << r.cudnn_version << ", convolutions: "
            << grcnn::cuda::name_of(grcnn::cuda::current_conv_api()) << " API\n";
  if (arch == "grcnn55")
    run_precisions<models::grcnn55>(precision, which, train_batch, infer_batch, size, classes, steps, warmup, profile, layouts);
  else if (arch == "vone_grcnn55")
    run_precisions<models::vone_grcnn55>(precision, which, train_batch, infer_batch, size, classes, steps, warmup, profile,
                                         layouts);
  else
    run_precisions<models::grcnn_small>(precision, which, train_batch, infer_batch, size, classes, steps, warmup, profile, layouts);
  return 0;
}
