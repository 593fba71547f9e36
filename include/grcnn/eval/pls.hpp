#pragma once
// PLS2 regression as Brain-Score fits it: sklearn 1.2.1's PLSRegression(n_components=25, scale=False),
// NIPALS with its power method (first non-constant Y column as the start, tolerance on the squared
// change of the X weights, 500 iterations), regression-mode deflation, coefficients
// W (P^T W)^+ Q^T. Two forms give the same predictions:
// - pls_regression: on the feature matrix (n x p), sklearn's algorithm line for line;
// - kernel_pls: on the centred linear kernel K = Xc Xc^T (n x n) and the test kernel Xtc Xc^T, for
//   layers too wide to hold in double (grcnn55's layer1: 200,704 features). Every vector of the
//   feature space is kept as X^T a with a in R^n, so memory is O(n^2) (Rannar et al. 1994).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <Eigen/Dense>

#include "grcnn/core/error.hpp"

namespace grcnn::eval {

using matrix = Eigen::MatrixXd;
using vector = Eigen::VectorXd;

struct pls_options {
  int components = 25;
  double tol = 1e-6;
  int max_iter = 500;
};

namespace pls_detail {
inline constexpr double eps = std::numeric_limits<double>::epsilon();

inline void check_fit(const char* what, std::int64_t n, std::int64_t rows_y, const pls_options& o) {
  GRCNN_CHECK(n >= 2, shape_error, what, ": needs at least 2 training samples, got ", n);
  GRCNN_CHECK(rows_y == n, shape_error, what, ": ", n, " samples but ", rows_y, " rows of targets");
  GRCNN_CHECK(o.components >= 1 && o.max_iter >= 1 && o.tol >= 0, error, what,
              ": needs components >= 1, max_iter >= 1 and tol >= 0");
}
// sklearn zeroes the columns of the residual that are all below 10 eps, then starts the power method
// from the first column with an entry above eps; none means the residual is constant (stop early).
inline int start_column(matrix& Yk) {
  for (Eigen::Index j = 0; j < Yk.cols(); ++j)
    if ((Yk.col(j).array().abs() < 10 * eps).all()) Yk.col(j).setZero();
  for (Eigen::Index j = 0; j < Yk.cols(); ++j)
    if ((Yk.col(j).array().abs() > eps).any()) return static_cast<int>(j);
  return -1;
}
// scipy.linalg.pinv (SVD, relative cutoff max(m, n) * eps * largest singular value).
inline matrix pinv(const matrix& m) {
  Eigen::JacobiSVD<matrix> svd(m, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const auto& s = svd.singularValues();
  const double cutoff = (s.size() ? s(0) : 0.0) * static_cast<double>(std::max(m.rows(), m.cols())) * eps;
  vector inv = s;
  for (Eigen::Index i = 0; i < s.size(); ++i) inv(i) = s(i) > cutoff ? 1.0 / s(i) : 0.0;
  return svd.matrixV() * inv.asDiagonal() * svd.matrixU().transpose();
}
}  // namespace pls_detail

class pls_regression {
 public:
  explicit pls_regression(pls_options o = {}) : o_(o) {}

  void fit(const matrix& X, const matrix& Y) {
    using namespace pls_detail;
    check_fit("pls_regression", X.rows(), Y.rows(), o_);
    GRCNN_CHECK(o_.components <= X.cols(), shape_error, "pls_regression: ", o_.components,
                " components for ", X.cols(), " features (sklearn allows at most the feature count)");
    x_mean_ = X.colwise().mean();
    y_mean_ = Y.colwise().mean();
    matrix Xk = X.rowwise() - x_mean_.transpose(), Yk = Y.rowwise() - y_mean_.transpose();
    const auto p = X.cols(), q = Y.cols(), k_max = static_cast<Eigen::Index>(o_.components);
    matrix W = matrix::Zero(p, k_max), P = matrix::Zero(p, k_max), Q = matrix::Zero(q, k_max);
    n_iter_.clear();
    for (Eigen::Index k = 0; k < k_max; ++k) {
      const int col = start_column(Yk);
      if (col < 0) break;  // "Y residual is constant": the remaining components stay zero
      vector u = Yk.col(col), w, w_old, c;
      int it = 0;
      for (; it < o_.max_iter; ++it) {
        w = Xk.transpose() * u / u.squaredNorm();
        w /= std::sqrt(w.squaredNorm()) + eps;
        const vector t = Xk * w;
        c = Yk.transpose() * t / t.squaredNorm();
        u = Yk * c / (c.squaredNorm() + eps);
        const double change = it == 0 ? (w.array() - 100.0).square().sum() : (w - w_old).squaredNorm();
        if (change < o_.tol || q == 1) break;
        w_old = w;
      }
      n_iter_.push_back(std::min(it + 1, o_.max_iter));
      // sklearn's sign convention: the largest |weight| positive.
      Eigen::Index big = 0;
      w.cwiseAbs().maxCoeff(&big);
      if (w(big) < 0) w = -w, c = -c;
      const vector t = Xk * w;
      const double tt = t.squaredNorm();
      const vector pk = Xk.transpose() * t / tt, qk = Yk.transpose() * t / tt;
      Xk -= t * pk.transpose();
      Yk -= t * qk.transpose();
      W.col(k) = w, P.col(k) = pk, Q.col(k) = qk;
    }
    coef_ = W * pinv(P.transpose() * W) * Q.transpose();
  }

