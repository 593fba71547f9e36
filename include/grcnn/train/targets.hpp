#pragma once
// Training targets: one-hot labels with GRCNN's label smoothing (1 - eps on the true class, eps/(K-1)
// on each other class; PyTorch's own smoothing, eps/K everywhere, is ops::cross_entropy_options),
// mixup of a batch with a permutation of itself, and the SK recipe's smoothing of mixed targets.
// The soft targets feed ops::cross_entropy, which is linear in the target, so
// CE(out, lam*a + (1-lam)*b) = lam*CE(out, a) + (1-lam)*CE(out, b) exactly as the mixup papers write it.
#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "grcnn/core/tensor.hpp"

namespace grcnn::train {

// One-hot [N, K] f32 with GRCNN's smoothing: target (1 - eps) on the label, eps / (K - 1) elsewhere.
inline tensor smoothed_one_hot(const std::vector<std::int64_t>& labels, std::int64_t classes, double eps,
                               dtype t = dtype::f32) {
  GRCNN_CHECK(classes >= 2, shape_error, "smoothed_one_hot: needs at least 2 classes, got ", classes);
  GRCNN_CHECK(eps >= 0 && eps <= 1, error, "smoothed_one_hot: smoothing ", eps, " outside [0, 1]");
  const auto n = static_cast<std::int64_t>(labels.size());
  std::vector<double> v(static_cast<std::size_t>(n * classes), eps / static_cast<double>(classes - 1));
  for (std::int64_t i = 0; i < n; ++i) {
    GRCNN_CHECK(labels[static_cast<std::size_t>(i)] >= 0 && labels[static_cast<std::size_t>(i)] < classes, shape_error,
                "smoothed_one_hot: label ", labels[static_cast<std::size_t>(i)], " at position ", i, " outside [0, ", classes, ")");
    v[static_cast<std::size_t>(i * classes + labels[static_cast<std::size_t>(i)])] = 1.0 - eps;
  }
  return tensor::from_values(shape{n, classes}, v, t);
}

// A draw from Beta(a, a) through two gamma variates (std::gamma_distribution is specified exactly
// enough to be reproducible per standard library).
template <class Rng>
double sample_beta(double a, double b, Rng& rng) {
  GRCNN_CHECK(a > 0 && b > 0, error, "sample_beta: parameters must be positive, got ", a, ", ", b);
  const double x = std::gamma_distribution<double>(a, 1.0)(rng), y = std::gamma_distribution<double>(b, 1.0)(rng);
  return x + y > 0 ? x / (x + y) : 0.5;
}

struct mixup_result {
  double lambda = 1.0;
  std::vector<std::int64_t> permutation;  // image i is mixed with image permutation[i]
};

// Mixes a batch in place: x = lam * x + (1 - lam) * x[perm] with lam ~ Beta(alpha, alpha) and perm a
// uniform random permutation (the SK GRCNN recipe: one lambda per batch).
template <class Rng>
mixup_result mixup(tensor& images, double alpha, Rng& rng) {
  GRCNN_CHECK(images.rank() >= 2 && images.type() == dtype::f32 && images.memory_layout() != layout::opaque, shape_error,
              "mixup: needs an f32 batch, got ", images.describe());
  mixup_result r;
  r.lambda = sample_beta(alpha, alpha, rng);
  const auto n = images.dim(0);
  r.permutation.resize(static_cast<std::size_t>(n));
  std::iota(r.permutation.begin(), r.permutation.end(), 0);
  std::shuffle(r.permutation.begin(), r.permutation.end(), rng);
  // Every layout we use keeps a sample's values contiguous and in the same order for each sample.
  const std::size_t per = static_cast<std::size_t>(images.numel() / n);
  const tensor src = images.clone();
  const float* s = src.data<float>();
  float* d = images.data<float>();
  const auto lam = static_cast<float>(r.lambda);
  for (std::int64_t i = 0; i < n; ++i) {
    const float* a = s + static_cast<std::size_t>(i) * per;
    const float* b = s + static_cast<std::size_t>(r.permutation[static_cast<std::size_t>(i)]) * per;
    float* o = d + static_cast<std::size_t>(i) * per;
    for (std::size_t k = 0; k < per; ++k) o[k] = lam * a[k] + (1.0f - lam) * b[k];
  }
  return r;
}

// The mixed target lam * onehot(y) + (1 - lam) * onehot(y[perm]) as [N, K].
inline tensor mixed_one_hot(const std::vector<std::int64_t>& labels, std::int64_t classes, const mixup_result& m) {
  const auto n = static_cast<std::int64_t>(labels.size());
  GRCNN_CHECK(m.permutation.size() == labels.size(), shape_error, "mixed_one_hot: ", labels.size(), " labels but a permutation of ",
              m.permutation.size());
  std::vector<double> v(static_cast<std::size_t>(n * classes), 0.0);
  for (std::int64_t i = 0; i < n; ++i) {
    const auto a = labels[static_cast<std::size_t>(i)], b = labels[static_cast<std::size_t>(m.permutation[static_cast<std::size_t>(i)])];
    GRCNN_CHECK(a >= 0 && a < classes && b >= 0 && b < classes, shape_error, "mixed_one_hot: label outside [0, ", classes, ")");
    v[static_cast<std::size_t>(i * classes + a)] += m.lambda;
    v[static_cast<std::size_t>(i * classes + b)] += 1.0 - m.lambda;
  }
  return tensor::from_values(shape{n, classes}, v, dtype::f32);
}

// The SK recipe's smoothing of a (mixed) target row: eps / (#nonzero) is taken from each nonzero entry
// and eps / (#zero) given to each zero entry.
inline void smooth_mixed(tensor& target, double eps) {
  GRCNN_CHECK(target.rank() == 2 && target.type() == dtype::f32 && target.memory_layout() == layout::plain, shape_error,
              "smooth_mixed: needs a plain f32 [N, K] target, got ", target.describe());
  const auto K = target.dim(1);
  float* t = target.data<float>();
  for (std::int64_t i = 0; i < target.dim(0); ++i) {
    float* row = t + i * K;
    const auto nonzero = std::count_if(row, row + K, [](float x) { return x != 0.0f; });
    const auto zero = K - nonzero;
    for (std::int64_t k = 0; k < K; ++k)
      row[k] = row[k] != 0.0f ? static_cast<float>(row[k] - eps / static_cast<double>(nonzero))
                              : (zero > 0 ? static_cast<float>(eps / static_cast<double>(zero)) : 0.0f);
  }
}

}  // namespace grcnn::train
