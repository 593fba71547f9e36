// The VOneBlock: V1 parameters sampled draw for draw as numpy's legacy generator does, their
// statistics, the Gabor banks and a small block against the Python reference
// (tests/torch/make_vone_fixtures.py), the noise (fresh, fixed, off), fixed parameters outside every
// optimizer, and VOne-GRCNN55's parameter counts and state names.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include <grcnn/backends/default.hpp>
#include <grcnn/io/state_dict.hpp>
#include <grcnn/models/grcnn.hpp>
#include <grcnn/train/sgd.hpp>

#include "support/random.hpp"

using namespace grcnn;
using autograd::variable;
namespace gabor = nn::gabor;

namespace {
const io::tensor_dict& fixtures() {
  static const io::tensor_dict d = io::load_safetensors("vone_fixtures.safetensors");
  return d;
}
tensor vec(const std::vector<double>& v) { return tensor::from_values(shape{static_cast<std::int64_t>(v.size())}, v); }
std::vector<double> ranks(const std::vector<double>& v) {
  std::vector<std::size_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](auto a, auto b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (std::size_t i = 0; i < idx.size(); ++i) r[idx[i]] = static_cast<double>(i);
  return r;
}
double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const double n = static_cast<double>(a.size());
  const double ma = std::accumulate(a.begin(), a.end(), 0.0) / n, mb = std::accumulate(b.begin(), b.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    sab += (a[i] - ma) * (b[i] - mb), saa += (a[i] - ma) * (a[i] - ma), sbb += (b[i] - mb) * (b[i] - mb);
  return sab / std::sqrt(saa * sbb);
}
std::vector<int> channels_of(const tensor& t) {
  std::vector<int> c;
  for (auto v : t.values<std::int64_t>()) c.push_back(static_cast<int>(v));
  return c;
}

// The small block of the fixtures: 4 simple + 4 complex cells, 7x7 at stride 2, 32 px over 8 degrees.
nn::vone_options small_block(nn::vone_noise noise = nn::vone_noise::none) {
  return {.simple_channels = 4, .complex_channels = 4, .kernel_size = 7, .stride = 2, .out_channels = 6,
          .image_size = 32, .visual_degrees = 8, .noise = noise, .gabor_seed = 5};
}
}  // namespace

TEST_CASE("the sampler replays numpy's legacy RandomState", "[vone]") {
  // numpy.random.seed(0); rand(), standard_normal() (numpy 1.24's values, stable since the legacy freeze).
  gabor::numpy_legacy_rng a(0), b(0);
  CHECK(a.random_sample() == Approx(0.5488135039273248).epsilon(1e-15));
  CHECK(a.random_sample() == Approx(0.7151893663724195).epsilon(1e-15));
  CHECK(b.standard_normal() == Approx(1.764052345967664).epsilon(1e-14));
  CHECK(b.standard_normal() == Approx(0.4001572083672233).epsilon(1e-14));
}

TEST_CASE("V1 parameters equal VOneNet's generate_gabor_param for the same seed", "[vone]") {
  const std::vector<std::pair<std::string, gabor::sampling_options>> configs{
      {"default", {.features = 512, .seed = 0, .sf_corr = 0.75, .sf_max = 9, .sf_min = 0}},
      {"alt", {.features = 64, .seed = 7, .sf_corr = -0.3, .sf_max = 5.6, .sf_min = 0.7}},
      {"uncorrelated", {.features = 32, .seed = 3, .sf_corr = 0.0, .sf_max = 9, .sf_min = 0}}};
  for (const auto& [name, o] : configs) {
    INFO(name);
    const auto p = gabor::sample_v1_parameters(o);
    // erfc (ours) and cephes' ndtr (scipy) may differ in the last bits; the interpolation carries that on.
    CHECK(relative_error(vec(p.phase), fixtures().at(name + ".phase")) < 1e-13);
    CHECK(relative_error(vec(p.theta), fixtures().at(name + ".theta")) < 1e-13);
    CHECK(relative_error(vec(p.nx), fixtures().at(name + ".nx")) < 1e-12);
    CHECK(relative_error(vec(p.ny), fixtures().at(name + ".ny")) < 1e-12);
    CHECK(relative_error(vec(p.sf), fixtures().at(name + ".sf")) < 1e-12);
  }
}

