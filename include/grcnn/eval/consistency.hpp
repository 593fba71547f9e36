#pragma once
// Per-neuroid correlation and the internal-consistency ceiling as Brain-Score computes them:
// Pearson r per column (scipy.stats.pearsonr), the median over neuroids with NaNs skipped (xarray),
// sklearn's ShuffleSplit over repetition ids (eval/splits.hpp: random_state 1 gives Brain-Score's
// halves), half means, Spearman-Brown with n = 2, and the two
// ceiled-score conventions.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <Eigen/Dense>

#include "grcnn/core/error.hpp"
#include "grcnn/eval/splits.hpp"

namespace grcnn::eval {

// r between column j of a and column j of b (rows: stimuli); NaN where either column is constant.
inline Eigen::VectorXd pearson_columns(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  GRCNN_CHECK(a.rows() == b.rows() && a.cols() == b.cols(), shape_error, "pearson_columns: ", a.rows(), " x ",
              a.cols(), " against ", b.rows(), " x ", b.cols());
  GRCNN_CHECK(a.rows() >= 2, shape_error, "pearson_columns: needs at least 2 stimuli, got ", a.rows());
  Eigen::VectorXd r(a.cols());
  for (Eigen::Index j = 0; j < a.cols(); ++j) {
    const Eigen::VectorXd x = a.col(j).array() - a.col(j).mean(), y = b.col(j).array() - b.col(j).mean();
    const double den = std::sqrt(x.squaredNorm() * y.squaredNorm());
    r(j) = den > 0 ? std::clamp(x.dot(y) / den, -1.0, 1.0) : std::numeric_limits<double>::quiet_NaN();
  }
  return r;
}

// The correlation matrix of the columns of a (units x units), as numpy.corrcoef(a, rowvar=False).
inline Eigen::MatrixXd pearson_columns_all(const Eigen::MatrixXd& a) {
  GRCNN_CHECK(a.rows() >= 2, shape_error, "pearson_columns_all: needs at least 2 rows, got ", a.rows());
  Eigen::MatrixXd c = a.rowwise() - a.colwise().mean();
  const Eigen::VectorXd norms = c.colwise().norm();
  for (Eigen::Index j = 0; j < c.cols(); ++j)
    c.col(j) /= norms(j) > 0 ? norms(j) : std::numeric_limits<double>::quiet_NaN();
  return (c.transpose() * c).cwiseMax(-1.0).cwiseMin(1.0);
}

// The median of the finite entries (NaN when none), as xarray's median with skipna.
inline double median_skipna(const Eigen::VectorXd& v) {
  std::vector<double> f;
  for (Eigen::Index i = 0; i < v.size(); ++i)
    if (!std::isnan(v(i))) f.push_back(v(i));
  if (f.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(f.begin(), f.end());
  const auto n = f.size();
  return n % 2 ? f[n / 2] : 0.5 * (f[n / 2 - 1] + f[n / 2]);
}

inline double spearman_brown(double r, double n = 2.0) { return n * r / (1 + (n - 1) * r); }

struct ceiling_result {
  double ceiling = 0;               // mean over splits of the median Spearman-Brown-corrected r
  std::vector<double> per_split;    // each split's median

  // One split from its two half means (stimuli x neuroids): Pearson per neuroid, Spearman-Brown,
  // median over neuroids; the ceiling is kept the mean of the splits so far.
  void add_split(const Eigen::MatrixXd& half_a, const Eigen::MatrixXd& half_b) {
    Eigen::VectorXd c = pearson_columns(half_a, half_b);
    for (Eigen::Index j = 0; j < c.size(); ++j) c(j) = spearman_brown(c(j));
    per_split.push_back(median_skipna(c));
    double s = 0;
    for (double v : per_split) s += v;
    ceiling = s / static_cast<double>(per_split.size());
  }
};

// Split-half internal consistency. responses[r] is repetition r (in sorted repetition-id order) as a
// stimuli x neuroids matrix; each split's halves are averaged per stimulus, correlated per neuroid,
// corrected by Spearman-Brown (n = 2); median over neuroids, mean over splits. Brain-Score: 10 splits,
// train_size 0.5, random_state 1.
inline ceiling_result split_half_ceiling(const std::vector<Eigen::MatrixXd>& responses, int n_splits = 10,
                                         std::uint32_t random_state = 1) {
  GRCNN_CHECK(responses.size() >= 2, shape_error, "split_half_ceiling: needs at least 2 repetitions, got ", responses.size());
  for (const auto& m : responses)
    GRCNN_CHECK(m.rows() == responses[0].rows() && m.cols() == responses[0].cols(), shape_error,
                "split_half_ceiling: repetitions differ in shape (", m.rows(), " x ", m.cols(), " vs ",
                responses[0].rows(), " x ", responses[0].cols(), ")");
  auto mean_of = [&](const std::vector<std::int64_t>& ids) {
    Eigen::MatrixXd s = Eigen::MatrixXd::Zero(responses[0].rows(), responses[0].cols());
    for (auto i : ids) s += responses[static_cast<std::size_t>(i)];
    return Eigen::MatrixXd(s / static_cast<double>(ids.size()));
  };
  ceiling_result r;
  for (const auto& sp : shuffle_split(static_cast<std::int64_t>(responses.size()), n_splits, 0.5, random_state))
    r.add_split(mean_of(sp.train), mean_of(sp.test));
  return r;
}

// Ceiled scores: (r / c)^2, the convention of the paper's Table 1 (Brain-Score 2019 - Jan 2026), and
// r^2 / c (Brain-Score since 2026-01-13).
enum class ceiling_convention { squared, explained_variance };
inline double ceiled_score(double raw, double ceiling, ceiling_convention c = ceiling_convention::squared) {
  GRCNN_CHECK(ceiling > 0, error, "ceiled_score: the ceiling must be positive, got ", ceiling);
  return c == ceiling_convention::squared ? (raw / ceiling) * (raw / ceiling) : raw * raw / ceiling;
}

}  // namespace grcnn::eval
