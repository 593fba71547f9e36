#pragma once
// Softmax / log-softmax over dim 1 of [N, K], cross-entropy (hard labels, soft targets, label
// smoothing; mean over the batch) and KL divergence with reduction 'batchmean'.
#include "grcnn/backends/reference/reference.hpp"

namespace grcnn::backends {

namespace ref_detail {
// Row-wise log-softmax of an [N, K] matrix.
template <class T>
std::vector<T> log_softmax_rows(const std::vector<T>& x, std::int64_t N, std::int64_t K) {
  std::vector<T> out(x.size());
  for (std::int64_t n = 0; n < N; ++n) {
    const T* row = x.data() + n * K;
    T mx = row[0];
    for (std::int64_t k = 1; k < K; ++k) mx = std::max(mx, row[k]);
    T sum = 0;
    for (std::int64_t k = 0; k < K; ++k) sum += std::exp(row[k] - mx);
    const T lse = mx + std::log(sum);
    for (std::int64_t k = 0; k < K; ++k) out[static_cast<std::size_t>(n * K + k)] = row[k] - lse;
  }
  return out;
}
}  // namespace ref_detail

template <class T>
struct kernel<reference<T>, ops::softmax_op> {
  using P = ops::softmax_problem;
  static status can_implement(const P&) { return status::yes(); }
  static tensor forward(const P& pr, const tensor& x) {
    auto v = ref_detail::log_softmax_rows(x.values<T>(), pr.x.dims[0], pr.x.dims[1]);
    if (!pr.log)
      for (auto& e : v) e = std::exp(e);
    return ref_detail::make(pr.x, v);
  }
  // softmax: dx = y (dy - sum(dy y)); log_softmax: dx = dy - exp(y) sum(dy).
  static tensor backward(const P& pr, const tensor& dy, const tensor& y) {
    const auto N = pr.x.dims[0], K = pr.x.dims[1];
    auto g = dy.values<T>();
    const auto yv = y.values<T>();
    for (std::int64_t n = 0; n < N; ++n) {
      T s = 0;
      for (std::int64_t k = 0; k < K; ++k) {
        const auto i = static_cast<std::size_t>(n * K + k);
        s += pr.log ? g[i] : g[i] * yv[i];
      }
      for (std::int64_t k = 0; k < K; ++k) {
        const auto i = static_cast<std::size_t>(n * K + k);
        g[i] = pr.log ? g[i] - std::exp(yv[i]) * s : yv[i] * (g[i] - s);
      }
    }
    return ref_detail::make(pr.x, g);
  }
};

template <class T>
struct kernel<reference<T>, ops::cross_entropy_op> {
  using P = ops::cross_entropy_problem;
  static status can_implement(const P&) { return status::yes(); }

  struct saved : autograd::payload {
    std::vector<T> prob, target;  // softmax and the smoothed target distribution
  };

  static tensor forward(const P& pr, const tensor& logits, const tensor& target,
                        std::unique_ptr<autograd::payload>& state) {
    const auto N = pr.logits.dims[0], K = pr.logits.dims[1];
    const auto logp = ref_detail::log_softmax_rows(logits.values<T>(), N, K);
    auto s = std::make_unique<saved>();
    const T eps = static_cast<T>(pr.label_smoothing);
    if (pr.target == ops::target_kind::hard) {
      const auto labels = target.values<std::int64_t>();
      s->target.assign(logp.size(), eps / static_cast<T>(K));
      for (std::int64_t n = 0; n < N; ++n) s->target[static_cast<std::size_t>(n * K + labels[static_cast<std::size_t>(n)])] += T(1) - eps;
    } else {
      s->target = target.values<T>();
      for (auto& q : s->target) q = q * (T(1) - eps) + eps / static_cast<T>(K);
    }
    T loss = 0;
    for (std::size_t i = 0; i < logp.size(); ++i) loss -= s->target[i] * logp[i];
    s->prob.resize(logp.size());
    for (std::size_t i = 0; i < logp.size(); ++i) s->prob[i] = std::exp(logp[i]);
    state = std::move(s);
    return ref_detail::make(grcnn::shape{}, logits.type() == dtype::f64 ? dtype::f64 : dtype::f32,
                            std::vector<T>{loss / static_cast<T>(N)});
  }

  // d loss / d logits = g / N * (p * sum_k q_k - q).
  static tensor backward(const P& pr, autograd::payload* state, const tensor& dloss) {
    const auto& s = *static_cast<saved*>(state);
    const auto N = pr.logits.dims[0], K = pr.logits.dims[1];
    const T g = static_cast<T>(dloss.item()) / static_cast<T>(N);
    std::vector<T> d(s.prob.size());
    for (std::int64_t n = 0; n < N; ++n) {
      T qs = 0;
      for (std::int64_t k = 0; k < K; ++k) qs += s.target[static_cast<std::size_t>(n * K + k)];
      for (std::int64_t k = 0; k < K; ++k) {
        const auto i = static_cast<std::size_t>(n * K + k);
        d[i] = g * (s.prob[i] * qs - s.target[i]);
      }
    }
    return ref_detail::make(pr.logits, d);
  }
};

template <class T>
struct kernel<reference<T>, ops::kl_div_op> {
  using P = ops::kl_div_problem;
  static status can_implement(const P&) { return status::yes(); }

  static tensor forward(const P& pr, const tensor& input, const tensor& target) {
    const auto x = input.values<T>(), t = target.values<T>();
    T loss = 0;
    for (std::size_t i = 0; i < x.size(); ++i)
      if (t[i] > T(0)) loss += t[i] * (std::log(t[i]) - x[i]);
    return ref_detail::make(grcnn::shape{}, input.type() == dtype::f64 ? dtype::f64 : dtype::f32,
                            std::vector<T>{loss / static_cast<T>(pr.input.dims[0])});
  }
  // d/dx = -t / N; d/dt = (log t + 1 - x) / N where t > 0 (0 where t == 0).
  static void backward(const P& pr, const tensor& dloss, const tensor& input, const tensor& target, tensor* dinput,
                       tensor* dtarget) {
    const T g = static_cast<T>(dloss.item()) / static_cast<T>(pr.input.dims[0]);
    const auto x = input.values<T>(), t = target.values<T>();
    std::vector<T> dx(dinput ? x.size() : 0), dt(dtarget ? x.size() : 0);
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (dinput) dx[i] = -g * t[i];
      if (dtarget) dt[i] = t[i] > T(0) ? g * (std::log(t[i]) + T(1) - x[i]) : T(0);
    }
    if (dinput) *dinput = ref_detail::make(pr.input, dx);
    if (dtarget) *dtarget = ref_detail::make(pr.input, dt);
  }
};

}  // namespace grcnn::backends
