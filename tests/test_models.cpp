// The ready-made variants: parameter counts equal the published table, grcnn55's state_dict names,
// order and shapes equal PyTorch's (tests/data/grcnn55-state-dict.txt), initialisation follows the
// original code and is seedable, the compile-time visitor walks the layers, and a wrong input size gets
// a clear error.
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <set>
#include <type_traits>

#include <grcnn/backends/default.hpp>
#include <grcnn/eval/activations.hpp>
#include <grcnn/models/grcnn.hpp>

using namespace grcnn;

namespace {
template <class Topology>
std::size_t count(int classes) {
  nn::network<Topology> net(classes);
  return net.parameter_count();
}
double stddev(const tensor& t) {
  const auto v = t.values<double>();
  double s = 0, s2 = 0;
  for (double e : v) s += e, s2 += e * e;
  const double n = static_cast<double>(v.size());
  return std::sqrt(s2 / n - (s / n) * (s / n));
}
double max_abs(const tensor& t) {
  double m = 0;
  for (double e : t.values<double>()) m = std::max(m, std::abs(e));
  return m;
}
}  // namespace

TEST_CASE("parameter counts equal the published table", "[models]") {
  CHECK(count<models::grcnn55_topology>(1000) == 24'929'704);
  CHECK(count<models::grcnn109_topology>(1000) == 45'075'880);
  CHECK(count<models::skgrcnn55_topology>(1000) == 27'438'568);
  CHECK(count<models::skgrcnn109_topology>(1000) == 49'982'056);
  CHECK(count<models::grcnn55_share_topology>(1000) == 11'978'152);
  CHECK(count<models::grcnn109_share_topology>(1000) == 12'070'312);
  CHECK(count<models::grcnn56_topology>(10) == 9'469'258);
  CHECK(count<models::grcnn56_share_topology>(10) == 3'411'274);
  CHECK(count<models::grcnn110_topology>(10) == 19'001'930);
  CHECK(count<models::grcnn110_share_topology>(10) == 3'473'994);
  CHECK(count<models::grcnn110_sk_topology>(10) == 25'215'370);
  CHECK(count<models::grcnn_small_topology>(10) == 194'026);  // the main job's network (PyTorch agrees: model parity)
}

TEST_CASE("grcnn55's state_dict has PyTorch's 426 names, order and shapes", "[models]") {
  std::ifstream in(GRCNN_TEST_DATA "/grcnn55-state-dict.txt");
  REQUIRE(in.good());
  std::vector<std::pair<std::string, std::string>> want;
  const std::regex line(R"(^(\S+) \(([0-9, ]*)\)$)");
  for (std::string s; std::getline(in, s);) {
    std::smatch m;
    if (s.empty() || s[0] == '#') continue;
    REQUIRE(std::regex_match(s, m, line));
    std::string dims = m[2];
    if (!dims.empty() && dims.back() == ',') dims.pop_back();
    want.emplace_back(m[1], "[" + dims + "]");
  }
  REQUIRE(want.size() == 426);
  models::grcnn55<> net(1000);
  const auto state = net.state();
  REQUIRE(state.size() == want.size());
  for (std::size_t i = 0; i < state.size(); ++i) {
    INFO("entry " << i);
    CHECK(state[i].name == want[i].first);
    CHECK(state[i].value().dims().str() == want[i].second);
  }
}

TEST_CASE("a network moves: construction and assignment keep its weights, shared slots and output", "[models]") {
  using net_t = nn::network<models::grcnn_small_topology>;
  static_assert(std::is_move_constructible_v<net_t> && std::is_move_assignable_v<net_t>);
  static_assert(!std::is_copy_constructible_v<net_t>);
  nn::initializer rng(3);
  const tensor x = rng.normal({2, 3, 32, 32}, 1.0);
  auto logits = [&](net_t& n) {
    n.eval();
    autograd::no_grad_guard ng;
    return n.forward(autograd::variable(backends::to_backend<backends::default_backend>(x))).value().values<float>();
  };
  net_t a(10, 7);
  const auto want = logits(a);
  net_t b(std::move(a));
  CHECK(logits(b) == want);
  net_t c(10, 8);
  CHECK(logits(c) != want);
  c = std::move(b);
  CHECK(logits(c) == want);
  // The moved network's iterations still share one conv_g_r (one parameter, every call's gradient on it).
  std::set<const void*> cells;
  for (auto& e : c.state())
    if (e.name == "stage_2.conv_g_r.weight") cells.insert(e.parameter->cell().get());
  CHECK(cells.size() == 1);
  CHECK(c.parameter_count() == 194'026);
}

TEST_CASE("initialisation follows the original code and is seedable", "[models]") {
  models::grcnn55<> a(1000, 42), b(1000, 42), c(1000, 43);
  std::map<std::string, tensor> wa, wb, wc;
  for (auto& e : a.state()) wa[e.name] = e.value();
  for (auto& e : b.state()) wb[e.name] = e.value();
  for (auto& e : c.state()) wc[e.name] = e.value();
  CHECK(relative_error(wa["layer2.conv_f.weight"], wb["layer2.conv_f.weight"]) == 0.0);
  CHECK(relative_error(wa["layer2.conv_f.weight"], wc["layer2.conv_f.weight"]) > 0.1);
  // kaiming_normal_: std sqrt(2 / fan_in); conv1 fan_in 3*7*7, layer3.iter_1.2 fan_in 1024.
  CHECK(stddev(wa["conv1.weight"]) == Approx(std::sqrt(2.0 / 147)).epsilon(0.05));
  CHECK(stddev(wa["layer3.iter_1.2.weight"]) == Approx(std::sqrt(2.0 / 1024)).epsilon(0.02));
  CHECK(stddev(wa["classifier.weight"]) == Approx(std::sqrt(2.0 / 2048)).epsilon(0.01));
  // N(0, 0.01) for conv_g_f, with its bias zeroed.
  CHECK(stddev(wa["layer1.conv_g_f.weight"]) == Approx(0.01).epsilon(0.05));
  CHECK(max_abs(wa["layer1.conv_g_f.bias"]) == 0.0);
  // PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for conv_g_r (fan_in E/32 = 8 in layer1) and the
  // iteration 3x3 (fan_in 9p = 576 in layer1).
  CHECK(max_abs(wa["layer1.conv_g_r.weight"]) <= 1 / std::sqrt(8.0));
  CHECK(max_abs(wa["layer1.conv_g_r.weight"]) > 0.9 / std::sqrt(8.0));
  CHECK(stddev(wa["layer1.iter_1.5.weight"]) == Approx(1 / std::sqrt(576.0) / std::sqrt(3.0)).epsilon(0.05));
  // BN: weight 1, bias 0, running statistics 0 / 1.
  CHECK(wa["layer2.iter_2.3.weight"].values<double>() == std::vector<double>(128, 1.0));
  CHECK(max_abs(wa["layer2.iter_2.3.bias"]) == 0.0);
  CHECK(wa["lastact.0.running_var"].values<double>() == std::vector<double>(2048, 1.0));
  CHECK(max_abs(wa["classifier.bias"]) == 0.0);
  // CIFAR: conv_g_r ~ N(0, 0.01).
  models::grcnn56<> cifar(10, 1);
  for (auto& e : cifar.state())
    if (e.name == "stage_2.conv_g_r.weight") CHECK(stddev(e.value()) == Approx(0.01).epsilon(0.05));
}

TEST_CASE("the compile-time visitor walks the layers in order with their names", "[models]") {
  models::grcnn55<> net(10);
  std::vector<std::string> names;
  std::vector<int> outs;
  net.visit_layers([&](auto spec) {
    using S = typename decltype(spec)::type;
    names.emplace_back(S::name);
    outs.push_back(S::out_channels);
  });
  CHECK(names == std::vector<std::string>{"stem", "layer1", "layer2", "layer3", "layer4", "head"});
  CHECK(outs == std::vector<int>{64, 256, 512, 1024, 2048, 2048});
  static_assert(models::grcnn55_topology::size == 6);
}

TEST_CASE("an input of the wrong size gets a clear error", "[models]") {
  models::grcnn55<> net(10);
  net.eval();
  autograd::no_grad_guard ng;
  const autograd::variable small(tensor::zeros({1, 3, 96, 96}, dtype::f32, layout::nhwc));
  CHECK_THROWS_WITH(net.forward(small), Catch::Contains("input height 96 is below this architecture's minimum of 221"));
  // Above the minimum, a size whose final map is not AvgPool2d(7)'s 7x7 names the nearest that is.
  const autograd::variable large(tensor::zeros({1, 3, 256, 256}, dtype::f32, layout::nhwc));
  CHECK_THROWS_WITH(net.forward(large), Catch::Contains("input height 256 gives no valid final feature map") &&
                                            Catch::Contains("the nearest accepted size is 224"));
  const autograd::variable gray(tensor::zeros({1, 1, 224, 224}, dtype::f32, layout::nhwc));
  CHECK_THROWS_WITH(net.forward(gray), Catch::Contains("[N, 3, H, W]"));
}

TEST_CASE("activations: named taps per stimulus, batched as one pass, last call of a shared module", "[models][activations]") {
  const auto dir = std::filesystem::path(GRCNN_SOURCE_DIR) / "data/hvm-mini/images";
  auto stimuli = data::read_stimulus_csv(dir / "test_images.csv", dir);
  stimuli.ids.resize(3), stimuli.paths.resize(3);
  nn::network<models::grcnn_small_topology> net(10, 5);
  const data::screen_options screen{.stimulus_degrees = 8, .model_degrees = 10, .input_size = 48};
  eval::activation_options o{.layers = {"stage_1", "stage_2.conv_g_r", "classifier"}, .batch_size = 2, .screen = screen};
  const auto a = eval::extract_activations(net, stimuli, o);
  REQUIRE(a.layers.size() == 3);
  CHECK(a.stimulus_ids == stimuli.ids);
  const auto& logits = a.layer("classifier");
  CHECK(logits.shape == std::vector<std::int64_t>{10});
  CHECK(a.layer("stage_1").values.size() == static_cast<std::size_t>(3 * a.layer("stage_1").features()));
  // Each row equals a forward pass of that stimulus alone (batches of 2 then 1 change nothing).
  for (std::int64_t i = 0; i < 3; ++i) {
    tensor x = tensor::empty({1, 3, 48, 48});
    data::write_normalized(data::present_stimulus(data::decode_image(stimuli.paths[static_cast<std::size_t>(i)]), screen), x, 0);
    autograd::no_grad_guard ng;
    const auto direct = net.forward(autograd::variable(backends::to_backend<backends::default_backend>(x))).value().values<float>();
    for (std::size_t k = 0; k < 10; ++k) CHECK(logits.values[static_cast<std::size_t>(i) * 10 + k] == Approx(direct[k]).margin(1e-4));
  }
  // every_step: one entry per call of the shared gate conv; the default keeps the last.
  o.every_step = true;
  o.layers = {"stage_2.conv_g_r"};
  const auto steps = eval::extract_activations(net, stimuli, o);
  REQUIRE(steps.layers.size() >= 2);
  CHECK(steps.layers.front().name == "stage_2.conv_g_r.0");
  CHECK(steps.layers.back().values == a.layer("stage_2.conv_g_r").values);
  // safetensors round trip, stimulus ids in the metadata.
  const auto path = std::filesystem::temp_directory_path() / "grcnn_test_activations.safetensors";
  eval::save_activations(path, a);
  const auto back = eval::load_activations(path);
  CHECK(back.stimulus_ids == a.stimulus_ids);
  CHECK(back.layer("stage_1").shape == a.layer("stage_1").shape);
  CHECK(back.layer("stage_1").values == a.layer("stage_1").values);
  CHECK(back.rows_of({stimuli.ids[2], stimuli.ids[0]}) == std::vector<std::int64_t>{2, 0});
  CHECK_THROWS_WITH(back.rows_of({"nope"}), Catch::Contains("stimulus 'nope' was not recorded"));
  CHECK_THROWS_WITH(back.layer("stage_9"), Catch::Contains("no layer 'stage_9'"));
  std::filesystem::remove(path);
  o.layers = {"stage_9"};
  CHECK_THROWS_WITH(eval::extract_activations(net, stimuli, o), Catch::Contains("no module named 'stage_9'"));
}
