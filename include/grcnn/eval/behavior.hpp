#pragma once
// Image-level behavioural consistency, i2n (Rajalingham et al. 2018, as Brain-Score's i1i2 metric):
// - model side: class probabilities P (images x objects) become 2AFC choice rates
//   p(i, b) = P[i, b] / (P[i, b] + P[i, truth(i)]) for every distractor b (NaN for b = truth);
// - human side: p(i, b) = trials on image i choosing b / trials on image i where b was target or
//   distractor;
// - d'(i, b) = z(1 - p(i, b)) - z(FAR), FAR = mean over images i' of object b of p(i', truth(i)),
//   clipped to [-5, 5]; "n": the mean over images of the same (truth, distractor) is subtracted;
// - consistency: Pearson r over the entries finite in both matrices;
// - splits: human trials shuffled by numpy's RandomState(seed) and halved, per split; the model is
//   correlated with the first half, the ceiling is r(first half, second half) (no Spearman-Brown);
//   ceiled = mean over splits of r_model / sqrt(r_halves).
// The readout that produces P is eval/logistic.hpp. Human data are the caller's (Rajalingham 2018's are
// not public); the tests use synthetic observers with a known answer.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <Eigen/Dense>

#include "grcnn/core/error.hpp"
#include "grcnn/core/numpy_random.hpp"

