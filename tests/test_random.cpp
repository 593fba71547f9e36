// Counter-based normal draws (core/philox.hpp, core/random.hpp): Philox4x32-10 against Random123's
// known answers, the float math against libm in double, the distribution against N(0, 1), and the
// draws' independence of layout, dtype, batch and ISA.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include <grcnn/core/random.hpp>

using namespace grcnn;

namespace {
struct isa_limit_guard {
  cpu_isa saved = cpu_isa_limit();
  ~isa_limit_guard() { set_cpu_isa_limit(saved); }
};
// Box-Muller of the same four words in double with libm: what the float path approximates.
std::array<double, 4> normal4_in_double(std::uint64_t seed, std::uint64_t stream, std::uint32_t sample,
                                        std::uint32_t group) {
  const auto w = philox::philox4x32_10(
      {{group, sample, static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)}},
      static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
  auto open = [](std::uint32_t x) { return ((x >> 9) + 0.5) / 8388608.0; };
  auto half = [](std::uint32_t x) { return (x >> 8) / 16777216.0; };
  const double r0 = std::sqrt(-2 * std::log(open(w.v[0]))), r1 = std::sqrt(-2 * std::log(open(w.v[2])));
  const double t0 = 2 * M_PI * half(w.v[1]), t1 = 2 * M_PI * half(w.v[3]);
  return {r0 * std::cos(t0), r0 * std::sin(t0), r1 * std::cos(t1), r1 * std::sin(t1)};
}
}  // namespace

TEST_CASE("Philox4x32-10 gives Random123's known answers", "[random]") {
  // Random123 tests/kat_vectors, the three "philox4x32 10" lines: counter, key, expected.
  struct kat {
    philox::block ctr;
    std::uint32_t k0, k1;
    philox::block want;
  };
  const kat cases[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}}},
      {{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu, 0xffffffffu,
       {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}}},
      {{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u, 0x299f31d0u,
       {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}}},
  };
  for (const auto& c : cases) {
    const auto got = philox::philox4x32_10(c.ctr, c.k0, c.k1);
    for (int i = 0; i < 4; ++i) CHECK(got.v[i] == c.want.v[i]);
  }
}

TEST_CASE("the draws' float log, sqrt and sincos are within 1.5e-7 of libm in double", "[random]") {
  double log_err = 0, sqrt_err = 0, trig_err = 0;
  bool finite = true;
  for (std::uint32_t m = 0; m < (1u << 23); ++m) {  // every argument the logarithm sees
    const float u = philox::open_unit(m << 9);
    finite = finite && u > 0.0f && u < 1.0f;
    const double want_log = std::log(double(u));
    log_err = std::max(log_err, std::abs(philox::log_positive(u) - want_log) / std::abs(want_log));
    const float x = -2.0f * philox::log_positive(u);
    sqrt_err = std::max(sqrt_err, std::abs(philox::sqrt_positive(x) - std::sqrt(double(x))) / std::sqrt(double(x)));
  }
  for (std::uint32_t m = 0; m < (1u << 24); ++m) {  // every fraction of a turn
    float s, c;
    const float t = philox::half_open_unit(m << 8);
    philox::sincos_turns(t, s, c);
    trig_err = std::max({trig_err, std::abs(s - std::sin(2 * M_PI * t)), std::abs(c - std::cos(2 * M_PI * t))});
  }
  INFO("log " << log_err << ", sqrt " << sqrt_err << ", sincos " << trig_err);
  CHECK(finite);  // the logarithm's argument stays strictly inside (0, 1)
  CHECK(log_err < 1.5e-7);  // NaN fails these comparisons
  CHECK(sqrt_err < 1.5e-7);
  CHECK(trig_err < 1.5e-7);
  // The extremes: |z| reaches sqrt(-2 ln 2^-24) = 5.768 at most.
  CHECK(philox::sqrt_positive(-2.0f * philox::log_positive(philox::open_unit(0))) == Approx(5.768).epsilon(1e-3));
}

TEST_CASE("standard_normal draws N(0, 1): moments, Kolmogorov-Smirnov, no serial correlation", "[random]") {
  const tensor t = standard_normal({16, 65536}, {.seed = 2024, .stream = 7});
  const auto v = t.values<double>();
  const double n = static_cast<double>(v.size());
  double m1 = 0, m2 = 0, m3 = 0, m4 = 0, lag1 = 0, lag4 = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    m1 += v[i], m2 += v[i] * v[i], m3 += v[i] * v[i] * v[i], m4 += v[i] * v[i] * v[i] * v[i];
    if (i >= 1) lag1 += v[i] * v[i - 1];
    if (i >= 4) lag4 += v[i] * v[i - 4];
  }
  m1 /= n, m2 /= n, m3 /= n, m4 /= n, lag1 /= n, lag4 /= n;
  INFO("mean " << m1 << " var " << m2 << " skew " << m3 << " kurtosis " << m4 << " lag-1 " << lag1 << " lag-4 " << lag4);
  const double se = 1 / std::sqrt(n);  // standard error of a mean of unit-variance terms
  CHECK(std::abs(m1) < 4 * se);
  CHECK(std::abs(m2 - 1) < 4 * std::sqrt(2.0) * se);
  CHECK(std::abs(m3) < 4 * std::sqrt(15.0) * se);
  CHECK(std::abs(m4 - 3) < 4 * std::sqrt(96.0) * se);
  CHECK(std::abs(lag1) < 4 * se);  // within a Box-Muller pair and across groups
  CHECK(std::abs(lag4) < 4 * se);
  std::vector<double> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  double ks = 0;
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const double cdf = 0.5 * std::erfc(-sorted[i] / std::sqrt(2.0));
    ks = std::max({ks, std::abs(cdf - i / n), std::abs(cdf - (i + 1) / n)});
  }
  INFO("Kolmogorov-Smirnov D = " << ks << " (0.1% critical value " << 1.95 / std::sqrt(n) << ")");
  CHECK(ks < 1.95 / std::sqrt(n));
}

