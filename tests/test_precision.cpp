// bf16 mixed precision (nn/precision.hpp): f32 master weights and BN statistics, bf16 activations,
// convolutions and linear layers, f32 logits. Checked three ways: oneDNN's bf16 step against the same
// mixed graph on the reference backend (every op computed in double and rounded once to bf16: an
// independent emulation), against the fp32 step (bf16 approximates it), and for what must stay f32.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include <grcnn/backends/default.hpp>
#include <grcnn/io/state_dict.hpp>
#include <grcnn/models/grcnn.hpp>
#include <grcnn/train/sgd.hpp>

#include "support/random.hpp"

using namespace grcnn;
using autograd::variable;

namespace {

tensor images(std::int64_t n, std::int64_t size, unsigned seed) {
  std::mt19937 rng(seed);
  return testing::uniform({n, 3, size, size}, rng, -1.5, 1.5, dtype::f32);
}
tensor labels(std::int64_t n, std::int64_t classes) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = (3 * i + 1) % classes;
  return tensor::from_values(shape{n}, v);
}

// One training step's results: loss, logits, every parameter's gradient and every buffer, by name.
struct step_result {
  double loss = 0;
  tensor logits;
  std::map<std::string, tensor> grads, buffers;
};

template <class Net>
step_result train_step(Net& net, const tensor& x, const tensor& y, nn::precision p) {
  using B = typename Net::backend;
  net.set_precision(p);
  net.train();
  net.zero_grad();
  const variable logits = net.forward(variable(backends::to_backend<B>(x)));
  const variable loss = ops::cross_entropy<B>(logits, y);
  autograd::backward(loss);
  step_result r;
  r.loss = loss.value().item();
  r.logits = logits.value().to_layout(layout::plain);
  for (const auto& e : net.state()) {
    if (e.is_parameter() && e.is_trainable() && e.parameter->grad().defined())
      r.grads[e.name] = e.parameter->grad().to_layout(layout::plain).to_dtype(dtype::f64);
    if (!e.is_parameter() && e.value().type() != dtype::i64) r.buffers[e.name] = e.value().to_dtype(dtype::f64);
  }
  return r;
}

// Relative L2 distance, the summary of a whole gradient.
double rel_l2(const tensor& a, const tensor& b) {
  const auto av = a.values<double>(), bv = b.values<double>();
  double d = 0, n = 0;
  for (std::size_t i = 0; i < av.size(); ++i) d += (av[i] - bv[i]) * (av[i] - bv[i]), n += bv[i] * bv[i];
  return std::sqrt(d / std::max(n, 1e-300));
}

struct comparison {
  double logits = 0, loss = 0, worst_grad = 0, worst_buffer = 0;
  double all_grads = 0;     // relative L2 over every gradient together
  double median_grad = 0;   // the median over parameters of each one's relative L2
  std::string worst_grad_name;
};
comparison compare(const step_result& got, const step_result& want) {
  comparison c;
  c.logits = relative_error(got.logits.to_dtype(dtype::f64), want.logits.to_dtype(dtype::f64));
  c.loss = std::abs(got.loss - want.loss) / std::abs(want.loss);
  REQUIRE(got.grads.size() == want.grads.size());
  std::vector<double> each;
  double d2 = 0, n2 = 0;
  for (const auto& [name, g] : want.grads) {
    const double e = rel_l2(got.grads.at(name), g);
    if (e > c.worst_grad) c.worst_grad = e, c.worst_grad_name = name;
    each.push_back(e);
    const auto gv = got.grads.at(name).values<double>(), wv = g.values<double>();
    for (std::size_t i = 0; i < gv.size(); ++i) d2 += (gv[i] - wv[i]) * (gv[i] - wv[i]), n2 += wv[i] * wv[i];
    if (std::getenv("GRCNN_PRINT_GRADS")) std::printf("%-40s %.4g\n", name.c_str(), e);
  }
  std::sort(each.begin(), each.end());
  c.median_grad = each[each.size() / 2];
  c.all_grads = std::sqrt(d2 / n2);
  for (const auto& [name, b] : want.buffers) c.worst_buffer = std::max(c.worst_buffer, relative_error(got.buffers.at(name), b));
  return c;
}

}  // namespace

TEST_CASE("precision names parse, and a wrong one is refused naming the choices", "[precision]") {
  CHECK(nn::parse_precision("bf16") == nn::precision::bf16_mixed);
  CHECK(nn::parse_precision("fp32") == nn::precision::fp32);
  CHECK(nn::activation_dtype(nn::precision::bf16_mixed) == dtype::bf16);
  CHECK_THROWS_WITH(nn::parse_precision("fp16"), Catch::Contains("fp32 or bf16"));
}

