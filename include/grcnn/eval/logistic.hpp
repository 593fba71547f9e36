#pragma once
// Brain-Score's behavioural readout: StandardScaler, then sklearn's LogisticRegression(multinomial,
// L2, C = 1e-3, with intercept). The objective is convex with a unique minimiser,
//   sum_i [logsumexp(z_i) - z_i,y_i] + ||W||^2 / (2 C),   z_i = W^T x_i + b (intercept unpenalised),
// solved here by Newton's method with conjugate-gradient steps on Hessian-vector products (sklearn's
// newton-cg) to a gradient tolerance far below sklearn's default, so probabilities agree with a tight
// sklearn fit; sklearn's default tol (1e-4) stops earlier, which moves probabilities by ~1e-5.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <Eigen/Dense>

#include "grcnn/core/error.hpp"

namespace grcnn::eval {

struct logistic_options {
  double C = 1e-3;          // inverse regularisation strength (Brain-Score: 1e-3)
  double tol = 1e-10;       // on the largest gradient entry, relative to the loss scale
  int max_iter = 200;       // Newton steps
  bool standardize = true;  // StandardScaler fitted on the training features (ddof 0)
};

class logistic_regression {
 public:
  explicit logistic_regression(logistic_options o = {}) : o_(o) {
    GRCNN_CHECK(o.C > 0, error, "logistic_regression: C must be positive, got ", o.C);
  }