TEST_CASE("sampled V1 parameters follow the published distributions", "[vone]") {
  const auto p = gabor::sample_v1_parameters({.features = 40000, .seed = 1});
  const double n = static_cast<double>(p.size());
  // Orientation: De Valois 1982a's histogram over [-22.5, 157.5), negatives folded by + 180.
  std::array<double, 4> ori{};
  for (double t : p.theta) {
    REQUIRE(t >= 0.0);
    REQUIRE(t < 180.0);
    const double u = t >= 157.5 ? t - 180 : t;
    ori[static_cast<std::size_t>(std::clamp((u + 22.5) / 45.0, 0.0, 3.0))] += 1 / n;
  }
  const std::array<double, 4> want{66 / 246.0, 49 / 246.0, 77 / 246.0, 54 / 246.0};
  for (std::size_t i = 0; i < 4; ++i) CHECK(ori[i] == Approx(want[i]).margin(0.01));
  // Spatial frequency: De Valois 1982b's bins, 0.5 to 8 cycles/degree; the share of each bin.
  std::array<double, 8> sf{};
  const std::array<double, 9> edges{0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0, 5.6, 8.0};
  for (double f : p.sf) {
    REQUIRE(f >= 0.5 - 1e-12);
    REQUIRE(f <= 8.0 + 1e-12);
    for (std::size_t b = 0; b < 8; ++b)
      if (f >= edges[b] && f < edges[b + 1]) sf[b] += 1 / n;
  }
  const std::array<double, 8> sfc{4, 4, 8, 25, 32, 26, 28, 12};
  for (std::size_t b = 0; b < 8; ++b) CHECK(sf[b] == Approx(sfc[b] / 139.0).margin(0.01));
  // nx and sf come from a Gaussian copula with correlation 0.75: their rank correlation is that of the
  // normals, (6 / pi) asin(0.75 / 2) = 0.7337 (monotone maps keep ranks).
  CHECK(pearson(ranks(p.nx), ranks(p.sf)) == Approx(6 / std::numbers::pi * std::asin(0.375)).margin(0.015));
  // Phase uniform on [0, 360): mean 180, variance 360^2 / 12.
  double m = 0, v = 0;
  for (double f : p.phase) m += f / n;
  for (double f : p.phase) v += (f - m) * (f - m) / n;
  CHECK(m == Approx(180).margin(2.0));
  CHECK(v == Approx(360.0 * 360.0 / 12).epsilon(0.02));
  // Envelope widths within Ringach's bins; ny's marginal over nx's first bins (rows 0-3 of the table).
  for (std::size_t i = 0; i < p.size(); ++i) {
    REQUIRE(p.nx[i] >= 0.1 - 1e-12);
    REQUIRE(p.nx[i] <= std::pow(10.0, 0.2) + 1e-12);
    REQUIRE(p.ny[i] >= 0.1 - 1e-12);
    REQUIRE(p.ny[i] <= std::pow(10.0, 0.2) + 1e-12);
  }
  const auto q = gabor::sample_v1_parameters({.features = 40000, .seed = 1, .sf_corr = 0.0});
  CHECK(std::abs(pearson(ranks(q.nx), ranks(q.sf))) < 0.02);
}

TEST_CASE("bad sampling options are refused", "[vone]") {
  CHECK_THROWS_WITH(gabor::sample_v1_parameters({.features = 0}), Catch::Contains("at least one feature"));
  CHECK_THROWS_WITH(gabor::sample_v1_parameters({.features = 4, .sf_corr = 1.5}), Catch::Contains("sf_corr"));
  CHECK_THROWS_WITH(gabor::sample_v1_parameters({.features = 4, .sf_max = 0.4}), Catch::Contains("no spatial-frequency bin"));
}

TEST_CASE("Gabor banks equal VOneNet's GFB.initialize", "[vone]") {
  const auto p = gabor::sample_v1_parameters({.features = 512, .seed = 0});
  const gabor::bank_options o{.in_channels = 3, .kernel_size = 25, .pixels_per_degree = 224.0 / 8};
  const tensor q0 = gabor::make_bank(p, channels_of(fixtures().at("bank.channels0")), o);
  gabor::bank_options o1 = o;
  o1.phase_offset = std::numbers::pi / 2;
  const tensor q1 = gabor::make_bank(p, channels_of(fixtures().at("bank.channels1")), o1);
  // torch builds the kernels in f32 from the same parameters; we compute in double and round once.
  CHECK(relative_error(q0, fixtures().at("bank.q0")) < 2e-6);
  CHECK(relative_error(q1, fixtures().at("bank.q1")) < 2e-6);
  CHECK(q0.dims() == shape{512, 3, 25, 25});
  CHECK_THROWS_WITH(gabor::make_bank(p, std::vector<int>(512, 3), o), Catch::Contains("outside [0, 3)"));
  CHECK_THROWS_WITH(gabor::make_bank(p, std::vector<int>(5, 0), o), Catch::Contains("5 channel choices for 512"));
}

