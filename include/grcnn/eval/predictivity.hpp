#pragma once
// Brain-Score's CrossRegressedCorrelation: for each split, fit a regression from model features to
// neural responses on the training stimuli, predict the held-out stimuli, take Pearson r per neuroid
// and the median over neuroids; the score is the mean over splits and its error the standard error
// of the mean (xarray's std, ddof 0, over sqrt(splits)). The features enter once, as a Gram matrix
// accumulated in double over feature blocks (O(n^2) memory however wide the layer); each split centres
// it with its own training means, so PLS, ridge and least squares give the predictions of the feature
// form. RSA and CKA use the test parts of the splits (Brain-Score's test-only cross-validation).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include <Eigen/Dense>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "grcnn/core/error.hpp"
#include "grcnn/eval/consistency.hpp"
#include "grcnn/eval/pls.hpp"
#include "grcnn/eval/ridge.hpp"
#include "grcnn/eval/similarity.hpp"
#include "grcnn/eval/splits.hpp"

namespace grcnn::eval {

enum class metric_kind { pls, ridge, linear, rsa, cka };

// The metric kinds, listed once: names for the tools' options and the JSON, and which are similarities
// (RSA, CKA: a model-to-neural comparison of representational geometry, no regression).
struct metric_entry {
  metric_kind kind;
  std::string_view name;
  bool similarity;
};
inline constexpr std::array<metric_entry, 5> metric_table{{{metric_kind::pls, "pls", false},
                                                          {metric_kind::ridge, "ridge", false},
                                                          {metric_kind::linear, "linear", false},
                                                          {metric_kind::rsa, "rsa", true},
                                                          {metric_kind::cka, "cka", true}}};

inline std::vector<std::string> metric_names() {
  std::vector<std::string> n;
  for (const auto& e : metric_table) n.emplace_back(e.name);
  return n;
}
inline metric_kind parse_metric(const std::string& s) {
  for (const auto& e : metric_table)
    if (e.name == s) return e.kind;
  std::string known;
  for (const auto& e : metric_table) known += (known.empty() ? "" : ", ") + std::string(e.name);
  throw error("unknown metric '" + s + "' (" + known + ")");
}
inline const char* metric_name(metric_kind m) {
  for (const auto& e : metric_table)
    if (e.kind == m) return e.name.data();
  return "?";
}
inline bool is_similarity(metric_kind m) {
  for (const auto& e : metric_table)
    if (e.kind == m) return e.similarity;
  return false;
}

struct metric_options {
  metric_kind kind = metric_kind::pls;
  pls_options pls;           // Brain-Score: 25 components, tol 1e-6, 500 iterations
  double ridge_alpha = 1.0;  // Brain-Score's `ridge`: sklearn Ridge(alpha=1)
  bool unbiased_cka = true;  // Brain-Score's CKA default
};

struct predictivity {
  double score = 0;                        // mean over splits
  double error = 0;                        // std over splits (ddof 0) / sqrt(splits)
  std::vector<double> per_split;           // each split's median r (regressions) or similarity
  Eigen::MatrixXd per_neuroid;             // splits x neuroids: r on held-out stimuli (regressions only)
};

// The stimuli x stimuli Gram matrix of a layer, the only form in which features enter scoring.
// Regressions and CKA need dot products of features centred over stimuli: the Gram of the features minus
// their mean over all n rows (each split re-centres on its training rows; the shift only spares
// precision). RSA needs Pearson r between stimuli: the Gram of each row minus its own mean.
enum class gram_centring { columns, rows };
inline gram_centring centring_for(metric_kind m) { return m == metric_kind::rsa ? gram_centring::rows : gram_centring::columns; }

struct stimulus_gram {
  Eigen::MatrixXd G;
  gram_centring centring = gram_centring::columns;
};

// Accumulated in double over blocks of features, from n row-major rows of float or double.
template <class T>
stimulus_gram feature_gram(const T* features, std::int64_t n, std::int64_t p, gram_centring c = gram_centring::columns,
                           std::int64_t block = 4096) {
  GRCNN_CHECK(n >= 2 && p >= 1, shape_error, "feature_gram: needs at least 2 rows and 1 feature, got ", n, " x ", p);
  using rows = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Map<const rows> X(features, n, p);
  Eigen::VectorXd row_mean = Eigen::VectorXd::Zero(n);
  if (c == gram_centring::rows) {
    for (std::int64_t j = 0; j < p; j += block)
      row_mean += X.middleCols(j, std::min(block, p - j)).template cast<double>().rowwise().sum();
    row_mean /= static_cast<double>(p);
  }
  // Feature blocks are shared out among threads (static schedule: the same sums for the same thread
  // count), each accumulating its own lower triangle; the partial Gram matrices are added in order.
  const std::int64_t blocks = (p + block - 1) / block;
  int threads = 1;
#ifdef _OPENMP
  threads = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(omp_get_max_threads(), blocks)));
  // Each thread holds its own n x n partial sum: at most 1 GiB of them together.
  const double partial_bytes = 8.0 * static_cast<double>(n) * static_cast<double>(n);
  threads = std::max(1, std::min(threads, static_cast<int>((1024.0 * 1024 * 1024) / partial_bytes)));