TEST_CASE("ops::cast: round to nearest even, gradient cast back, identity when the dtype matches", "[precision]") {
  // 1 + 2^-8 is a tie between bf16's 1 and 1 + 2^-7: nearest even keeps 1; 1 + 3 * 2^-8 rounds up to 1 + 2^-6.
  variable x(tensor::from_values(shape{3}, std::vector<float>{1.f + 1.f / 256, 1.f + 3.f / 256, -2.5f}), true);
  for (int b = 0; b < 2; ++b) {
    x.zero_grad();
    const variable y = b == 0 ? ops::cast<backends::onednn>(x, dtype::bf16) : ops::cast<backends::reference<double>>(x, dtype::bf16);
    CHECK(y.value().type() == dtype::bf16);
    CHECK(y.value().values<double>() == std::vector<double>{1.0, 1.0 + 1.0 / 64, -2.5});
    autograd::backward(ops::cross_entropy(ops::cast(ops::reshape(y, {1, 3}), dtype::f32),
                                          tensor::from_values(shape{1}, std::vector<std::int64_t>{2})));
    REQUIRE(x.grad().defined());
    CHECK(x.grad().type() == dtype::f32);
  }
  const variable same = ops::cast(x, dtype::f32);
  CHECK(same.value().raw() == x.value().raw());
  CHECK_THROWS_WITH(ops::cast(x, dtype::i64), Catch::Contains("floating point"));
}

// The fp32 truth (oneDNN f32: 1e-5 from float64, far below bf16's errors), oneDNN's bf16 step, and the
// same mixed graph on the reference backend, which computes every op in double and rounds its output
// once to bf16: the most accurate bf16 storage can be. Gradients differ from fp32 by more than the
// logits do: each backward op's output is stored in bf16, and batch norm's backward subtracts two
// nearly equal means. So the test asks oneDNN to be as accurate as the ideal emulation, not more.
// Runs the three steps from one set of weights and checks oneDNN's bf16 against the two others.
template <class Topology, class Setup>
void check_against_ideal_bf16(int classes, const tensor& x, const tensor& y, Setup&& setup) {
  nn::network<Topology, backends::onednn> truth(classes, 7), dn(classes, 7);
  nn::network<Topology, backends::reference<double>> ref(classes, 99);
  io::load_state_dict(ref.state(), io::state_dict(dn.state()));
  setup(truth), setup(dn), setup(ref);

  const step_result fp32 = train_step(truth, x, y, nn::precision::fp32);
  const std::size_t fallbacks = backends::fallback_log::instance().total();
  const step_result got = train_step(dn, x, y, nn::precision::bf16_mixed);
  CHECK(backends::fallback_log::instance().total() == fallbacks);  // every op ran in bf16 on oneDNN
  const step_result emulated = train_step(ref, x, y, nn::precision::bf16_mixed);

  const comparison e_dn = compare(got, fp32), e_ref = compare(emulated, fp32), between = compare(got, emulated);
  auto describe = [](const comparison& c) {
    std::ostringstream os;
    os << "logits " << c.logits << ", loss " << c.loss << ", all gradients " << c.all_grads << ", median gradient "
       << c.median_grad << ", worst gradient " << c.worst_grad << " (" << c.worst_grad_name << "), worst buffer "
       << c.worst_buffer;
    return os.str();
  };
  INFO("oneDNN bf16 vs fp32: " << describe(e_dn));
  INFO("emulated bf16 vs fp32: " << describe(e_ref));
  INFO("oneDNN bf16 vs emulated: " << describe(between));
  if (std::getenv("GRCNN_PRINT_GRADS")) {
    std::printf("oneDNN bf16 vs fp32: %s\n", describe(e_dn).c_str());
    std::printf("emulated bf16 vs fp32: %s\n", describe(e_ref).c_str());
    std::printf("oneDNN bf16 vs emulated: %s\n", describe(between).c_str());
  }
  // The forward is close everywhere: one bf16 rounding per op.
  CHECK(between.logits < 2e-2);
  CHECK(between.loss < 5e-3);
  CHECK(e_dn.logits < 3e-2);
  CHECK(e_dn.worst_buffer < 3e-2);  // BN running statistics
  // The gradients are as close to fp32 as the ideal bf16's are.
  CHECK(e_dn.all_grads < 1.5 * e_ref.all_grads);
  CHECK(e_dn.median_grad < 1.5 * e_ref.median_grad);
  CHECK(e_ref.all_grads > 0.0);  // the emulation did round
}

// The fp32 truth (oneDNN f32: 1e-5 from float64, far below bf16's errors), oneDNN's bf16 step, and the
// same mixed graph on the reference backend, which computes every op in double and rounds its output
// once to bf16: the most accurate bf16 storage can be. Gradients differ from fp32 by far more than the
// logits do (tens of percent in relative L2, as PyTorch's bf16 autocast's do: test_model_parity): each
// backward op's output is stored in bf16, and batch norm's backward subtracts two nearly equal means.
// So the test asks oneDNN to be as accurate as the ideal emulation, not more.
TEST_CASE("grcnn_small in bf16 on oneDNN is as accurate as an ideal bf16 emulation", "[precision][model]") {
  check_against_ideal_bf16<models::grcnn_small_topology>(10, images(8, 32, 3), labels(8, 10), [](auto&) {});
}