TEST_CASE("denormal Gabor weights are flushed in the convolved copy only", "[vone]") {
  const auto p = gabor::sample_v1_parameters({.features = 512, .seed = 0});
  const gabor::bank_options o{.in_channels = 3, .kernel_size = 25, .pixels_per_degree = 224.0 / 8};
  const tensor bank = gabor::make_bank(p, channels_of(fixtures().at("bank.channels0")), o);
  auto denormals = [](const tensor& t) {
    std::size_t n = 0;
    for (float v : t.values<float>()) n += v != 0.0f && std::abs(v) < std::numeric_limits<float>::min();
    return n;
  };
  const std::size_t before = denormals(bank);
  INFO(before << " denormal weights in VOneNet's seed-0 bank");
  CHECK(before > 0);  // the slow case is real: the envelopes' tails underflow
  const variable kept(bank, false);
  const variable flushed = nn::without_denormals(kept);
  CHECK(denormals(flushed.value()) == 0);
  CHECK(denormals(bank) == before);  // the bank itself keeps VOneNet's values
  CHECK(relative_error(flushed.value(), bank) < 1e-30);
  const variable normal(tensor::full({4, 3, 5, 5}, 0.5), false);
  CHECK(nn::without_denormals(normal).value().storage_id() == normal.value().storage_id());  // nothing to copy
  // The convolution barely notices: outputs agree far below f32 resolution.
  std::mt19937 rng(11);
  const variable x(testing::uniform({1, 3, 32, 32}, rng, -1, 1, dtype::f32));
  const auto conv = ops::conv2d_params::square(4, 12);
  CHECK(relative_error(ops::conv2d(x, flushed, variable(), conv).value(), ops::conv2d(x, kept, variable(), conv).value()) <
        1e-6);
}

TEST_CASE("a small VOneBlock with its bottleneck equals the PyTorch reference", "[vone]") {
  nn::initializer rng(3);
  nn::vone_module m(small_block(), rng);
  // Our bank for the fixture's seed: each filter's one non-zero channel holds the reference kernel.
  const auto fq0 = fixtures().at("block.q0").values<double>();
  nn::state_list st;
  m.collect(st);
  REQUIRE(st.size() == 3);
  CHECK(st[0].name == "vone_block.simple_conv_q0.weight");
  CHECK(st[1].name == "vone_block.simple_conv_q1.weight");
  CHECK(st[2].name == "bottleneck.weight");
  CHECK_FALSE(st[0].trainable);
  CHECK_FALSE(st[1].trainable);
  CHECK(st[2].is_trainable());
  const auto ours = st[0].value().values<double>();
  double worst = 0, peak = 0;
  for (std::size_t f = 0; f < 8; ++f) {
    std::vector<double> a(49, 0.0), b(49, 0.0);
    for (std::size_t c = 0; c < 3; ++c)
      for (std::size_t k = 0; k < 49; ++k) a[k] += ours[(f * 3 + c) * 49 + k], b[k] += fq0[(f * 3 + c) * 49 + k];
    for (std::size_t k = 0; k < 49; ++k) worst = std::max(worst, std::abs(a[k] - b[k])), peak = std::max(peak, std::abs(b[k]));
  }
  CHECK(worst / peak < 1e-6);

  // With the fixture's weights: forward, input gradient and bottleneck gradient.
  io::tensor_dict w;
  w.add("vone_block.simple_conv_q0.weight", fixtures().at("block.q0"));
  w.add("vone_block.simple_conv_q1.weight", fixtures().at("block.q1"));
  w.add("bottleneck.weight", fixtures().at("block.bottleneck"));
  io::load_state_dict(st, w);
  variable x(fixtures().at("block.x").clone(), true);
  nn::tap_registry taps;
  tensor vone;
  taps.on("vone_block", [&](const std::string&, int, const tensor& t) { vone = t.to_layout(layout::plain).clone(); });
  const variable y = m.forward<backends::default_backend>(x, nn::forward_context{false, &taps});
  CHECK(relative_error(vone, fixtures().at("block.vone")) < 1e-5);
  CHECK(relative_error(y.value().to_layout(layout::plain), fixtures().at("block.out")) < 1e-5);
  autograd::backward(y, fixtures().at("block.seed"));
  CHECK(relative_error(x.grad().to_layout(layout::plain), fixtures().at("block.grad_x")) < 1e-5);
  const auto& bw = *st[2].parameter;
  CHECK(relative_error(bw.grad().to_layout(layout::plain), fixtures().at("block.grad_bottleneck")) < 1e-5);
  CHECK_FALSE(st[0].parameter->grad().defined());  // the fixed banks get no gradient
}

