// The unrolled graph and its model facts: parameter counts and multiply-adds of every published variant
// (static_assert against the spec's tables, measured from the original PyTorch code), every tap a node
// program names is emitted by its module with the program's shape, receptive fields equal the support of
// d(centre unit)/d(input) computed by backward through the library, activation memory equals what a
// training forward keeps, compile-time taps, cross-layer weight sharing.
#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <set>
#include <tuple>

#include <grcnn/backends/default.hpp>
#include <grcnn/core/allocator.hpp>
#include <grcnn/models/grcnn.hpp>

using namespace grcnn;
using autograd::variable;

namespace {

template <class T>
using facts = nn::model_facts<T>;

// ---- the spec's table (spec/grcnn-and-paper-methods.md 1.1, 1.8; PyTorch's count of the original code) --
static_assert(facts<models::grcnn55_topology>::parameters(1000).total() == 24'929'704);
static_assert(facts<models::grcnn109_topology>::parameters(1000).total() == 45'075'880);
static_assert(facts<models::skgrcnn55_topology>::parameters(1000).total() == 27'438'568);
static_assert(facts<models::skgrcnn109_topology>::parameters(1000).total() == 49'982'056);
static_assert(facts<models::grcnn55_share_topology>::parameters(1000).total() == 11'978'152);
static_assert(facts<models::grcnn109_share_topology>::parameters(1000).total() == 12'070'312);
static_assert(facts<models::grcnn56_topology>::parameters(10).total() == 9'469'258);
static_assert(facts<models::grcnn56_share_topology>::parameters(10).total() == 3'411'274);
static_assert(facts<models::grcnn110_topology>::parameters(10).total() == 19'001'930);
static_assert(facts<models::grcnn110_share_topology>::parameters(10).total() == 3'473'994);
static_assert(facts<models::grcnn110_sk_topology>::parameters(10).total() == 25'215'370);
// Not in the spec's table: the count PyTorch gives for the reference rebuild (tests/torch/grcnn_reference.py).
static_assert(facts<models::grcnn110_sk_share_topology>::parameters(10).total() == 3'678'218);
static_assert(facts<models::grcnn_small_topology>::parameters(10).total() == 194'026);
// VOne-GRCNN55: 26,836,072 parameters of which 24,916,072 trainable (the Gabor banks are fixed).
static_assert(facts<models::vone_grcnn55_topology>::parameters(1000).total() == 26'836'072);
static_assert(facts<models::vone_grcnn55_topology>::parameters(1000).trainable == 24'916'072);
static_assert(facts<models::grcnn55_topology>::parameters(1000).fixed == 0);

// Multiply-adds of convolutions and linear layers per image (the spec's MACs column).
static_assert(facts<models::grcnn55_topology>::macs(224, 224) == 3'703'832'576);
static_assert(facts<models::grcnn109_topology>::macs(224, 224) == 7'750'025'216);
static_assert(facts<models::skgrcnn55_topology>::macs(224, 224) == 4'041'195'520);
static_assert(facts<models::skgrcnn109_topology>::macs(224, 224) == 8'377'286'656);
static_assert(facts<models::grcnn55_share_topology>::macs(224, 224) == 3'703'832'576);
static_assert(facts<models::grcnn109_share_topology>::macs(224, 224) == 7'750'025'216);
static_assert(facts<models::grcnn56_topology>::macs(32, 32, 10) == 2'150'374'912);
static_assert(facts<models::grcnn110_topology>::macs(32, 32, 10) == 3'995'344'384);
static_assert(facts<models::grcnn110_sk_topology>::macs(32, 32, 10) == 3'696'302'848);
static_assert(facts<models::grcnn55_topology>::flops(224, 224) == 2 * facts<models::grcnn55_topology>::macs(224, 224));

// The graph is flat: grcnn55 has a stem, 2 + T (+ 1 transition) nodes per GRCL and a head.
static_assert(facts<models::grcnn55_topology>::size == 1 + (2 + 3 + 1) + (2 + 3 + 1) + (2 + 4 + 1) + (2 + 3) + 1);
static_assert(facts<models::grcnn109_topology>::size == 1 + 6 + 6 + (2 + 22 + 1) + 5 + 1);

// Per-layer sums over a layer's nodes.
template <class T>
constexpr std::int64_t layer_macs(std::string_view layer, std::int64_t side, int classes = 1000) {
  std::int64_t m = 0;
  for (const auto& n : facts<T>::nodes(side, side, classes))
    if (n.layer.view() == layer) m += n.macs;
  return m;
}
template <class T>
constexpr std::int64_t layer_parameters(std::string_view layer, int classes = 1000) {
  std::int64_t m = 0;
  for (const auto& n : facts<T>::nodes(224, 224, classes))
    if (n.layer.view() == layer) m += n.parameters.total();
  return m;
}
// The spec's per-layer table for grcnn55 at 224 (1.9): parameters exact, MACs to its 0.1M rounding.
static_assert(layer_parameters<models::grcnn55_topology>("stem") == 9'408 + 128 + 36'864);
static_assert(layer_parameters<models::grcnn55_topology>("layer1") == 356'736);
static_assert(layer_parameters<models::grcnn55_topology>("layer2") == 1'436'928);
static_assert(layer_parameters<models::grcnn55_topology>("layer3") == 6'843'904);
static_assert(layer_parameters<models::grcnn109_topology>("layer3") == 26'990'080);
static_assert(layer_parameters<models::grcnn55_topology>("layer4") == 14'192'640);
static_assert(layer_parameters<models::grcnn55_topology>("head") == 4'096 + 2'049'000);
static_assert((layer_macs<models::grcnn55_topology>("layer1", 224) + 50'000) / 100'000 == 8'349);
static_assert((layer_macs<models::grcnn55_topology>("layer2", 224) + 50'000) / 100'000 == 8'510);
static_assert((layer_macs<models::grcnn55_topology>("layer3", 224) + 50'000) / 100'000 == 10'758);
static_assert((layer_macs<models::grcnn109_topology>("layer3", 224) + 50'000) / 100'000 == 51'220);
static_assert((layer_macs<models::grcnn55_topology>("layer4", 224) + 50'000) / 100'000 == 7'065);
static_assert((layer_macs<models::skgrcnn55_topology>("layer1", 224) + 50'000) / 100'000 == 9'257);
static_assert((layer_macs<models::skgrcnn55_topology>("layer4", 224) + 50'000) / 100'000 == 7'552);

// Receptive fields grow with the time step: each iteration adds its 3x3 (x the layer's jump).
constexpr auto rf(std::string_view tap, int step) { return facts<models::grcnn55_topology>::tap(tap, step).value.rf_h; }
static_assert(rf("conv1", 0).size() == 7 && rf("conv1", 0).jump == 2);
static_assert(rf("layer1.state", 1).size() - rf("layer1.state", 0).size() == 2 * 4);
static_assert(rf("layer3.state", 4).size() - rf("layer3.state", 3).size() == 2 * 16);
static_assert(rf("layer2.conv_g_r", 2).size() == rf("layer2.state", 2).size());

// ---- user topologies ------------------------------------------------------------------------------------
// ImageNet-style SK with weight sharing, small.
using tiny_sk = nn::topology<nn::imagenet_stem<32>, nn::grcl<"layer1", nn::imagenet_grcl({.in = 32, .planes = 32, .iterations = 2, .downsample = true, .sk = true, .share = true})>,
                             nn::grcl<"layer2", nn::imagenet_grcl({.in = 64, .planes = 32, .iterations = 2, .downsample = false, .sk = true})>, nn::classifier_head<64, 0>>;
// CIFAR-style SK (CIFAR's SK branches) with a plain transition.
using tiny_cifar_sk = nn::topology<nn::cifar_stem<32>, nn::grcl<"stage_1", nn::cifar_grcl({.in = 32, .planes = 32, .iterations = 2, .downsample = true, .sk = true})>,
                                   nn::grcl<"stage_2", nn::cifar_grcl({.in = 64, .planes = 16, .iterations = 1, .downsample = false})>, nn::classifier_head<64, 0>>;
// A small VOneBlock.
constexpr nn::vone_options tiny_vone_options() {
  nn::vone_options o;
  o.simple_channels = 8, o.complex_channels = 8, o.kernel_size = 7, o.stride = 2, o.out_channels = 32;
  o.image_size = 32, o.visual_degrees = 4;
  return o;
}
using tiny_vone = nn::topology<nn::vone_stem<tiny_vone_options()>, nn::grcl<"layer1", nn::imagenet_grcl({.in = 32, .planes = 16, .iterations = 2, .downsample = false})>,
                               nn::classifier_head<64, 0>>;
// Cross-layer sharing: stage_2 reuses stage_1's recurrent weights (same widths), stage_3 has its own.
using cross_shared = nn::topology<nn::cifar_stem<64>, nn::grcl<"stage_1", nn::cifar_grcl({.in = 64, .planes = 16, .iterations = 2, .downsample = false})>,
                                  nn::grcl<"stage_2", nn::cifar_grcl({.in = 64, .planes = 16, .iterations = 2, .downsample = true}), "stage_1">,
                                  nn::grcl<"stage_3", nn::cifar_grcl({.in = 64, .planes = 16, .iterations = 1, .downsample = false})>, nn::classifier_head<64, 0>>;

template <class Topology>
std::int64_t runtime_parameters(int classes) {
  nn::network<Topology> net(classes, 3);
  return static_cast<std::int64_t>(net.parameter_count());
}

// Every (name, step) a forward emits with the dims it emitted, against the program's taps.
template <class Topology>
void check_taps_against_modules(std::int64_t side, int classes) {
  using F = facts<Topology>;
  nn::network<Topology> net(classes, 5);
  net.eval();
  if constexpr (nn::network<Topology>::template count_modules<nn::vone_module> == 1)
    net.template module<nn::vone_module>().disable_noise();
  constexpr std::int64_t batch = 2;
  std::map<std::pair<std::string, int>, std::vector<std::int64_t>> seen;
  nn::tap_registry taps;
  std::set<std::string> registered;
  for (const auto& t : F::taps(side, side, classes))
    if (registered.insert(t.name.str()).second)
      taps.on(t.name.str(), [&](const std::string& n, int step, const tensor& v) {
      const std::vector<std::int64_t> d(v.dims().begin(), v.dims().end());
      CHECK(seen.emplace(std::make_pair(n, step), d).second);  // each (name, step) once
    });
  const tensor x = tensor::full({batch, 3, side, side}, 0.5, dtype::f32, layout::nhwc);
  const variable y = net.forward(variable(x), &taps);
  CHECK(std::vector<std::int64_t>(y.dims().begin(), y.dims().end()) == std::vector<std::int64_t>{batch, classes});
  std::size_t expected = 0;
  for (const auto& t : F::taps(side, side, classes)) {
    ++expected;
    const auto it = seen.find({t.name.str(), t.step});
    INFO("tap " << t.name.str() << " step " << t.step);
    REQUIRE(it != seen.end());
    const auto& d = it->second;
    if (t.name.view() == "classifier") {
      CHECK(d == std::vector<std::int64_t>{batch, classes});
    } else if (d.size() == 2) {  // a [N, C] tap (the head's avgpool gives [N, C, 1, 1] in every readout)
      CHECK((d == std::vector<std::int64_t>{batch, t.value.channels} && t.value.h == 1 && t.value.w == 1));
    } else {
      CHECK(d == std::vector<std::int64_t>{batch, t.value.channels, t.value.h, t.value.w});
    }
  }
  CHECK(seen.size() == expected);
  CHECK(F::parameters(classes).total() == static_cast<std::int64_t>(net.parameter_count()));
  CHECK(F::parameters(classes).trainable == static_cast<std::int64_t>(net.trainable_parameter_count()));
}

}  // namespace

TEST_CASE("model facts equal the running networks' parameter counts", "[graph]") {
  CHECK(runtime_parameters<tiny_sk>(7) == facts<tiny_sk>::parameters(7).total());
  CHECK(runtime_parameters<tiny_cifar_sk>(7) == facts<tiny_cifar_sk>::parameters(7).total());
  CHECK(runtime_parameters<tiny_vone>(7) == facts<tiny_vone>::parameters(7).total());
  CHECK(runtime_parameters<cross_shared>(7) == facts<cross_shared>::parameters(7).total());
  CHECK(runtime_parameters<models::grcnn56_share_topology>(10) == 3'411'274);
}

TEST_CASE("every tap a node program names is emitted by its module, with the program's shape", "[graph]") {
  SECTION("grcnn_small") { check_taps_against_modules<models::grcnn_small_topology>(32, 10); }
  SECTION("ImageNet SK with weight sharing") { check_taps_against_modules<tiny_sk>(64, 7); }
  SECTION("CIFAR SK") { check_taps_against_modules<tiny_cifar_sk>(16, 7); }
  SECTION("VOneBlock stem") { check_taps_against_modules<tiny_vone>(32, 7); }
  SECTION("cross-layer sharing") { check_taps_against_modules<cross_shared>(16, 7); }
}

TEST_CASE("the graph's node names, time steps and edges", "[graph]") {
  using F = facts<models::grcnn_small_topology>;
  std::vector<std::string> names;
  for (const auto& n : F::names) names.push_back(n.str());
  CHECK(names == std::vector<std::string>{"stem", "stage_1.feedforward", "stage_1.gate", "stage_1.iter_1",
                                          "stage_1.transition", "stage_2.feedforward", "stage_2.gate", "stage_2.iter_1",
                                          "stage_2.iter_2", "stage_2.transition", "stage_3.feedforward", "stage_3.gate",
                                          "stage_3.iter_1", "stage_3.iter_2", "head"});
  CHECK(F::steps[8] == 2);
  // stage_2.iter_2 reads stage_2.iter_1 (x_1) and stage_2.gate (gf); stage_2's first nodes read stage_1's output.
  CHECK(F::edges[8] == std::array<int, 4>{7, 6, -2, -2});
  CHECK(F::edges[5] == std::array<int, 4>{4, -2, -2, -2});
  CHECK(F::edges[0] == std::array<int, 4>{-1, -2, -2, -2});
  // Values are dropped after their last reader: the gate input lives until the last iteration.
  CHECK(F::last_use[6] == 8);
}

TEST_CASE("compile-time taps fire with the graph's names and steps", "[graph]") {
  models::grcnn_small<> net(10, 1);
  net.eval();
  std::vector<int> steps;
  std::vector<std::int64_t> dims;
  net.tap<"stage_2.conv_g_r">([&](const tensor&, int step) { steps.push_back(step); });
  net.tap<"stage_2.iter_2.8">([&](const tensor& v) { dims = std::vector<std::int64_t>(v.dims().begin(), v.dims().end()); });
  int only_second = 0;
  net.tap<"stage_2.state", 2>([&](const variable& v, int step) {
    CHECK(step == 2);
    CHECK(v.dims()[1] == 128);
    ++only_second;
  });
  const tensor x = tensor::full({2, 3, 32, 32}, 0.25, dtype::f32, layout::nhwc);
  net.forward(variable(x));
  CHECK(steps == std::vector<int>{0, 1});
  CHECK(dims == std::vector<std::int64_t>{2, 128, 8, 8});
  CHECK(only_second == 1);
  net.clear_taps();
  net.forward(variable(x));
  CHECK(only_second == 1);
}

TEST_CASE("cross-layer sharing: one recurrent weight under both layers' names, trained once", "[graph]") {
  nn::network<cross_shared> net(5, 2);
  std::map<std::string, const variable*> by_name;
  for (auto& e : net.state())
    if (e.parameter) by_name[e.name] = e.parameter;
  REQUIRE(by_name.count("stage_2.conv_g_r.weight"));
  CHECK(by_name["stage_2.conv_g_r.weight"]->cell() == by_name["stage_1.conv_g_r.weight"]->cell());
  CHECK(by_name["stage_2.iter_2.5.weight"]->cell() == by_name["stage_1.iter_2.5.weight"]->cell());
  CHECK(by_name["stage_2.iter_1.0.weight"]->cell() != by_name["stage_1.iter_1.0.weight"]->cell());  // BN: own
  CHECK(by_name["stage_3.conv_g_r.weight"]->cell() != by_name["stage_1.conv_g_r.weight"]->cell());
  // Gradients from both layers reach the one weight.
  const tensor x = tensor::full({2, 3, 16, 16}, 0.5, dtype::f32, layout::nhwc);
  autograd::backward(ops::cross_entropy(net.forward(variable(x)), tensor::zeros({2}, dtype::i64)));
  CHECK(by_name["stage_1.conv_g_r.weight"]->grad().defined());
}

TEST_CASE("activation memory: a training forward keeps what the graph counts", "[graph]") {
  // The tape keeps every value the graph counts (and a little more: BN statistics, ReLU masks where kept).
  models::grcnn_small<> net(10, 1);
  net.train();
  constexpr std::int64_t batch = 16, side = 32;
  const tensor x = tensor::full({batch, 3, side, side}, 0.5, dtype::f32, layout::nhwc);
  const tensor labels = tensor::zeros({batch}, dtype::i64);
  {  // warm up: weights adopt their backend formats
    autograd::backward(ops::cross_entropy(net.forward(variable(x)), labels));
    net.zero_grad();
  }
  auto& a = host_allocator::instance();
  const std::size_t before = a.stats().bytes_in_use;
  const variable y = net.forward(variable(x));
  const double kept = static_cast<double>(a.stats().bytes_in_use - before);
  const double counted = static_cast<double>(facts<models::grcnn_small_topology>::activation_bytes(side, side) * batch);
  INFO("kept " << kept << " bytes, the graph counts " << counted);
  CHECK(kept >= 0.9 * counted);
  CHECK(kept <= 1.35 * counted);
  autograd::backward(ops::cross_entropy(y, labels));
}

namespace {

// The bounding box [row0, row1, col0, col1] of the input pixels whose gradient of the summed channels of
// one output unit (the map's centre) is non-zero, over a batch of random images, in evaluation mode.
template <class Net>
std::array<std::int64_t, 4> gradient_support(Net& net, const std::string& tap, int step, std::int64_t side, dtype t) {
  constexpr std::int64_t batch = 2;
  std::mt19937 rng(7);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> pixels(static_cast<std::size_t>(batch * 3 * side * side));
  for (auto& p : pixels) p = normal(rng);
  const variable x(tensor::from_values(shape{batch, 3, side, side}, pixels, t), true);
  variable root;
  nn::tap_registry taps;
  taps.on_variable(tap, [&](const std::string&, int s, const variable& v) {
    if (s == step) root = v;
  });
  net.forward(x, &taps);
  REQUIRE(root.defined());
  const auto d = root.dims();
  std::vector<double> seed(static_cast<std::size_t>(root.value().numel()), 0.0);
  for (std::int64_t n = 0; n < d[0]; ++n)
    for (std::int64_t c = 0; c < d[1]; ++c) seed[static_cast<std::size_t>(((n * d[1] + c) * d[2] + d[2] / 2) * d[3] + d[3] / 2)] = 1.0;
  autograd::backward(root, tensor::from_values(shape(d), seed, root.value().type()));
  const auto g = x.grad().to_layout(layout::plain).template values<double>();
  std::array<std::int64_t, 4> box{side, -1, side, -1};
  for (std::int64_t n = 0; n < batch; ++n)
    for (std::int64_t c = 0; c < 3; ++c)
      for (std::int64_t i = 0; i < side; ++i)
        for (std::int64_t j = 0; j < side; ++j)
          if (g[static_cast<std::size_t>(((n * 3 + c) * side + i) * side + j)] != 0.0) {
            box[0] = std::min(box[0], i), box[1] = std::max(box[1], i);
            box[2] = std::min(box[2], j), box[3] = std::max(box[3], j);
          }
  return box;
}

// The graph's field of the map's centre unit, clipped to the image.
template <class Topology>
std::array<std::int64_t, 4> graph_support(const std::string& tap, int step, std::int64_t side) {
  const auto f = facts<Topology>::tap(tap, step, side, side);
  REQUIRE(f.found());
  const auto clip = [&](const nn::receptive_field& r, std::int64_t units) {
    const std::int64_t c = units / 2;
    return std::array<std::int64_t, 2>{std::max<std::int64_t>(0, r.lo + c * r.jump), std::min(side - 1, r.hi + c * r.jump)};
  };
  const auto h = clip(f.value.rf_h, f.value.h), w = clip(f.value.rf_w, f.value.w);
  return {h[0], h[1], w[0], w[1]};
}

template <class Topology, class Backend>
void check_receptive_fields(std::int64_t side, dtype t, const std::vector<std::pair<std::string, int>>& taps) {
  nn::network<Topology, Backend> net(10, 3);
  if (t == dtype::f64) net.to_dtype(t);
  net.eval();
  for (const auto& [name, step] : taps) {
    INFO("tap " << name << " step " << step << " at " << side << " px");
    const auto expected = graph_support<Topology>(name, step, side);
    const auto measured = gradient_support(net, name, step, side, t);
    CHECK(measured == expected);
  }
}

}  // namespace

TEST_CASE("receptive fields: the graph's equal the support of d(centre unit)/d(input)", "[graph]") {
  // grcnn_small at 64 px in f64 on the reference backend: the stem, every GRCL's time steps, a layer's
  // output through its transition (the average-pool branch shifts the field by half a pixel of its jump).
  check_receptive_fields<models::grcnn_small_topology, backends::reference<double>>(
      64, dtype::f64,
      {{"conv_3x3", 0}, {"stage_1.state", 0}, {"stage_1.state", 1}, {"stage_1.iter_1.5", 0}, {"stage_1", 0},
       {"stage_2.conv_g_r", 0}, {"stage_2.conv_g_r", 1}, {"stage_2.state", 2}, {"stage_2.d_conv_3", 0}, {"stage_3.state", 1}});
}

TEST_CASE("receptive fields of grcnn55 at 224 px equal the gradient support", "[graph][.full]") {
  check_receptive_fields<models::grcnn55_topology, backends::default_backend>(
      224, dtype::f32,
      {{"conv1", 0}, {"maxpool", 0}, {"conv2", 0}, {"layer1.state", 0}, {"layer1.state", 3}, {"layer1.iter_2.5", 0},
       {"layer2.conv_g_r", 2}, {"layer2.state", 3}, {"layer3.state", 1}});
}

namespace {
// One training step of grcnn_small (forward, cross-entropy, backward) with the iterations' paired batch
// norms (the default) or unfused (a tap on every gate BN's output makes each BN run on its own).
template <class Backend>
std::map<std::string, tensor> training_step(dtype t, bool paired, layout l) {
  nn::network<models::grcnn_small_topology, Backend> net(10, 11);
  if (t == dtype::f64) net.to_dtype(t);
  net.train();
  std::mt19937 rng(3);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> pixels(4 * 3 * 16 * 16);
  for (auto& p : pixels) p = normal(rng);
  const variable x(tensor::from_values(shape{4, 3, 16, 16}, pixels, t).to_layout(l));
  nn::tap_registry taps;
  if (!paired)
    for (const auto& f : facts<models::grcnn_small_topology>::taps(16, 16, 10))
      if (f.name.view().find(".iter_g_") != std::string_view::npos && f.name.view().ends_with(".0"))
        taps.on(f.name.str(), [](const std::string&, int, const tensor&) {});
  const variable logits = net.forward(x, &taps);
  autograd::backward(ops::cross_entropy(logits, tensor::from_values<std::int64_t>({4}, std::vector<std::int64_t>{1, 2, 3, 4})));
  std::map<std::string, tensor> out{{"logits", logits.value()}};
  for (auto& e : net.state()) {
    out[e.name] = e.value().to_layout(layout::plain);
    if (e.parameter && e.parameter->grad().defined()) out[e.name + ".grad"] = e.parameter->grad().to_layout(layout::plain);
  }
  return out;
}
template <class Backend>
double worst_difference(dtype t, layout l) {
  const auto a = training_step<Backend>(t, true, l), b = training_step<Backend>(t, false, l);
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (const auto& [name, v] : a) {
    if (v.type() == dtype::i64) {
      CHECK(v.template values<std::int64_t>() == b.at(name).template values<std::int64_t>());  // num_batches_tracked
      continue;
    }
    worst = std::max(worst, relative_error(v, b.at(name), 1e-3));
  }
  return worst;
}
}  // namespace

TEST_CASE("paired batch norms equal the unfused ones in a training step", "[graph]") {
  // The reference in f64: outputs, running statistics, every gradient to the last bits.
  const double f64 = worst_difference<backends::reference<double>>(dtype::f64, layout::plain);
  INFO("reference f64: " << f64);
  CHECK(f64 <= 1e-13);
  // oneDNN in f32, both layouts: within f32 rounding.
  for (layout l : {layout::plain, layout::nhwc}) {
    const double f32 = worst_difference<backends::default_backend>(dtype::f32, l);
    INFO("oneDNN f32: " << f32);
    CHECK(f32 <= 1e-5);
  }
}