TEST_CASE("a VOne stem runs mixed: as accurate as the ideal bf16, fixed Gabor banks never trained", "[precision][vone]") {
  constexpr nn::vone_options tiny{.simple_channels = 4, .complex_channels = 4, .kernel_size = 7, .stride = 2,
                                  .out_channels = 32, .image_size = 32, .visual_degrees = 8};
  using topo = nn::topology<nn::vone_stem<tiny>, nn::grcl<"stage_1", nn::cifar_grcl({.in = 32, .planes = 16, .iterations = 1, .downsample = false})>,
                            nn::classifier_head<64, 0, 0.05>>;
  const tensor x = images(4, 16, 4), y = labels(4, 5);
  check_against_ideal_bf16<topo>(5, x, y, [](auto& net) { net.template module<nn::vone_module>().disable_noise(); });

  // Three SGD steps with its neuronal noise: the bottleneck trains, the banks stay exactly as they were.
  nn::network<topo, backends::onednn> b(5, 3);
  train::sgd opt(b.parameters(), train::param_group{.lr = 0.1, .weight_decay = 0.1, .momentum = 0.9});
  const tensor bank = b.state()[0].value().clone(), bottleneck = b.state()[2].value().to_layout(layout::plain).clone();
  for (int s = 0; s < 3; ++s) {
    train_step(b, x, y, nn::precision::bf16_mixed);
    opt.step();
  }
  CHECK(relative_error(b.state()[0].value(), bank) == 0.0);
  CHECK(b.state()[0].value().type() == dtype::f32);
  CHECK(relative_error(b.state()[2].value().to_layout(layout::plain), bottleneck) > 1e-3);
}

TEST_CASE("bf16 mixed precision keeps masters, gradients and statistics in f32 and returns f32 logits", "[precision]") {
  models::grcnn_small<backends::onednn> b(10, 11);
  const step_result bf16 = train_step(b, images(4, 16, 5), labels(4, 10), nn::precision::bf16_mixed);
  CHECK(bf16.logits.type() == dtype::f32);  // losses see f32 logits
  std::size_t with_grad = 0;
  for (const auto& e : b.state()) {
    INFO(e.name);
    if (e.value().type() == dtype::i64) continue;
    CHECK(e.value().type() == dtype::f32);  // masters and BN statistics
    if (e.is_trainable() && e.parameter->grad().defined()) {
      CHECK(e.parameter->grad().type() == dtype::f32);
      ++with_grad;
    } else if (e.is_trainable()) {
      CHECK(e.name.find("d_bn_1e") != std::string::npos);  // registered and unused, as in the original
    }
  }
  CHECK(with_grad > 100);
}

TEST_CASE("switching precision after fp32 steps: blocked masters return to plain and SGD follows", "[precision]") {
  models::grcnn_small<backends::onednn> net(10, 13);
  train::sgd opt(net.parameters(), train::param_group{.lr = 0.05, .weight_decay = 1e-4, .momentum = 0.9});
  const tensor x = images(4, 16, 9), y = labels(4, 10);
  train_step(net, x, y, nn::precision::fp32);
  opt.step();
  bool any_blocked = false;
  for (const auto& e : net.state()) any_blocked |= e.value().memory_layout() == layout::opaque;
  CHECK(any_blocked);  // oneDNN adopted its conv weight formats
  const io::tensor_dict before = io::state_dict(net.state());
  double first = 0, last = 0;
  for (int s = 0; s < 6; ++s) {
    const step_result r = train_step(net, x, y, nn::precision::bf16_mixed);
    opt.step();
    (s == 0 ? first : last) = r.loss;
  }
  for (const auto& e : net.state()) {
    INFO(e.name);
    CHECK(e.value().memory_layout() != layout::opaque);
    if (e.value().type() != dtype::i64) CHECK(e.value().type() == dtype::f32);
  }
  CHECK(last < first);  // the same batch six times: bf16 steps descend
  // The state loads into a fresh fp32 network unchanged (nothing about it is bf16), and the bf16 steps
  // moved the weights.
  models::grcnn_small<backends::onednn> copy(10, 1);
  io::load_state_dict(copy.state(), io::state_dict(net.state()));
  const io::tensor_dict after = io::state_dict(net.state()), loaded = io::state_dict(copy.state());
  double moved = 0;
  for (const auto& [name, t] : after.entries()) {
    INFO(name);
    CHECK(relative_error(loaded.at(name).to_layout(layout::plain), t.to_layout(layout::plain)) == 0.0);
    if (t.type() != dtype::i64) moved = std::max(moved, relative_error(t.to_layout(layout::plain), before.at(name).to_layout(layout::plain)));
  }
  CHECK(moved > 1e-3);
}