TEST_CASE("a draw depends on its key, sample and logical index only", "[random]") {
  const normal_key key{.seed = 0x1234567890abcdefull, .stream = 3};
  const tensor a = standard_normal({3, 5, 3, 3}, key);  // 45 per sample: groups straddle channels
  const auto av = a.values<float>();
  SECTION("each value is the draw of its (sample, index), as the double-precision Box-Muller gives it") {
    for (std::uint32_t s = 0; s < 3; ++s)
      for (std::uint32_t j = 0; j < 45; ++j) {
        const double want = normal4_in_double(key.seed, key.stream, s, j / 4)[j % 4];
        CHECK(av[s * 45 + j] == Approx(want).margin(2e-6));
      }
  }
  SECTION("a sample's draws do not depend on the batch size") {
    const auto bigger = standard_normal({5, 5, 3, 3}, key).values<float>();
    CHECK(std::equal(av.begin(), av.end(), bigger.begin()));
  }
  SECTION("channels-last holds the same draws in its own order") {
    const tensor cl = standard_normal({3, 5, 3, 3}, key, dtype::f32, layout::nhwc);
    CHECK(cl.memory_layout() == layout::nhwc);
    CHECK(cl.values<float>() == av);  // values() reads in logical order
    const tensor wide = standard_normal({2, 37, 9, 31}, key, dtype::f32, layout::nhwc);  // several channel/position blocks
    CHECK(wide.values<float>() == standard_normal({2, 37, 9, 31}, key).values<float>());
  }
  SECTION("bf16, f16 and f64 hold the float draws rounded or widened") {
    const auto b = standard_normal({3, 5, 3, 3}, key, dtype::bf16, layout::nhwc).values<float>();
    const auto h = standard_normal({3, 5, 3, 3}, key, dtype::f16).values<float>();
    const auto d = standard_normal({3, 5, 3, 3}, key, dtype::f64).values<double>();
    for (std::size_t i = 0; i < av.size(); ++i) {
      CHECK(b[i] == static_cast<float>(bf16(av[i])));
      CHECK(h[i] == static_cast<float>(f16(av[i])));
      CHECK(d[i] == static_cast<double>(av[i]));
    }
  }
  SECTION("another stream or seed draws other values") {
    const auto s = standard_normal({3, 5, 3, 3}, {key.seed, key.stream + 1}).values<float>();
    const auto k = standard_normal({3, 5, 3, 3}, {key.seed + 1, key.stream}).values<float>();
    std::size_t same_s = 0, same_k = 0;
    for (std::size_t i = 0; i < av.size(); ++i) same_s += s[i] == av[i], same_k += k[i] == av[i];
    CHECK(same_s == 0);
    CHECK(same_k == 0);
  }
  SECTION("rank 0, rank 1 and empty tensors") {
    CHECK(standard_normal({}, key).values<float>()[0] == Approx(normal4_in_double(key.seed, key.stream, 0, 0)[0]).margin(2e-6));
    const auto r1 = standard_normal({4}, key).values<float>();  // one value per sample
    for (std::uint32_t s = 0; s < 4; ++s) CHECK(r1[s] == Approx(normal4_in_double(key.seed, key.stream, s, 0)[0]).margin(2e-6));
    CHECK(standard_normal({0, 3}, key).numel() == 0);
  }
}

TEST_CASE("every CPU ISA draws the same values up to fused multiply-adds", "[random]") {
  const isa_limit_guard guard;
  set_cpu_isa_limit(cpu_isa::baseline);
  const auto base = standard_normal({4, 3, 17, 19}, {.seed = 9, .stream = 1}).values<float>();
  for (cpu_isa isa : {cpu_isa::avx2, cpu_isa::avx512}) {
    if (static_cast<int>(isa) > static_cast<int>(detected_cpu_isa())) continue;
    set_cpu_isa_limit(isa);
    const auto v = standard_normal({4, 3, 17, 19}, {.seed = 9, .stream = 1}).values<float>();
    double worst = 0;
    for (std::size_t i = 0; i < v.size(); ++i) worst = std::max(worst, double(std::abs(v[i] - base[i])));
    INFO(name_of(isa) << ": largest difference to the baseline ISA " << worst << " (FMA contraction)");
    CHECK(worst < 2e-6);
  }
}

TEST_CASE("standard_normal refuses what it cannot draw", "[random][errors]") {
  CHECK_THROWS_WITH(standard_normal({2, 3}, {}, dtype::i64), Catch::Contains("dtype must be floating point"));
  CHECK_THROWS_WITH(standard_normal({2, 3}, {}, dtype::f32, layout::nhwc), Catch::Contains("nhwc needs a rank-4 shape"));
  CHECK_THROWS_WITH(standard_normal({1, std::int64_t(1) << 35}, {}), Catch::Contains("exceeds the draw counter"));
}
