#pragma once
// Softmax / log-softmax through oneDNN's softmax_v2; cross-entropy and KL divergence as one pass over
// the log-softmax in f32 (these are [N, K] with small K: memory-bound loops, not worth a primitive).
// The Jensen-Shannon loss and the grouped log-sum-exp are the reference loops, computed in double.
//
// NaN: oneDNN's softmax keeps a row's NaN or +Inf to its own element (PyTorch's whole row is NaN), so a
// softmax whose input (forward) or output (backward) holds a NaN or an infinity runs on the reference
// backend in double; so does the cross-entropy's log-softmax.
#include "grcnn/backends/onednn/elementwise.hpp"

namespace grcnn::backends {

namespace onednn_detail {
struct softmax_plan : plan_base {
  dnnl::softmax_v2_forward::primitive_desc fwd_pd;
  dnnl::softmax_v2_forward fwd;
  dnnl::softmax_v2_backward bwd;
};
inline softmax_plan& softmax_plan_for(const ops::tensor_desc& x, bool log) {
  return cached_plan<softmax_plan>((log ? "logsoftmax" : "softmax") + x.str(), [&] {
    const auto algo = log ? dnnl::algorithm::softmax_log : dnnl::algorithm::softmax_accurate;
    const auto d = md(x);
    softmax_plan p;
    p.fwd_pd = dnnl::softmax_v2_forward::primitive_desc(
        dnnl::softmax_v2_forward::desc(dnnl::prop_kind::forward_training, algo, d, d, 1), user_scratchpad(), engine());
    p.fwd = dnnl::softmax_v2_forward(p.fwd_pd);
    p.bwd = dnnl::softmax_v2_backward(dnnl::softmax_v2_backward::primitive_desc(
        dnnl::softmax_v2_backward::desc(algo, d, d, d, 1), user_scratchpad(), engine(), p.fwd_pd));
    return p;
  });
}
inline tensor run_softmax(const ops::tensor_desc& x_desc, bool log, const tensor& x) {
  tensor y = tensor::empty(x_desc.dims, x_desc.type);
  execute(softmax_plan_for(x_desc, log).fwd, {{DNNL_ARG_SRC, mem(x)}, {DNNL_ARG_DST, mem(y)}});
  return y;
}
inline status check_f32_loss(const ops::tensor_desc& d) {
  if (d.type == dtype::f32) return status::yes();
  return status::no("losses run in f32 on oneDNN; got " + std::string(name_of(d.type)));
}
}  // namespace onednn_detail

template <>
struct kernel<onednn, ops::softmax_op> {
  using P = ops::softmax_problem;
  using Ref = kernel<reference<double>, ops::softmax_op>;
  static status can_implement(const P& pr) { return onednn_detail::check_dtype(pr.x.type); }
  static tensor forward(const P& pr, const tensor& x) {
    onednn_detail::host_only("softmax", {&x});
    if (onednn_detail::has_nonfinite(x)) return Ref::forward(pr, x);
    return onednn_detail::run_softmax(pr.x, pr.log, x);
  }
  static tensor backward(const P& pr, const tensor& dy, const tensor& y) {
    using namespace onednn_detail;
    host_only("softmax backward", {&dy, &y});
    if (has_nonfinite(y)) return Ref::backward(pr, dy, y);
    tensor dx = tensor::empty(pr.x.dims, pr.x.type);
    execute(softmax_plan_for(pr.x, pr.log).bwd, {{DNNL_ARG_DST, mem(y)}, {DNNL_ARG_DIFF_DST, mem(dy)}, {DNNL_ARG_DIFF_SRC, mem(dx)}});
    return dx;
  }
};

template <>
struct kernel<onednn, ops::cross_entropy_op> {
  using P = ops::cross_entropy_problem;
  struct saved : autograd::payload {
    tensor grad_unit;  // d loss / d logits for an upstream gradient of 1
  };
  static status can_implement(const P& pr) { return onednn_detail::check_f32_loss(pr.logits); }