namespace grcnn::eval {

// One 2AFC trial: the image shown (row index), its object (target), the distractor offered, the choice.
struct afc_trial {
  std::int64_t image = 0, target = 0, distractor = 0, choice = 0;
};

namespace behavior_detail {
inline constexpr double nan = std::numeric_limits<double>::quiet_NaN();
// The standard normal quantile (scipy.stats.norm.ppf): Acklam's rational approximation refined by one
// Halley step on erfc, accurate to double precision; 0 -> -inf, 1 -> +inf, NaN stays NaN.
inline double norm_ppf(double p) {
  if (std::isnan(p) || p < 0 || p > 1) return nan;
  if (p == 0) return -std::numeric_limits<double>::infinity();
  if (p == 1) return std::numeric_limits<double>::infinity();
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                             1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00};
  double x;
  if (p < 0.02425) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p > 1 - 0.02425) {
    const double q = std::sqrt(-2 * std::log1p(-p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  }
  for (int k = 0; k < 2; ++k) {  // Halley steps on Phi(x) - p
    const double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
    const double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
    x -= u / (1 + x * u / 2);
  }
  return x;
}
inline void check_truth(const std::vector<std::int64_t>& truth, std::int64_t objects, const char* what) {
  for (auto t : truth) GRCNN_CHECK(t >= 0 && t < objects, error, what, ": object ", t, " outside [0, ", objects, ")");
}
}  // namespace behavior_detail

// Model choice rates from class probabilities (images x objects).
inline Eigen::MatrixXd model_response_matrix(const Eigen::MatrixXd& P, const std::vector<std::int64_t>& truth) {
  GRCNN_CHECK(P.rows() == static_cast<Eigen::Index>(truth.size()), shape_error, "i2n: ", P.rows(), " images of probabilities, ",
              truth.size(), " labels");
  behavior_detail::check_truth(truth, P.cols(), "i2n");
  Eigen::MatrixXd r(P.rows(), P.cols());
  for (Eigen::Index i = 0; i < P.rows(); ++i) {
    const double pt = P(i, truth[static_cast<std::size_t>(i)]);
    for (Eigen::Index b = 0; b < P.cols(); ++b)
      r(i, b) = b == truth[static_cast<std::size_t>(i)] ? behavior_detail::nan : P(i, b) / (P(i, b) + pt);
  }
  return r;
}

// Human choice rates from trials (images x objects); NaN where an object never appeared with an image.
inline Eigen::MatrixXd human_response_matrix(const std::vector<afc_trial>& trials, const std::vector<std::int64_t>& truth,
                                             std::int64_t objects) {
  behavior_detail::check_truth(truth, objects, "i2n");
  const auto I = static_cast<Eigen::Index>(truth.size());
  Eigen::MatrixXd chosen = Eigen::MatrixXd::Zero(I, objects), shown = Eigen::MatrixXd::Zero(I, objects);
  for (const auto& t : trials) {
    GRCNN_CHECK(t.image >= 0 && t.image < I && t.target == truth[static_cast<std::size_t>(t.image)] && t.distractor >= 0 &&
                    t.distractor < objects && t.distractor != t.target && (t.choice == t.target || t.choice == t.distractor),
                error, "i2n: inconsistent trial (image ", t.image, ", target ", t.target, ", distractor ", t.distractor,
                ", choice ", t.choice, ")");
    chosen(t.image, t.choice) += 1;
    shown(t.image, t.target) += 1;
    shown(t.image, t.distractor) += 1;
  }
  Eigen::MatrixXd r(I, objects);
  for (Eigen::Index i = 0; i < I; ++i)
    for (Eigen::Index b = 0; b < objects; ++b)
      r(i, b) = (b == truth[static_cast<std::size_t>(i)] || shown(i, b) == 0) ? behavior_detail::nan : chosen(i, b) / shown(i, b);
  return r;
}

// Normalised, clipped d' (images x objects) from a choice-rate matrix.
inline Eigen::MatrixXd normalized_dprimes(const Eigen::MatrixXd& rates, const std::vector<std::int64_t>& truth, double cap = 5) {
  using behavior_detail::nan;
  using behavior_detail::norm_ppf;
  const auto I = rates.rows(), K = rates.cols();
  GRCNN_CHECK(I == static_cast<Eigen::Index>(truth.size()), shape_error, "i2n: ", I, " images, ", truth.size(), " labels");
  behavior_detail::check_truth(truth, K, "i2n");
  // FAR(a, b): mean over images of object b of their rate of choosing a (NaNs skipped).
  Eigen::MatrixXd far_sum = Eigen::MatrixXd::Zero(K, K), far_n = Eigen::MatrixXd::Zero(K, K);
  for (Eigen::Index i = 0; i < I; ++i)
    for (Eigen::Index a = 0; a < K; ++a)
      if (!std::isnan(rates(i, a))) far_sum(a, truth[static_cast<std::size_t>(i)]) += rates(i, a), far_n(a, truth[static_cast<std::size_t>(i)]) += 1;
  Eigen::MatrixXd d(I, K);
  for (Eigen::Index i = 0; i < I; ++i) {
    const auto a = truth[static_cast<std::size_t>(i)];
    for (Eigen::Index b = 0; b < K; ++b) {
      if (std::isnan(rates(i, b)) || far_n(a, b) == 0) {
        d(i, b) = nan;
        continue;
      }
      const double v = norm_ppf(1 - rates(i, b)) - norm_ppf(far_sum(a, b) / far_n(a, b));
      d(i, b) = std::isnan(v) ? nan : std::clamp(v, -cap, cap);
    }
  }
  // Subtract the mean over images of the same (truth, distractor).
  Eigen::MatrixXd sum = Eigen::MatrixXd::Zero(K, K), count = Eigen::MatrixXd::Zero(K, K);
  for (Eigen::Index i = 0; i < I; ++i)
    for (Eigen::Index b = 0; b < K; ++b)
      if (!std::isnan(d(i, b))) sum(truth[static_cast<std::size_t>(i)], b) += d(i, b), count(truth[static_cast<std::size_t>(i)], b) += 1;
  for (Eigen::Index i = 0; i < I; ++i)
    for (Eigen::Index b = 0; b < K; ++b)
      if (!std::isnan(d(i, b))) d(i, b) -= sum(truth[static_cast<std::size_t>(i)], b) / count(truth[static_cast<std::size_t>(i)], b);
  return d;
}

// Pearson r over the entries finite in both matrices.
inline double i2n_consistency(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  GRCNN_CHECK(a.rows() == b.rows() && a.cols() == b.cols(), shape_error, "i2n: matrices differ in shape");
  std::vector<double> x, y;
  for (Eigen::Index j = 0; j < a.cols(); ++j)
    for (Eigen::Index i = 0; i < a.rows(); ++i)
      if (std::isfinite(a(i, j)) && std::isfinite(b(i, j))) x.push_back(a(i, j)), y.push_back(b(i, j));
  GRCNN_CHECK(x.size() >= 2, error, "i2n: fewer than 2 entries defined in both matrices");
  const Eigen::Map<const Eigen::VectorXd> X(x.data(), static_cast<Eigen::Index>(x.size())), Y(y.data(), static_cast<Eigen::Index>(y.size()));
  const Eigen::VectorXd xc = X.array() - X.mean(), yc = Y.array() - Y.mean();
  return xc.dot(yc) / std::sqrt(xc.squaredNorm() * yc.squaredNorm());
}

struct i2n_result {
  double raw = 0;      // mean over splits of r(model, first half)
  double ceiling = 0;  // mean over splits of r(first half, second half)
  double ceiled = 0;   // mean over splits of r_model / sqrt(r_halves)
  std::vector<double> model_r, half_r;
};

inline i2n_result i2n_score(const Eigen::MatrixXd& probabilities, const std::vector<std::int64_t>& truth,
                            const std::vector<afc_trial>& trials, int n_splits = 2, std::uint32_t seed = 0) {
  GRCNN_CHECK(trials.size() >= 4 && n_splits >= 1, error, "i2n: needs at least 4 trials and 1 split");
  const auto K = probabilities.cols();
  const Eigen::MatrixXd model = normalized_dprimes(model_response_matrix(probabilities, truth), truth);
  numpy_legacy_rng rng(seed);
  i2n_result r;
  for (int s = 0; s < n_splits; ++s) {
    const auto perm = rng.permutation(static_cast<std::int64_t>(trials.size()));
    std::vector<afc_trial> h1, h2;
    for (std::size_t k = 0; k < perm.size(); ++k) (k < perm.size() / 2 ? h1 : h2).push_back(trials[static_cast<std::size_t>(perm[k])]);
    const Eigen::MatrixXd d1 = normalized_dprimes(human_response_matrix(h1, truth, K), truth);
    const Eigen::MatrixXd d2 = normalized_dprimes(human_response_matrix(h2, truth, K), truth);
    r.model_r.push_back(i2n_consistency(model, d1));
    r.half_r.push_back(i2n_consistency(d1, d2));
  }
  for (std::size_t s = 0; s < r.model_r.size(); ++s) {
    r.raw += r.model_r[s] / static_cast<double>(n_splits);
    r.ceiling += r.half_r[s] / static_cast<double>(n_splits);
    r.ceiled += r.model_r[s] / std::sqrt(r.half_r[s]) / static_cast<double>(n_splits);
  }
  return r;
}

}  // namespace grcnn::eval
