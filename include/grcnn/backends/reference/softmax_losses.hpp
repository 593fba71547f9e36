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
// KL divergence's pointwise loss as PyTorch writes it, xlogy(t, t) - t * x, where xlogy(t, y) is 0 for
// t == 0 unless y is NaN: NaN in x or t gives NaN, and so does 0 * -Inf.
template <class T>
T kl_pointwise(T x, T t) {
  return (t == T(0) ? T(0) : t * std::log(t)) - t * x;
}
// Its derivative in t as PyTorch's autograd forms it from xlogy's two: xlogy(t != 0, t) + t / t - x,
// NaN where t is 0 (0 / 0), NaN or infinite.
template <class T>
T kl_target_slope(T x, T t) {
  return (t == T(0) ? T(0) : std::log(t)) + t / t - x;
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
    // A hard label's zero target weights are not terms of the sum (PyTorch's nll_loss picks the label's
    // log-probability): a -Inf log-probability there leaves the loss finite. A soft target's zeros are
    // (0 * -Inf = NaN, as in PyTorch).
    T loss = 0;
    for (std::size_t i = 0; i < logp.size(); ++i)
      if (pr.target == ops::target_kind::soft || s->target[i] != T(0)) loss -= s->target[i] * logp[i];
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

  // PyTorch's pointwise loss xlogy(t, t) - t * x (xlogy(0, y) = 0 unless y is NaN): a NaN target or input
  // makes the loss NaN, and so does 0 * -Inf.
  static tensor forward(const P& pr, const tensor& input, const tensor& target) {
    const auto x = input.values<T>(), t = target.values<T>();
    T loss = 0;
    for (std::size_t i = 0; i < x.size(); ++i) loss += ref_detail::kl_pointwise(x[i], t[i]);
    return ref_detail::make(grcnn::shape{}, input.type() == dtype::f64 ? dtype::f64 : dtype::f32,
                            std::vector<T>{loss / static_cast<T>(pr.input.dims[0])});
  }
  // d/dx = -t / N; d/dt = (log t + t / t - x) / N, PyTorch's xlogy derivative: NaN where t is 0 (0 / 0),
  // NaN or infinite.
  static void backward(const P& pr, const tensor& dloss, const tensor& input, const tensor& target, tensor* dinput,
                       tensor* dtarget) {
    const T g = static_cast<T>(dloss.item()) / static_cast<T>(pr.input.dims[0]);
    const auto x = input.values<T>(), t = target.values<T>();
    std::vector<T> dx(dinput ? x.size() : 0), dt(dtarget ? x.size() : 0);
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (dinput) dx[i] = -g * t[i];
      if (dtarget) dt[i] = g * ref_detail::kl_target_slope(x[i], t[i]);
    }
    if (dinput) *dinput = ref_detail::make(pr.input, dx);
    if (dtarget) *dtarget = ref_detail::make(pr.input, dt);
  }
};

template <class T>
struct kernel<reference<T>, ops::jensen_shannon_op> {
  using P = ops::jensen_shannon_problem;
  static status can_implement(const P&) { return status::yes(); }
  struct saved : autograd::payload {
    std::vector<T> grad_unit;  // d loss / d logits for an upstream gradient of 1
  };