  static tensor forward(const P& pr, const tensor& logits, const tensor& target,
                        std::unique_ptr<autograd::payload>& state) {
    onednn_detail::host_only("cross_entropy", {&logits, &target});
    const auto N = pr.logits.dims[0], K = pr.logits.dims[1];
    const tensor logp = onednn_detail::has_nonfinite(logits)
                            ? kernel<reference<double>, ops::softmax_op>::forward({pr.logits, true}, logits)
                            : onednn_detail::run_softmax(pr.logits, true, logits);
    const float* lp = logp.data<float>();
    const float eps = static_cast<float>(pr.label_smoothing), uniform = eps / static_cast<float>(K);
    auto s = std::make_unique<saved>();
    s->grad_unit = tensor::empty(pr.logits.dims);
    float* g = s->grad_unit.data<float>();
    const std::int64_t* labels = pr.target == ops::target_kind::hard ? target.data<std::int64_t>() : nullptr;
    const float* soft = pr.target == ops::target_kind::soft ? target.data<float>() : nullptr;
    double loss = 0;
    const float invN = 1.f / static_cast<float>(N);
    for (std::int64_t n = 0; n < N; ++n) {
      double row = 0, qsum = 0;
      for (std::int64_t k = 0; k < K; ++k) {
        const auto i = n * K + k;
        const float q = labels ? (k == labels[n] ? 1.f - eps + uniform : uniform) : soft[i] * (1.f - eps) + uniform;
        // A hard label's zero weights are no terms (PyTorch's nll_loss): -Inf there keeps the loss finite.
        if (!labels || q != 0.f) row -= static_cast<double>(q) * lp[i];
        qsum += q;
        g[i] = -q;
      }
      for (std::int64_t k = 0; k < K; ++k) {
        const auto i = n * K + k;
        g[i] = (g[i] + std::exp(lp[i]) * static_cast<float>(qsum)) * invN;
      }
      loss += row;
    }
    state = std::move(s);
    return tensor::scalar(loss / static_cast<double>(N));
  }

  static tensor backward(const P& pr, autograd::payload* state, const tensor& dloss) {
    const tensor& unit = static_cast<saved*>(state)->grad_unit;
    const float g = static_cast<float>(dloss.item());
    tensor d = tensor::empty(pr.logits.dims);
    const float* u = unit.data<float>();
    float* o = d.data<float>();
    for (std::int64_t i = 0; i < d.numel(); ++i) o[i] = g * u[i];
    return d;
  }
};

template <>
struct kernel<onednn, ops::kl_div_op> {
  using P = ops::kl_div_problem;
  static status can_implement(const P& pr) { return onednn_detail::check_f32_loss(pr.input); }

  static tensor forward(const P& pr, const tensor& input, const tensor& target) {
    onednn_detail::host_only("kl_div", {&input, &target});
    const float *x = input.data<float>(), *t = target.data<float>();
    double loss = 0;  // PyTorch's xlogy(t, t) - t * x: NaN and 0 * -Inf make it NaN
    for (std::int64_t i = 0; i < input.numel(); ++i) loss += ref_detail::kl_pointwise<double>(x[i], t[i]);
    return tensor::scalar(loss / static_cast<double>(pr.input.dims[0]));
  }
  static void backward(const P& pr, const tensor& dloss, const tensor& input, const tensor& target, tensor* dinput,
                       tensor* dtarget) {
    const float g = static_cast<float>(dloss.item()) / static_cast<float>(pr.input.dims[0]);
    const float *x = input.data<float>(), *t = target.data<float>();
    float* dx = dinput ? (*dinput = tensor::empty(pr.input.dims)).data<float>() : nullptr;
    float* dt = dtarget ? (*dtarget = tensor::empty(pr.input.dims)).data<float>() : nullptr;
    for (std::int64_t i = 0; i < input.numel(); ++i) {
      if (dx) dx[i] = -g * t[i];
      if (dt) dt[i] = g * ref_detail::kl_target_slope(x[i], t[i]);  // NaN where t is 0, as in PyTorch
    }
  }
};

// The reference's loops in double on f32 host tensors: tiny [N, K] problems where a primitive would not
// pay, and whose gradients (small differences of O(1) terms once softmaxes saturate) f32 would lose.
template <class Op>
struct onednn_host_loop {
  using Ref = kernel<reference<double>, Op>;
  static status can_implement(const typename Op::problem& pr) {
    if constexpr (requires { pr.logits; })
      return onednn_detail::check_f32_loss(pr.logits);
    else
      return onednn_detail::check_f32_loss(pr.x);
  }
};

template <>
struct kernel<onednn, ops::jensen_shannon_op> : onednn_host_loop<ops::jensen_shannon_op> {
  static tensor forward(const ops::jensen_shannon_problem& pr, const tensor& logits, std::unique_ptr<autograd::payload>& state) {
    onednn_detail::host_only("jensen_shannon", {&logits});
    return Ref::forward(pr, logits, state);
  }
  static tensor backward(const ops::jensen_shannon_problem& pr, autograd::payload* state, const tensor& dloss) {
    return Ref::backward(pr, state, dloss);
  }
};

template <>
struct kernel<onednn, ops::group_logsumexp_op> : onednn_host_loop<ops::group_logsumexp_op> {
  static tensor forward(const ops::group_logsumexp_problem& pr, const tensor& x, const tensor& map) {
    onednn_detail::host_only("group_logsumexp", {&x, &map});
    return Ref::forward(pr, x, map);
  }
  static tensor backward(const ops::group_logsumexp_problem& pr, const tensor& dy, const tensor& x, const tensor& y,
                         const tensor& map) {
    onednn_detail::host_only("group_logsumexp backward", {&dy});
    return Ref::backward(pr, dy, x, y, map);
  }
};

}  // namespace grcnn::backends