#endif
  std::vector<Eigen::MatrixXd> partial(static_cast<std::size_t>(threads));
#pragma omp parallel for schedule(static, 1) num_threads(threads)
  for (int th = 0; th < threads; ++th) {
    Eigen::MatrixXd& G = partial[static_cast<std::size_t>(th)];
    G = Eigen::MatrixXd::Zero(n, n);
    for (std::int64_t k = th; k < blocks; k += threads) {
      const std::int64_t j = k * block;
      Eigen::MatrixXd xb = X.middleCols(j, std::min(block, p - j)).template cast<double>();
      if (c == gram_centring::columns)
        xb.rowwise() -= xb.colwise().mean();
      else
        xb.colwise() -= row_mean;
      G.selfadjointView<Eigen::Lower>().rankUpdate(xb);
    }
  }
  for (int th = 1; th < threads; ++th) partial[0] += partial[static_cast<std::size_t>(th)];
  return {partial[0].selfadjointView<Eigen::Lower>(), c};
}

// Kernels centred on the training rows: K = Xc_train Xc_train^T and K_test = (X_test - mean) Xc_train^T,
// from the Gram matrix: (x_i - mu).(x_j - mu) = G_ij - a_i - a_j + m with a = G mu-terms.
inline void centred_from_gram(const Eigen::MatrixXd& G, const std::vector<std::int64_t>& train,
                              const std::vector<std::int64_t>& test, Eigen::MatrixXd& K, Eigen::MatrixXd& K_test) {
  const auto n = static_cast<Eigen::Index>(train.size()), m = static_cast<Eigen::Index>(test.size());
  Eigen::VectorXd a_all(G.rows());  // a_i = x_i . mu = mean over training j of G_ij
  for (Eigen::Index i = 0; i < G.rows(); ++i) {
    double s = 0;
    for (auto j : train) s += G(i, j);
    a_all(i) = s / static_cast<double>(n);
  }
  double mm = 0;
  for (auto j : train) mm += a_all(j);
  mm /= static_cast<double>(n);
  K.resize(n, n);
  K_test.resize(m, n);
  for (Eigen::Index c = 0; c < n; ++c) {
    const auto jc = train[static_cast<std::size_t>(c)];
    for (Eigen::Index r = 0; r < n; ++r) {
      const auto ir = train[static_cast<std::size_t>(r)];
      K(r, c) = G(ir, jc) - a_all(ir) - a_all(jc) + mm;
    }
    for (Eigen::Index r = 0; r < m; ++r) {
      const auto ir = test[static_cast<std::size_t>(r)];
      K_test(r, c) = G(ir, jc) - a_all(ir) - a_all(jc) + mm;
    }
  }
}

namespace predictivity_detail {
inline Eigen::MatrixXd rows_of(const Eigen::MatrixXd& m, const std::vector<std::int64_t>& idx) {
  Eigen::MatrixXd r(static_cast<Eigen::Index>(idx.size()), m.cols());
  for (std::size_t i = 0; i < idx.size(); ++i) r.row(static_cast<Eigen::Index>(i)) = m.row(idx[i]);
  return r;
}
inline Eigen::MatrixXd block_of(const Eigen::MatrixXd& m, const std::vector<std::int64_t>& idx) {
  const auto k = static_cast<Eigen::Index>(idx.size());
  Eigen::MatrixXd r(k, k);
  for (Eigen::Index i = 0; i < k; ++i)
    for (Eigen::Index j = 0; j < k; ++j) r(i, j) = m(idx[static_cast<std::size_t>(i)], idx[static_cast<std::size_t>(j)]);
  return r;
}
inline void check_split(const split& s, std::int64_t n, std::size_t k) {
  GRCNN_CHECK(!s.train.empty() && !s.test.empty(), error, "split ", k, " has an empty train or test part");
  for (const auto* part : {&s.train, &s.test})
    for (auto i : *part)
      GRCNN_CHECK(i >= 0 && i < n, shape_error, "split ", k, " refers to stimulus ", i, " of ", n);
}
inline void summarise(predictivity& r) {
  const double n = static_cast<double>(r.per_split.size());
  double mean = 0, var = 0;
  for (double v : r.per_split) mean += v;
  mean /= n;
  for (double v : r.per_split) var += (v - mean) * (v - mean);
  r.score = mean;
  r.error = std::sqrt(var / n) / std::sqrt(n);
}
}  // namespace predictivity_detail

