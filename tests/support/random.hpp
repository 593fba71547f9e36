#pragma once
// Seeded random tensors for tests (values generated in logical order, so layouts do not change them).
#include <cmath>
#include <random>
#include <vector>

#include <grcnn/core/tensor.hpp>

namespace grcnn::testing {

inline tensor uniform(const shape& s, std::mt19937& rng, double lo = -1.0, double hi = 1.0, dtype t = dtype::f64,
                      layout l = layout::plain) {
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<double> v(static_cast<std::size_t>(s.numel()));
  for (auto& e : v) e = d(rng);
  return tensor::from_values(s, v, t, l);
}

// Rows of probabilities (each row positive, summing to 1).
inline tensor probabilities(std::int64_t n, std::int64_t k, std::mt19937& rng, dtype t = dtype::f64) {
  std::uniform_real_distribution<double> d(0.05, 1.0);
  std::vector<double> v(static_cast<std::size_t>(n * k));
  for (std::int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (std::int64_t j = 0; j < k; ++j) s += v[static_cast<std::size_t>(i * k + j)] = d(rng);
    for (std::int64_t j = 0; j < k; ++j) v[static_cast<std::size_t>(i * k + j)] /= s;
  }
  return tensor::from_values(shape{n, k}, v, t);
}

inline tensor labels(std::int64_t n, std::int64_t k, std::mt19937& rng) {
  std::uniform_int_distribution<std::int64_t> d(0, k - 1);
  std::vector<std::int64_t> v(static_cast<std::size_t>(n));
  for (auto& e : v) e = d(rng);
  return tensor::from_values(shape{n}, v);
}

}  // namespace grcnn::testing