  // X: samples x features; labels in [0, classes).
  void fit(const Eigen::MatrixXd& X, const std::vector<std::int64_t>& labels, int classes) {
    GRCNN_CHECK(X.rows() == static_cast<Eigen::Index>(labels.size()) && X.rows() >= 2, shape_error,
                "logistic_regression: ", X.rows(), " samples but ", labels.size(), " labels");
    GRCNN_CHECK(classes >= 2, error, "logistic_regression: needs at least 2 classes, got ", classes);
    for (auto l : labels)
      GRCNN_CHECK(l >= 0 && l < classes, error, "logistic_regression: label ", l, " outside [0, ", classes, ")");
    mean_ = Eigen::RowVectorXd::Zero(X.cols());
    scale_ = Eigen::RowVectorXd::Ones(X.cols());
    if (o_.standardize) {
      mean_ = X.colwise().mean();
      scale_ = ((X.rowwise() - mean_).array().square().colwise().mean()).sqrt();
      for (Eigen::Index j = 0; j < scale_.size(); ++j)
        if (scale_(j) == 0) scale_(j) = 1;  // sklearn leaves constant features unscaled
    }
    const Eigen::MatrixXd Z = standardized(X);
    const auto n = Z.rows(), p = Z.cols(), K = static_cast<Eigen::Index>(classes);
    Eigen::MatrixXd Y = Eigen::MatrixXd::Zero(n, K);
    for (Eigen::Index i = 0; i < n; ++i) Y(i, labels[static_cast<std::size_t>(i)]) = 1;
    W_ = Eigen::MatrixXd::Zero(p, K);
    b_ = Eigen::RowVectorXd::Zero(K);
    const double lambda = 1.0 / o_.C;
    auto probabilities = [&](const Eigen::MatrixXd& W, const Eigen::RowVectorXd& b) {
      Eigen::MatrixXd L = (Z * W).rowwise() + b;
      for (Eigen::Index i = 0; i < n; ++i) {
        const double m = L.row(i).maxCoeff();
        L.row(i) = (L.row(i).array() - m).exp();
        L.row(i) /= L.row(i).sum();
      }
      return L;
    };
    auto loss = [&](const Eigen::MatrixXd& W, const Eigen::RowVectorXd& b) {
      const Eigen::MatrixXd L = (Z * W).rowwise() + b;
      double f = 0;
      for (Eigen::Index i = 0; i < n; ++i) {
        const double m = L.row(i).maxCoeff();
        f += m + std::log((L.row(i).array() - m).exp().sum()) - (L.row(i).array() * Y.row(i).array()).sum();
      }
      return f + 0.5 * lambda * W.squaredNorm();
    };
    iterations_ = 0;
    for (; iterations_ < o_.max_iter; ++iterations_) {
      const Eigen::MatrixXd P = probabilities(W_, b_);
      const Eigen::MatrixXd D = P - Y;
      const Eigen::MatrixXd gW = Z.transpose() * D + lambda * W_;
      const Eigen::RowVectorXd gb = D.colwise().sum();
      const double gmax = std::max(gW.cwiseAbs().maxCoeff(), gb.cwiseAbs().maxCoeff());
      if (gmax <= o_.tol * static_cast<double>(n)) break;
      // Hessian-vector product for a direction (V, vb).
      auto hess = [&](const Eigen::MatrixXd& V, const Eigen::RowVectorXd& vb, Eigen::MatrixXd& hV, Eigen::RowVectorXd& hb) {
        const Eigen::MatrixXd dZ = (Z * V).rowwise() + vb;
        Eigen::MatrixXd dP = P.cwiseProduct(dZ);
        const Eigen::VectorXd s = dP.rowwise().sum();
        dP -= P.cwiseProduct(s.replicate(1, K));
        hV = Z.transpose() * dP + lambda * V;
        hb = dP.colwise().sum();
      };
      // Conjugate gradients on H d = -g.
      Eigen::MatrixXd dW = Eigen::MatrixXd::Zero(p, K), rW = -gW, qW = rW, hW;
      Eigen::RowVectorXd db = Eigen::RowVectorXd::Zero(K), rb = -gb, qb = rb, hb;
      double rr = rW.squaredNorm() + rb.squaredNorm();
      const double stop = std::min(0.5, std::sqrt(std::sqrt(rr))) * std::sqrt(rr);
      for (int cg = 0; cg < 20 * static_cast<int>(p * K + K) && std::sqrt(rr) > stop; ++cg) {
        hess(qW, qb, hW, hb);
        const double curv = (qW.cwiseProduct(hW)).sum() + qb.dot(hb);
        if (curv <= 0) break;
        const double alpha = rr / curv;
        dW += alpha * qW, db += alpha * qb;
        rW -= alpha * hW, rb -= alpha * hb;
        const double rr_new = rW.squaredNorm() + rb.squaredNorm();
        qW = rW + (rr_new / rr) * qW, qb = rb + (rr_new / rr) * qb;
        rr = rr_new;
      }
      // Backtracking (Armijo) line search.
      const double f0 = loss(W_, b_), slope = (gW.cwiseProduct(dW)).sum() + gb.dot(db);
      double step = 1;
      while (step > 1e-12 && loss(W_ + step * dW, b_ + step * db) > f0 + 1e-4 * step * slope) step *= 0.5;
      W_ += step * dW, b_ += step * db;
    }
    GRCNN_CHECK(iterations_ < o_.max_iter, numeric_error, "logistic_regression: no convergence in ", o_.max_iter,
                " Newton steps");
  }

  Eigen::MatrixXd predict_proba(const Eigen::MatrixXd& X) const {
    GRCNN_CHECK(W_.size() > 0, error, "logistic_regression: predict before fit");
    GRCNN_CHECK(X.cols() == W_.rows(), shape_error, "logistic_regression: fitted on ", W_.rows(), " features, got ", X.cols());
    Eigen::MatrixXd L = (standardized(X) * W_).rowwise() + b_;
    for (Eigen::Index i = 0; i < L.rows(); ++i) {
      const double m = L.row(i).maxCoeff();
      L.row(i) = (L.row(i).array() - m).exp();
      L.row(i) /= L.row(i).sum();
    }
    return L;
  }
  int iterations() const { return iterations_; }

 private:
  Eigen::MatrixXd standardized(const Eigen::MatrixXd& X) const {
    return (X.rowwise() - mean_).array().rowwise() / scale_.array();
  }
  logistic_options o_;
  Eigen::RowVectorXd mean_, scale_, b_;
  Eigen::MatrixXd W_;
  int iterations_ = 0;
};

}  // namespace grcnn::eval