// Scores features (as their Gram matrix over the n stimuli, feature_gram with centring_for(metric)) against targets (n stimuli x
// neuroids, same row order) over the given splits.
inline predictivity score_from_gram(const stimulus_gram& features, const Eigen::MatrixXd& targets,
                                    const std::vector<split>& splits, const metric_options& o = {}) {
  using namespace predictivity_detail;
  const auto& G = features.G;
  const auto n = targets.rows();
  GRCNN_CHECK(features.centring == centring_for(o.kind), error, "score: metric ", metric_name(o.kind), " needs the ",
              o.kind == metric_kind::rsa ? "row" : "column", "-centred Gram matrix (feature_gram(..., centring_for(metric)))");
  GRCNN_CHECK(G.rows() == n && G.cols() == n, shape_error, "score: features for ", G.rows(), " stimuli, targets for ", n);
  GRCNN_CHECK(!splits.empty(), error, "score: no splits");
  for (Eigen::Index j = 0; j < targets.cols(); ++j)
    for (Eigen::Index i = 0; i < n; ++i)
      GRCNN_CHECK(std::isfinite(targets(i, j)), numeric_error, "score: the response of neuroid ", j, " to stimulus ", i,
                  " is not finite (", targets(i, j), "); drop that neuroid or stimulus first");
  predictivity r;
  const bool regression = !is_similarity(o.kind);
  if (regression) r.per_neuroid.resize(static_cast<Eigen::Index>(splits.size()), targets.cols());
  for (std::size_t k = 0; k < splits.size(); ++k) check_split(splits[k], n, k);
  // Splits are independent: they run on the OpenMP threads, each writing its own slot (the same
  // numbers whatever the thread count); an exception inside is carried out of the parallel region.
  r.per_split.assign(splits.size(), 0.0);
  std::exception_ptr failure;
#pragma omp parallel for schedule(dynamic, 1)
  for (std::size_t k = 0; k < splits.size(); ++k) {
    try {
      const auto& s = splits[k];
      if (regression) {
        Eigen::MatrixXd K, Kt;
        centred_from_gram(G, s.train, s.test, K, Kt);
        const Eigen::MatrixXd Y = rows_of(targets, s.train), Yt = rows_of(targets, s.test);
        Eigen::MatrixXd pred;
        if (o.kind == metric_kind::pls) {
          kernel_pls m(o.pls);
          m.fit(K, Y);
          pred = m.predict(Kt);
        } else {
          kernel_ridge m(o.kind == metric_kind::ridge ? o.ridge_alpha : 0.0);
          m.fit(K, Y);
          pred = m.predict(Kt);
        }
        const Eigen::VectorXd rc = pearson_columns(pred, Yt);
        r.per_neuroid.row(static_cast<Eigen::Index>(k)) = rc.transpose();
        r.per_split[k] = median_skipna(rc);
      } else if (o.kind == metric_kind::rsa) {  // similarity on the split's held-out stimuli
        r.per_split[k] = rsa(rdm_from_gram(block_of(G, s.test)), rdm(rows_of(targets, s.test)));
      } else {
        const Eigen::MatrixXd Yt = rows_of(targets, s.test);
        Eigen::MatrixXd K, Kt;
        centred_from_gram(G, s.test, {}, K, Kt);
        const Eigen::MatrixXd Yc = Yt.rowwise() - Yt.colwise().mean();
        r.per_split[k] = cka(K, Yc * Yc.transpose(), o.unbiased_cka);
      }
    } catch (...) {
#pragma omp critical(grcnn_score_failure)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
  summarise(r);
  return r;
}

template <class T>
predictivity score_features(const T* features, std::int64_t n, std::int64_t p, const Eigen::MatrixXd& targets,
                            const std::vector<split>& splits, const metric_options& o = {}) {
  GRCNN_CHECK(targets.rows() == n, shape_error, "score: ", n, " feature rows but ", targets.rows(), " target rows");
  return score_from_gram(feature_gram(features, n, p, centring_for(o.kind)), targets, splits, o);
}

}  // namespace grcnn::eval