TEST_CASE("VOneBlock noise: fresh by default, in evaluation too; fixed by a seed; off on request", "[vone]") {
  nn::initializer rng(4);
  nn::vone_options o = small_block(nn::vone_noise::neuronal);
  o.k_exc = 400;  // large responses: the final ReLU never clips the noise of the units measured below
  nn::vone_module m(o, rng);
  nn::initializer rng2(4);
  nn::vone_options quiet = o;
  quiet.noise = nn::vone_noise::none;
  nn::vone_module clean(quiet, rng2);  // same seed: the same banks and bottleneck
  std::mt19937 g(9);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> xv(4 * 3 * 16 * 16);
  for (auto& e : xv) e = u(g);
  const variable x(tensor::from_values(shape{4, 3, 16, 16}, xv));
  auto grab = [&](nn::vone_module& mod) {
    nn::tap_registry taps;
    tensor v;
    taps.on("vone_block", [&](const std::string&, int, const tensor& t) { v = t.to_layout(layout::plain).clone(); });
    mod.forward<backends::default_backend>(x, nn::forward_context{false, &taps});
    return v;
  };
  const tensor r = grab(clean);
  const tensor a = grab(m), b = grab(m);
  CHECK(relative_error(a, b) > 1e-3);  // a new draw on every call, in evaluation mode
  // Standardised noise (y * scale + level - t) / sqrt(t + 1e-4) with t = r * scale + level is N(0, 1).
  const auto av = a.values<double>(), rv = r.values<double>();
  double s = 0, s2 = 0, cnt = 0;
  for (std::size_t i = 0; i < av.size(); ++i) {
    const double t = rv[i] * 0.35 + 0.07;
    if (t < 9) continue;
    const double z = (av[i] * 0.35 + 0.07 - t) / std::sqrt(t + 1e-4);
    s += z, s2 += z * z, cnt += 1;
  }
  REQUIRE(cnt > 500);
  CHECK(s / cnt == Approx(0).margin(4 / std::sqrt(cnt)));
  CHECK(std::sqrt(s2 / cnt - (s / cnt) * (s / cnt)) == Approx(1).margin(0.08));

  m.fix_noise(17);
  const tensor f1 = grab(m), f2 = grab(m);
  CHECK(relative_error(f1, f2) == 0.0);
  nn::initializer rng3(4);
  nn::vone_module other(o, rng3);
  other.fix_noise(17);
  CHECK(relative_error(grab(other), f1) == 0.0);
  m.release_noise();
  CHECK(relative_error(grab(m), f1) > 1e-3);
  m.disable_noise();
  CHECK(relative_error(grab(m), r) < 1e-6);
}

TEST_CASE("vone_response refuses inputs that do not fit", "[vone]") {
  const variable q0(tensor::zeros({1, 4, 2, 2})), q1(tensor::zeros({1, 2, 2, 2})), bad(tensor::zeros({1, 3, 2, 2}));
  CHECK_THROWS_WITH(ops::vone_response(q0, q1, tensor(), {.simple_channels = 5}), Catch::Contains("5 simple channels"));
  CHECK_THROWS_WITH(ops::vone_response(q0, bad, tensor(), {.simple_channels = 2}), Catch::Contains("q1 expected shape"));
  CHECK_THROWS_WITH(ops::vone_response(q0, q1, tensor(), {.simple_channels = 2, .noise = ops::vone_math::noise_neuronal}),
                    Catch::Contains("needs a noise map"));
  CHECK_THROWS_WITH(ops::vone_response(q0, q1, tensor::zeros({1, 4, 2, 3}),
                                       {.simple_channels = 2, .noise = ops::vone_math::noise_gaussian}),
                    Catch::Contains("eps expected shape"));
}

