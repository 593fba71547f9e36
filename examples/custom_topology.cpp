// A user-defined GRCNN written only with the public description types: a CIFAR-style stem, three GRCLs
// with their own widths, iterations and groups, and a readout. The topology is checked at compile time
// (change block2's in_channels to see the error naming "block2"); the network trains with the same
// code as the ready-made variants.
#include <CLI/CLI.hpp>

#include <iostream>
#include <random>

#include <grcnn/backends/default.hpp>
#include <grcnn/nn/network.hpp>
#include <grcnn/train/sgd.hpp>

#include "tool_main.hpp"

using namespace grcnn;

// block1: 64 -> 32 * 4 = 128 channels at 32x32, then halves the resolution; block2: 128 -> 256 at 16x16;
// block3: 256 -> 384 at 8x8, no transition.
constexpr nn::grcl_options block(int in, int planes, int iterations, bool downsample) {
  nn::grcl_options o = nn::cifar_grcl({.in = in, .planes = planes, .iterations = iterations, .downsample = downsample});
  o.groups = 8;
  return o;
}
using my_topology = nn::topology<nn::cifar_stem<64>,                          //
                                 nn::grcl<"block1", block(64, 32, 2, true)>,   //
                                 nn::grcl<"block2", block(128, 64, 3, true)>,  //
                                 nn::grcl<"block3", block(256, 96, 2, false)>, //
                                 nn::classifier_head<384, 8>>;

namespace {

int run_example() {
  nn::network<my_topology> net(/*classes=*/10, /*seed=*/7);
  std::cout << "custom GRCNN: " << net.parameter_count() << " parameters, " << net.state().size()
            << " state_dict entries; layers:";
  net.visit_layers([](auto spec) {
    using S = typename decltype(spec)::type;
    std::cout << ' ' << S::name << '(' << S::in_channels << "->" << S::out_channels << ')';
  });
  std::cout << "\n";

  // A few SGD steps on a fixed random batch: the loss must fall.
  std::mt19937 rng(1);
  std::normal_distribution<float> n(0.f, 1.f);
  std::vector<float> pixels(8 * 3 * 32 * 32);
  for (auto& p : pixels) p = n(rng);
  const autograd::variable x(tensor::from_values(shape{8, 3, 32, 32}, pixels, dtype::f32, layout::nhwc));
  const tensor labels = tensor::from_values<std::int64_t>({8}, std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7});
  train::sgd opt(net.parameters(), {.lr = 0.05, .momentum = 0.9});
  double first = 0, last = 0;
  for (int step = 0; step < 8; ++step) {
    const autograd::variable loss = ops::cross_entropy(net.forward(x), labels);
    autograd::backward(loss);
    opt.step();
    opt.zero_grad();
    (step == 0 ? first : last) = loss.value().item();
    std::cout << "step " << step + 1 << " loss " << loss.value().item() << "\n";
  }
  return last < first ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"custom_topology: builds a user-defined GRCNN from the public description types, prints its layers "
               "and runs 8 SGD steps on a fixed random batch (exit 0 when the loss falls)"};
  CLI11_PARSE(app, argc, argv);
  return tools::guarded_main("custom_topology", run_example);
}