  // With g_vk = (log p_vk + 1 - log m_k - [M_k in clamp range] M_k / m_k) / (V N) (d loss / d p_vk;
  // p log p counts 0 where p = 0, whose g is NaN as in PyTorch), d loss / d z_vj = p_vj (g_vj - sum_k p_vk g_vk).
  static tensor forward(const P& pr, const tensor& logits, std::unique_ptr<autograd::payload>& state) {
    const auto rows = pr.logits.dims[0], K = pr.logits.dims[1], V = static_cast<std::int64_t>(pr.views), N = rows / V;
    auto p = ref_detail::log_softmax_rows(logits.values<T>(), rows, K);
    for (auto& e : p) e = std::exp(e);
    const T lo = T(1e-7), scale = T(1) / static_cast<T>(V * N);
    auto s = std::make_unique<saved>();
    std::vector<T> g(p.size());
    T loss = 0;
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t k = 0; k < K; ++k) {
        T M = 0;
        for (std::int64_t v = 0; v < V; ++v) M += p[static_cast<std::size_t>((v * N + n) * K + k)];
        M /= static_cast<T>(V);
        const T m = std::clamp(M, lo, T(1)), logm = std::log(m);
        const T through_m = (M >= lo && M <= T(1)) ? M / m : T(0);
        for (std::int64_t v = 0; v < V; ++v) {
          const auto i = static_cast<std::size_t>((v * N + n) * K + k);
          // PyTorch's kl_div terms xlogy(p, p) - p log m and their derivative log p + p / p - log m: a
          // probability of exactly 0 adds nothing to the loss and NaN to the gradient (0 / 0), NaN stays.
          loss += ref_detail::kl_pointwise(logm, p[i]);
          g[i] = scale * (ref_detail::kl_target_slope(logm, p[i]) - through_m);
        }
      }
    s->grad_unit.resize(p.size());
    for (std::int64_t r = 0; r < rows; ++r) {
      T dot = 0;
      for (std::int64_t k = 0; k < K; ++k) dot += p[static_cast<std::size_t>(r * K + k)] * g[static_cast<std::size_t>(r * K + k)];
      for (std::int64_t k = 0; k < K; ++k) {
        const auto i = static_cast<std::size_t>(r * K + k);
        s->grad_unit[i] = p[i] * (g[i] - dot);
      }
    }
    state = std::move(s);
    return ref_detail::make(grcnn::shape{}, logits.type() == dtype::f64 ? dtype::f64 : dtype::f32,
                            std::vector<T>{loss * scale});
  }
  static tensor backward(const P& pr, autograd::payload* state, const tensor& dloss) {
    auto d = static_cast<saved*>(state)->grad_unit;
    const T g = static_cast<T>(dloss.item());
    for (auto& e : d) e *= g;
    return ref_detail::make(pr.logits, d);
  }
};

template <class T>
struct kernel<reference<T>, ops::group_logsumexp_op> {
  using P = ops::group_logsumexp_problem;
  static status can_implement(const P&) { return status::yes(); }
  static tensor forward(const P& pr, const tensor& x, const tensor& map) {
    const auto N = pr.x.dims[0], K = pr.x.dims[1], S = pr.groups;
    const auto xv = x.values<T>();
    const auto group = map.values<std::int64_t>();
    std::vector<T> out(static_cast<std::size_t>(N * S));
    for (std::int64_t n = 0; n < N; ++n) {
      std::vector<T> mx(static_cast<std::size_t>(S), -std::numeric_limits<T>::infinity()), sum(static_cast<std::size_t>(S), T(0));
      for (std::int64_t k = 0; k < K; ++k)
        if (const auto s = group[static_cast<std::size_t>(k)]; s >= 0)
          mx[static_cast<std::size_t>(s)] = std::max(mx[static_cast<std::size_t>(s)], xv[static_cast<std::size_t>(n * K + k)]);
      // PyTorch's logsumexp shifts by 0 where the maximum is infinite: a group holding +Inf gives +Inf, a
      // group all -Inf gives -Inf (not exp(Inf - Inf) = NaN).
      for (auto& m : mx)
        if (std::isinf(m)) m = T(0);
      for (std::int64_t k = 0; k < K; ++k)
        if (const auto s = group[static_cast<std::size_t>(k)]; s >= 0)
          sum[static_cast<std::size_t>(s)] += std::exp(xv[static_cast<std::size_t>(n * K + k)] - mx[static_cast<std::size_t>(s)]);
      for (std::int64_t s = 0; s < S; ++s)
        out[static_cast<std::size_t>(n * S + s)] = mx[static_cast<std::size_t>(s)] + std::log(sum[static_cast<std::size_t>(s)]);
    }
    return ref_detail::make(grcnn::shape{N, S}, pr.x.type, out);
  }
  // dx[n, k] = dy[n, s] * exp(x[n, k] - y[n, s]) with s = group[k] (0 for columns outside every group).
  static tensor backward(const P& pr, const tensor& dy, const tensor& x, const tensor& y, const tensor& map) {
    const auto N = pr.x.dims[0], K = pr.x.dims[1], S = pr.groups;
    const auto xv = x.values<T>(), yv = y.values<T>(), dv = dy.values<T>();
    const auto group = map.values<std::int64_t>();
    std::vector<T> dx(xv.size(), T(0));
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t k = 0; k < K; ++k)
        if (const auto s = group[static_cast<std::size_t>(k)]; s >= 0) {
          const auto o = static_cast<std::size_t>(n * S + s);
          dx[static_cast<std::size_t>(n * K + k)] = dv[o] * std::exp(xv[static_cast<std::size_t>(n * K + k)] - yv[o]);
        }
    return ref_detail::make(pr.x, dx);
  }
};

}  // namespace grcnn::backends