namespace {
constexpr nn::vone_options tiny{.simple_channels = 4, .complex_channels = 4, .kernel_size = 7, .stride = 2,
                                .out_channels = 32, .image_size = 32, .visual_degrees = 8};
using tiny_vone_topology = nn::topology<nn::vone_stem<tiny>, nn::grcl<"stage_1", nn::cifar_grcl({.in = 32, .planes = 16, .iterations = 1, .downsample = false})>,
                                        nn::classifier_head<64, 0, 0.05>>;
}  // namespace

TEST_CASE("fixed Gabor banks are saved and loaded but never trained", "[vone]") {
  nn::network<tiny_vone_topology> net(5, 1);
  const auto st = net.state();
  REQUIRE(st.size() > 3);
  CHECK(st[0].name == "vone_block.simple_conv_q0.weight");
  const tensor bank = st[0].value().clone(), bottleneck = st[2].value().to_layout(layout::plain).clone();
  CHECK(net.parameter_count() == net.trainable_parameter_count() + 2 * 8 * 3 * 7 * 7);
  for (auto* p : net.parameters()) CHECK(p != st[0].parameter);
  train::sgd opt(net.parameters(), train::param_group{.lr = 0.1, .weight_decay = 0.1, .momentum = 0.9});
  net.train();
  std::vector<float> xv(2 * 3 * 16 * 16, 0.25f);
  for (std::size_t i = 0; i < xv.size(); i += 7) xv[i] = -0.5f;
  const variable logits = net.forward(variable(tensor::from_values(shape{2, 3, 16, 16}, xv)));
  CHECK(logits.dims() == shape{2, 5});
  autograd::backward(ops::cross_entropy(logits, tensor::from_values(shape{2}, std::vector<std::int64_t>{1, 3})));
  opt.step();
  CHECK(relative_error(net.state()[0].value(), bank) == 0.0);
  CHECK(relative_error(net.state()[2].value().to_layout(layout::plain), bottleneck) > 0.0);
  // A round trip through a state dict carries the banks.
  nn::network<tiny_vone_topology> copy(5, 2);
  // The same gabor_seed samples the same kernels; the network seed only places them in other input channels.
  auto channel_sum = [](const tensor& t) {
    const auto v = t.values<double>();
    std::vector<double> s(v.size() / 3, 0.0);
    for (std::size_t f = 0; f < 8; ++f)
      for (std::size_t c = 0; c < 3; ++c)
        for (std::size_t k = 0; k < 49; ++k) s[f * 49 + k] += v[(f * 3 + c) * 49 + k];
    return tensor::from_values(shape{static_cast<std::int64_t>(s.size())}, s);
  };
  CHECK(relative_error(channel_sum(copy.state()[0].value()), channel_sum(bank)) == 0.0);
  io::load_state_dict(copy.state(), io::state_dict(net.state()));
  CHECK(relative_error(copy.state()[1].value(), net.state()[1].value()) == 0.0);
}

TEST_CASE("VOne-GRCNN55 has VOneNet's parameter counts and names", "[vone]") {
  models::vone_grcnn55<> net(1000);
  CHECK(net.parameter_count() == 26'836'072);
  CHECK(net.trainable_parameter_count() == 24'916'072);
  const auto st = net.state();
  CHECK(st.size() == 422);  // grcnn55's 426 without conv1, bn1 (5 entries) and conv2, plus the 3 VOne entries
  CHECK(st[0].name == "vone_block.simple_conv_q0.weight");
  CHECK(st[0].value().dims() == shape{512, 3, 25, 25});
  CHECK(st[2].name == "bottleneck.weight");
  CHECK(st[2].value().dims() == shape{64, 512, 1, 1});
  CHECK(st[3].name.rfind("layer1.", 0) == 0);
  CHECK(st.back().name == "classifier.bias");
  // Bottleneck init: kaiming normal, fan_out (64), ReLU gain: std sqrt(2 / 64) = 0.177.
  const auto w = st[2].value().values<double>();
  double s2 = 0;
  for (double v : w) s2 += v * v;
  CHECK(std::sqrt(s2 / static_cast<double>(w.size())) == Approx(std::sqrt(2.0 / 64)).epsilon(0.02));
  // The stem maps a 224 image to GRCNN's 64 x 56 x 56 post-conv2 tensor.
  auto& stem = net.module<nn::vone_module>();
  stem.fix_noise(1);
  const variable y = stem.forward<backends::default_backend>(variable(tensor::full({1, 3, 224, 224}, 0.1)),
                                                             nn::forward_context{false, nullptr});
  CHECK(y.dims() == shape{1, 64, 56, 56});
}
