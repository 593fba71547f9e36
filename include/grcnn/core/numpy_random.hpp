#pragma once
// numpy.random.RandomState(seed), the legacy generator that VOneNet's parameter sampling and
// sklearn's splitters draw from: MT19937 seeded by init_genrand, doubles from 53 bits of two draws,
// normals by the polar Box-Muller method that keeps its second value (legacy_gauss), bounded
// integers by masked rejection (random_interval) and permutations by numpy's Fisher-Yates order.
// Replaying it lets a seed give the very numbers the Python original gives.
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

namespace grcnn {

class numpy_legacy_rng {
 public:
  explicit numpy_legacy_rng(std::uint32_t seed) : mt_(seed) {}
  std::uint32_t next_uint32() { return static_cast<std::uint32_t>(mt_()); }
  double random_sample() {
    const auto a = next_uint32() >> 5, b = next_uint32() >> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
  }
  double standard_normal() {
    if (has_gauss_) {
      has_gauss_ = false;
      return gauss_;
    }
    double x1, x2, r2;
    do {
      x1 = 2.0 * random_sample() - 1.0;
      x2 = 2.0 * random_sample() - 1.0;
      r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1.0 || r2 == 0.0);
    const double f = std::sqrt(-2.0 * std::log(r2) / r2);
    gauss_ = f * x1;
    has_gauss_ = true;
    return f * x2;
  }
  // A uniform integer in [0, max] (numpy's random_interval; max below 2^32).
  std::uint32_t interval(std::uint32_t max) {
    if (max == 0) return 0;
    std::uint32_t mask = max;
    mask |= mask >> 1, mask |= mask >> 2, mask |= mask >> 4, mask |= mask >> 8, mask |= mask >> 16;
    std::uint32_t v;
    while ((v = next_uint32() & mask) > max) {
    }
    return v;
  }
  // RandomState.permutation(n): arange(n) shuffled from the last position down.
  std::vector<std::int64_t> permutation(std::int64_t n) {
    std::vector<std::int64_t> p(static_cast<std::size_t>(n));
    std::iota(p.begin(), p.end(), std::int64_t{0});
    for (std::int64_t i = n - 1; i >= 1; --i)
      std::swap(p[static_cast<std::size_t>(i)], p[interval(static_cast<std::uint32_t>(i))]);
    return p;
  }

 private:
  std::mt19937 mt_;
  bool has_gauss_ = false;
  double gauss_ = 0.0;
};

}  // namespace grcnn
