#pragma once
// Representational similarity between a model's features and neural responses over the same stimuli:
// RSA (RDM = 1 - Pearson correlation between stimuli; Spearman correlation of the two RDMs' upper
// triangles, ties ranked by their average as scipy.stats.spearmanr) and linear CKA (Kornblith et al.
// 2019) from Gram matrices, with the biased HSIC or the unbiased one (Song et al. 2012).
#include <algorithm>
#include <limits>
#include <numeric>
#include <vector>

#include <Eigen/Dense>

#include "grcnn/core/error.hpp"
#include "grcnn/eval/consistency.hpp"

namespace grcnn::eval {

// stimuli x units -> stimuli x stimuli, 1 - r between rows.
inline Eigen::MatrixXd rdm(const Eigen::MatrixXd& x) {
  GRCNN_CHECK(x.rows() >= 3 && x.cols() >= 2, shape_error, "rdm: needs at least 3 stimuli and 2 units, got ", x.rows(),
              " x ", x.cols());
  return (1.0 - pearson_columns_all(x.transpose()).array()).matrix();
}

// The same RDM from the Gram matrix of row-centred responses: r_ij = G_ij / sqrt(G_ii G_jj).
inline Eigen::MatrixXd rdm_from_gram(const Eigen::MatrixXd& G) {
  GRCNN_CHECK(G.rows() >= 3 && G.rows() == G.cols(), shape_error, "rdm_from_gram: needs a square Gram matrix of at ",
              "least 3 stimuli, got ", G.rows(), " x ", G.cols());
  const Eigen::ArrayXd d = G.diagonal().array().sqrt();
  Eigen::MatrixXd r(G.rows(), G.cols());
  for (Eigen::Index j = 0; j < G.cols(); ++j)
    for (Eigen::Index i = 0; i < G.rows(); ++i) {
      const double den = d(i) * d(j);
      r(i, j) = 1.0 - (den > 0 ? std::clamp(G(i, j) / den, -1.0, 1.0) : std::numeric_limits<double>::quiet_NaN());
    }
  return r;
}

// Average ranks (1-based) of v, ties sharing their mean rank.
inline Eigen::VectorXd average_ranks(const Eigen::VectorXd& v) {
  std::vector<Eigen::Index> idx(static_cast<std::size_t>(v.size()));
  std::iota(idx.begin(), idx.end(), Eigen::Index{0});
  std::stable_sort(idx.begin(), idx.end(), [&](auto a, auto b) { return v(a) < v(b); });
  Eigen::VectorXd r(v.size());
  for (std::size_t i = 0; i < idx.size();) {
    std::size_t j = i;
    while (j + 1 < idx.size() && v(idx[j + 1]) == v(idx[i])) ++j;
    const double rank = 0.5 * static_cast<double>(i + j) + 1.0;
    for (std::size_t k = i; k <= j; ++k) r(idx[k]) = rank;
    i = j + 1;
  }
  return r;
}

// Spearman correlation of the strict upper triangles of two RDMs.
inline double rsa(const Eigen::MatrixXd& rdm_a, const Eigen::MatrixXd& rdm_b) {
  GRCNN_CHECK(rdm_a.rows() == rdm_a.cols() && rdm_a.rows() == rdm_b.rows() && rdm_b.rows() == rdm_b.cols() &&
                  rdm_a.rows() >= 3,
              shape_error, "rsa: needs two square RDMs of one size (>= 3), got ", rdm_a.rows(), " x ", rdm_a.cols(),
              " and ", rdm_b.rows(), " x ", rdm_b.cols());
  const auto n = rdm_a.rows();
  Eigen::VectorXd a(n * (n - 1) / 2), b(n * (n - 1) / 2);
  Eigen::Index k = 0;
  for (Eigen::Index i = 0; i < n; ++i)
    for (Eigen::Index j = i + 1; j < n; ++j, ++k) a(k) = rdm_a(i, j), b(k) = rdm_b(i, j);
  Eigen::MatrixXd ra(a.size(), 1), rb(b.size(), 1);
  ra.col(0) = average_ranks(a), rb.col(0) = average_ranks(b);
  return pearson_columns(ra, rb)(0);
}

// Linear CKA from Gram matrices K = X X^T and L = Y Y^T (uncentred; stimuli x stimuli).
inline double cka(const Eigen::MatrixXd& K, const Eigen::MatrixXd& L, bool unbiased = false) {
  const auto n = K.rows();
  GRCNN_CHECK(K.cols() == n && L.rows() == n && L.cols() == n, shape_error, "cka: needs two square Gram matrices of one size, got ",
              K.rows(), " x ", K.cols(), " and ", L.rows(), " x ", L.cols());
  GRCNN_CHECK(n >= (unbiased ? 4 : 2), shape_error, "cka: needs at least ", unbiased ? 4 : 2, " stimuli, got ", n);
  auto hsic = [&](const Eigen::MatrixXd& A, const Eigen::MatrixXd& B) {
    if (!unbiased) {
      const Eigen::MatrixXd H = Eigen::MatrixXd::Identity(n, n) - Eigen::MatrixXd::Constant(n, n, 1.0 / static_cast<double>(n));
      return ((H * A * H).cwiseProduct(B)).sum();  // tr(HAH B) = tr(HAH HBH); scale cancels in CKA
    }
    Eigen::MatrixXd At = A, Bt = B;
    At.diagonal().setZero(), Bt.diagonal().setZero();
    const double nn = static_cast<double>(n);
    const double t1 = At.cwiseProduct(Bt).sum();  // tr(At Bt) for symmetric matrices
    const double t2 = At.sum() * Bt.sum() / ((nn - 1) * (nn - 2));
    const double t3 = 2.0 / (nn - 2) * (At.colwise().sum() * Bt.rowwise().sum())(0, 0);
    return (t1 + t2 - t3) / (nn * (nn - 3));
  };
  return hsic(K, L) / std::sqrt(hsic(K, K) * hsic(L, L));
}

}  // namespace grcnn::eval