  matrix predict(const matrix& X) const {
    GRCNN_CHECK(coef_.size() > 0, error, "pls_regression: predict before fit");
    GRCNN_CHECK(X.cols() == x_mean_.size(), shape_error, "pls_regression: fitted on ", x_mean_.size(),
                " features, asked to predict from ", X.cols());
    return ((X.rowwise() - x_mean_.transpose()) * coef_).rowwise() + y_mean_.transpose();
  }
  const matrix& coef() const { return coef_; }  // [features, targets]
  const std::vector<int>& n_iter() const { return n_iter_; }

 private:
  pls_options o_;
  vector x_mean_, y_mean_;
  matrix coef_;
  std::vector<int> n_iter_;
};

// The centred linear kernels of a training matrix (n x p) and a test matrix (m x p), both row-major
// float or double, accumulated over feature blocks in double: K = Xc Xc^T, K_test = (Xt - mean) Xc^T.
template <class T>
void centred_kernels(const T* train, std::int64_t n, std::int64_t p, const T* test, std::int64_t m, matrix& K,
                     matrix& K_test, std::int64_t block = 4096) {
  GRCNN_CHECK(n >= 1 && p >= 1 && m >= 0, shape_error, "centred_kernels: needs n >= 1 and p >= 1, got ", n, " x ", p);
  using rows = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Map<const rows> Xs(train, n, p);
  const Eigen::Map<const rows> Ts(test, m, p);
  K = matrix::Zero(n, n);
  K_test = matrix::Zero(m, n);
  for (std::int64_t j = 0; j < p; j += block) {
    const auto b = std::min(block, p - j);
    matrix xb = Xs.middleCols(j, b).template cast<double>();
    const Eigen::RowVectorXd mean = xb.colwise().mean();
    xb.rowwise() -= mean;
    K.noalias() += xb * xb.transpose();
    if (m > 0) {
      matrix tb = Ts.middleCols(j, b).template cast<double>();
      tb.rowwise() -= mean;
      K_test.noalias() += tb * xb.transpose();
    }
  }
}

class kernel_pls {
 public:
  explicit kernel_pls(pls_options o = {}) : o_(o) {}

  // K: the centred training kernel (n x n), Y: targets (n x q).
  void fit(const matrix& K, const matrix& Y) {
    using namespace pls_detail;
    check_fit("kernel_pls", K.rows(), Y.rows(), o_);
    GRCNN_CHECK(K.cols() == K.rows(), shape_error, "kernel_pls: the kernel must be square, got ", K.rows(), " x ", K.cols());
    y_mean_ = Y.colwise().mean();
    matrix Yk = Y.rowwise() - y_mean_.transpose();
    matrix Kk = K;  // the deflated kernel X_k X_k^T
    const auto n = K.rows(), q = Y.cols(), k_max = static_cast<Eigen::Index>(o_.components);
    matrix A = matrix::Zero(n, k_max), B = matrix::Zero(n, k_max), Q = matrix::Zero(q, k_max);
    std::vector<vector> scores;
    n_iter_.clear();
    for (Eigen::Index k = 0; k < k_max; ++k) {
      const int col = start_column(Yk);
      if (col < 0) break;
      // x weights w = X_k^T a; ||w||^2 = a^T K_k a, and w . w_old = a^T K_k a_old.
      vector u = Yk.col(col), a, a_old, c, t, t_old;
      int it = 0;
      for (; it < o_.max_iter; ++it) {
        const double s = 1.0 / u.squaredNorm();
        const vector Ku = Kk * u;  // the only n x n product of an iteration
        const double norm = s * std::sqrt(std::max(0.0, u.dot(Ku)));
        a = u * (s / (norm + eps));
        t = Ku * (s / (norm + eps));  // X_k w = K_k a
        c = Yk.transpose() * t / t.squaredNorm();
        u = Yk * c / (c.squaredNorm() + eps);
        if (q == 1) break;
        if (it > 0) {
          // ||w - w_old||^2 with K_k a = t and K_k a_old = t_old: no further product with K_k.
          const double change = a.dot(t) - 2 * a_old.dot(t) + a_old.dot(t_old);
          if (change < o_.tol) break;
        }
        a_old = a;
        t_old = t;
      }
      n_iter_.push_back(std::min(it + 1, o_.max_iter));
      const double tt = t.squaredNorm();
      // W column = X^T D_k a with D_k the projection off the earlier scores; P column = X^T t / tt.
      vector da = a;
      for (const auto& s : scores) da -= s * (s.dot(a) / s.squaredNorm());
      const vector qk = Yk.transpose() * t / tt;
      Yk -= t * qk.transpose();
      // K_{k+1} = (I - t t^T / tt) K_k (I - t t^T / tt)
      const vector Kt = Kk * t;
      const double tKt = t.dot(Kt);
      Kk -= (t * Kt.transpose() + Kt * t.transpose()) / tt;
      Kk += t * t.transpose() * (tKt / (tt * tt));
      A.col(k) = da, B.col(k) = t / tt, Q.col(k) = qk;
      scores.push_back(t);
    }
    // Predictions: K_test A (B^T K A)^+ Q^T + mean(Y).
    A_ = A;
    M_ = pinv(B.transpose() * K * A) * Q.transpose();
  }

  // K_test: (X_test - training mean) Xc^T, m x n.
  matrix predict(const matrix& K_test) const {
    GRCNN_CHECK(M_.size() > 0, error, "kernel_pls: predict before fit");
    GRCNN_CHECK(K_test.cols() == A_.rows(), shape_error, "kernel_pls: fitted on ", A_.rows(),
                " samples, the test kernel has ", K_test.cols(), " columns");
    return ((K_test * A_) * M_).rowwise() + y_mean_.transpose();
  }
  const std::vector<int>& n_iter() const { return n_iter_; }

 private:
  pls_options o_;
  vector y_mean_;
  matrix A_, M_;
  std::vector<int> n_iter_;
};

}  // namespace grcnn::eval
