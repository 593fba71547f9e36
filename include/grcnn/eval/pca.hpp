#pragma once
// PCA as Brain-Score's layer selection applies it (sklearn PCA, full SVD, fitted on a separate image set,
// 1000 components): components from the eigen-decomposition of the fit set's centred Gram matrix
// (n_fit x n_fit, so a 200,704-feature layer never needs a p x p matrix), signs as sklearn's svd_flip
// (the largest |u| of each left singular vector positive). Components beyond the fit set's rank (the
// n_fit-th of n_fit centred rows, for instance) have no defined direction: sklearn returns arbitrary
// ones, we drop them, so a 1000-image fit gives at most 999 components.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <Eigen/Dense>

#include "grcnn/core/error.hpp"

namespace grcnn::eval {

class pca {
 public:
  // Fits on n rows of p features (row-major, float or double), keeping up to `components`.
  template <class T>
  void fit(const T* X, std::int64_t n, std::int64_t p, int components, std::int64_t block = 4096) {
    GRCNN_CHECK(n >= 2 && p >= 1 && components >= 1, shape_error, "pca: needs at least 2 rows, 1 feature and 1 component, got ",
                n, " x ", p, " and ", components);
    using rows = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const Eigen::Map<const rows> M(X, n, p);
    p_ = p;
    mean_.resize(p);
    Eigen::MatrixXd K = Eigen::MatrixXd::Zero(n, n);
    for (std::int64_t j = 0; j < p; j += block) {
      const auto b = std::min(block, p - j);
      Eigen::MatrixXd xb = M.middleCols(j, b).template cast<double>();
      mean_.segment(j, b) = xb.colwise().mean().transpose();
      xb.rowwise() -= mean_.segment(j, b).transpose();
      K.selfadjointView<Eigen::Lower>().rankUpdate(xb);
    }
    K = K.selfadjointView<Eigen::Lower>();
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(K);
    GRCNN_CHECK(eig.info() == Eigen::Success, numeric_error, "pca: eigen-decomposition failed");
    // Descending singular values s = sqrt(eigenvalues); keep those above the rank tolerance.
    const Eigen::VectorXd ev = eig.eigenvalues().reverse();
    const Eigen::MatrixXd U = eig.eigenvectors().rowwise().reverse();
    // Eigenvalues of the Gram matrix carry rounding of order eps * largest: the rank cut is on them.
    const double tol = std::max(0.0, ev(0)) * static_cast<double>(std::max(n, p)) * std::numeric_limits<double>::epsilon();
    int k = 0;
    while (k < components && k < n && ev(k) > tol) ++k;
    GRCNN_CHECK(k > 0, error, "pca: the fit rows are all equal");
    Eigen::MatrixXd Uk = U.leftCols(k);
    singular_.resize(k);
    for (int c = 0; c < k; ++c) {
      singular_(c) = std::sqrt(ev(c));
      Eigen::Index at;
      Uk.col(c).cwiseAbs().maxCoeff(&at);
      if (Uk(at, c) < 0) Uk.col(c) *= -1;  // svd_flip
    }
    // Components V = Xc^T U S^-1 (p x k), built block by block, stored in float.
    components_.resize(p, k);
    const Eigen::MatrixXd US = Uk * singular_.cwiseInverse().asDiagonal();
    for (std::int64_t j = 0; j < p; j += block) {
      const auto b = std::min(block, p - j);
      Eigen::MatrixXd xb = M.middleCols(j, b).template cast<double>();
      xb.rowwise() -= mean_.segment(j, b).transpose();
      components_.middleRows(j, b) = (xb.transpose() * US).template cast<float>();
    }
  }

  // (X - mean) V: m rows of p features -> m x k (row-major).
  template <class T>
  std::vector<float> transform(const T* X, std::int64_t m, std::int64_t p, std::int64_t block = 4096) const {
    GRCNN_CHECK(components_.size() > 0, error, "pca: transform before fit");
    GRCNN_CHECK(p == p_, shape_error, "pca: fitted on ", p_, " features, got ", p);
    using rows = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const Eigen::Map<const rows> M(X, m, p);
    Eigen::MatrixXd out = Eigen::MatrixXd::Zero(m, components_.cols());
    for (std::int64_t j = 0; j < p; j += block) {
      const auto b = std::min(block, p - j);
      Eigen::MatrixXd xb = M.middleCols(j, b).template cast<double>();
      xb.rowwise() -= mean_.segment(j, b).transpose();
      out.noalias() += xb * components_.middleRows(j, b).template cast<double>();
    }
    std::vector<float> r(static_cast<std::size_t>(out.size()));
    Eigen::Map<Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(r.data(), m, out.cols()) =
        out.cast<float>();
    return r;
  }

  int components() const { return static_cast<int>(components_.cols()); }
  const Eigen::VectorXd& singular_values() const { return singular_; }

 private:
  std::int64_t p_ = 0;
  Eigen::VectorXd mean_, singular_;
  Eigen::MatrixXf components_;
};

}  // namespace grcnn::eval
