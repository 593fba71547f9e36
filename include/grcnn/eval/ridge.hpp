#pragma once
// Ridge and ordinary least squares, the alternatives Brain-Score registers next to PLS: sklearn's
// Ridge(alpha, fit_intercept=True) and LinearRegression() (the minimum-norm least-squares solution
// when features outnumber samples). Both come in a feature form and a kernel form (the dual
// solution from K = Xc Xc^T and K_test, see pls.hpp's centred_kernels) with equal predictions.
#include <Eigen/Dense>

#include "grcnn/eval/pls.hpp"

namespace grcnn::eval {

// alpha > 0: ridge; alpha == 0: ordinary least squares, minimum norm (scipy/numpy lstsq).
class ridge_regression {
 public:
  explicit ridge_regression(double alpha = 1.0) : alpha_(alpha) {
    GRCNN_CHECK(alpha >= 0, error, "ridge_regression: alpha must be non-negative, got ", alpha);
  }
  void fit(const matrix& X, const matrix& Y) {
    GRCNN_CHECK(X.rows() == Y.rows() && X.rows() >= 1, shape_error, "ridge_regression: ", X.rows(), " samples but ",
                Y.rows(), " rows of targets");
    x_mean_ = X.colwise().mean();
    y_mean_ = Y.colwise().mean();
    const matrix Xc = X.rowwise() - x_mean_.transpose(), Yc = Y.rowwise() - y_mean_.transpose();
    if (alpha_ == 0) {
      coef_ = Xc.completeOrthogonalDecomposition().solve(Yc);  // the minimum-norm solution
    } else if (Xc.cols() <= Xc.rows()) {
      matrix G = Xc.transpose() * Xc;
      G.diagonal().array() += alpha_;
      coef_ = G.ldlt().solve(Xc.transpose() * Yc);
    } else {  // wide: the dual, (Xc Xc^T + alpha I)^-1 on the n x n side
      matrix K = Xc * Xc.transpose();
      K.diagonal().array() += alpha_;
      coef_ = Xc.transpose() * K.ldlt().solve(Yc);
    }
  }
  matrix predict(const matrix& X) const {
    GRCNN_CHECK(coef_.size() > 0, error, "ridge_regression: predict before fit");
    GRCNN_CHECK(X.cols() == x_mean_.size(), shape_error, "ridge_regression: fitted on ", x_mean_.size(),
                " features, asked to predict from ", X.cols());
    return ((X.rowwise() - x_mean_.transpose()) * coef_).rowwise() + y_mean_.transpose();
  }

 private:
  double alpha_;
  vector x_mean_, y_mean_;
  matrix coef_;
};

// The same predictions from the centred kernels: K_test (K + alpha I)^-1 Yc + mean(Y); for alpha = 0
// the pseudo-inverse of K (the minimum-norm least-squares fit).
class kernel_ridge {
 public:
  explicit kernel_ridge(double alpha = 1.0) : alpha_(alpha) {
    GRCNN_CHECK(alpha >= 0, error, "kernel_ridge: alpha must be non-negative, got ", alpha);
  }
  void fit(const matrix& K, const matrix& Y) {
    GRCNN_CHECK(K.rows() == K.cols() && K.rows() == Y.rows(), shape_error, "kernel_ridge: a ", K.rows(), " x ",
                K.cols(), " kernel for ", Y.rows(), " rows of targets");
    y_mean_ = Y.colwise().mean();
    const matrix Yc = Y.rowwise() - y_mean_.transpose();
    if (alpha_ == 0) {
      dual_ = pls_detail::pinv(K) * Yc;
    } else {
      matrix G = K;
      G.diagonal().array() += alpha_;
      dual_ = G.ldlt().solve(Yc);
    }
  }
  matrix predict(const matrix& K_test) const {
    GRCNN_CHECK(dual_.size() > 0, error, "kernel_ridge: predict before fit");
    GRCNN_CHECK(K_test.cols() == dual_.rows(), shape_error, "kernel_ridge: fitted on ", dual_.rows(),
                " samples, the test kernel has ", K_test.cols(), " columns");
    return (K_test * dual_).rowwise() + y_mean_.transpose();
  }

 private:
  double alpha_;
  vector y_mean_;
  matrix dual_;
};

}  // namespace grcnn::eval
