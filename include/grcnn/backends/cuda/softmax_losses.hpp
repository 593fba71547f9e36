#pragma once
// Softmax / log-softmax, cross-entropy, KL divergence, the Jensen-Shannon consistency loss and the
// grouped log-sum-exp on our own row kernels (src/cuda/softmax_losses.cu), in f32 only: bf16 networks
// hand them f32 logits. Targets and loss gradients arriving from the host are copied over.
#include "grcnn/backends/cuda/context.hpp"

namespace grcnn::backends {

template <class P>
struct kernel<cuda_t<P>, ops::softmax_op> {
  using Pr = ops::softmax_problem;
  static status can_implement(const Pr& pr) { return cuda_detail::check_f32(pr.x); }
  static tensor forward(const Pr& pr, const tensor& x) {
    using namespace cuda_detail;
    on_device(pr.log ? "log_softmax" : "softmax", "input", x);
    tensor y = empty(pr.x);
    grcnn::cuda::softmax_forward(cf(x), mf(y), pr.x.dims[0], pr.x.dims[1], pr.log);
    return y;
  }
  static tensor backward(const Pr& pr, const tensor& dy, const tensor& y) {
    using namespace cuda_detail;
    tensor dx = empty(pr.x);
    grcnn::cuda::softmax_backward(cf(dy.to_device(cuda_device)), cf(y), mf(dx), pr.x.dims[0], pr.x.dims[1], pr.log);
    return dx;
  }
};

template <class P>
struct kernel<cuda_t<P>, ops::cross_entropy_op> {
  using Pr = ops::cross_entropy_problem;
  static status can_implement(const Pr& pr) { return cuda_detail::check_f32(pr.logits); }
  struct saved : autograd::payload {
    tensor prob, q;
  };
  // Labels or soft targets may come from the host (a loader's batch): they are copied over.
  static tensor forward(const Pr& pr, const tensor& logits, const tensor& target,
                        std::unique_ptr<autograd::payload>& state) {
    using namespace cuda_detail;
    on_device("cross_entropy", "logits", logits);
    const tensor t = target.to_device(cuda_device);
    auto s = std::make_unique<saved>();
    s->prob = empty(pr.logits);
    s->q = empty(pr.logits);
    tensor loss = tensor::empty(grcnn::shape{}, dtype::f32, layout::plain, cuda_device);
    const bool hard = pr.target == ops::target_kind::hard;
    grcnn::cuda::cross_entropy_forward(cf(logits), hard ? t.template data<std::int64_t>() : nullptr, hard ? nullptr : cf(t),
                                       pr.label_smoothing, pr.logits.dims[0], pr.logits.dims[1], mf(loss), mf(s->prob),
                                       mf(s->q));
    state = std::move(s);
    return loss;
  }
  static tensor backward(const Pr& pr, autograd::payload* state, const tensor& dloss) {
    using namespace cuda_detail;
    const auto& s = *static_cast<saved*>(state);
    tensor d = empty(pr.logits);
    const tensor g = dloss.to_device(cuda_device);
    grcnn::cuda::cross_entropy_backward(cf(g), cf(s.prob), cf(s.q), mf(d), pr.logits.dims[0], pr.logits.dims[1]);
    return d;
  }
};

template <class P>
struct kernel<cuda_t<P>, ops::kl_div_op> {
  using Pr = ops::kl_div_problem;
  static status can_implement(const Pr& pr) { return cuda_detail::check_f32(pr.input); }
  static tensor forward(const Pr& pr, const tensor& input, const tensor& target) {
    using namespace cuda_detail;
    on_device("kl_div", "input", input), on_device("kl_div", "target", target);
    tensor loss = tensor::empty(grcnn::shape{}, dtype::f32, layout::plain, cuda_device);
    grcnn::cuda::kl_div_forward(cf(input), cf(target), mf(loss), pr.input.dims[0], pr.input.dims[1]);
    return loss;
  }
  static void backward(const Pr& pr, const tensor& dloss, const tensor& input, const tensor& target, tensor* dinput,
                       tensor* dtarget) {
    using namespace cuda_detail;
    if (dinput) *dinput = empty(pr.input);
    if (dtarget) *dtarget = empty(pr.input);
    const tensor g = dloss.to_device(cuda_device);
    grcnn::cuda::kl_div_backward(cf(g), cf(input), cf(target), dinput ? mf(*dinput) : nullptr,
                                 dtarget ? mf(*dtarget) : nullptr, pr.input.dims[0], pr.input.dims[1]);
  }
};

template <class P>
struct kernel<cuda_t<P>, ops::jensen_shannon_op> {
  using Pr = ops::jensen_shannon_problem;
  static status can_implement(const Pr& pr) { return cuda_detail::check_f32(pr.logits); }
  struct saved : autograd::payload {
    tensor grad_unit;
  };
  static tensor forward(const Pr& pr, const tensor& logits, std::unique_ptr<autograd::payload>& state) {
    using namespace cuda_detail;
    on_device("jensen_shannon", "logits", logits);
    auto s = std::make_unique<saved>();
    s->grad_unit = empty(pr.logits);
    tensor loss = tensor::empty(grcnn::shape{}, dtype::f32, layout::plain, cuda_device);
    grcnn::cuda::jensen_shannon_forward(cf(logits), pr.logits.dims[0], pr.logits.dims[1], pr.views, mf(loss),
                                        mf(s->grad_unit));
    state = std::move(s);
    return loss;
  }
  static tensor backward(const Pr& pr, autograd::payload* state, const tensor& dloss) {
    using namespace cuda_detail;
    tensor d = empty(pr.logits);
    const tensor g = dloss.to_device(cuda_device);
    grcnn::cuda::scale_by_device_scalar(cf(g), cf(static_cast<saved*>(state)->grad_unit), mf(d), d.numel());
    return d;
  }
};

template <class P>
struct kernel<cuda_t<P>, ops::group_logsumexp_op> {
  using Pr = ops::group_logsumexp_problem;
  static status can_implement(const Pr& pr) { return cuda_detail::check_f32(pr.x); }
  static tensor forward(const Pr& pr, const tensor& x, const tensor& map) {
    using namespace cuda_detail;
    on_device("group_logsumexp", "x", x), on_device("group_logsumexp", "group map", map);
    tensor y = tensor::empty(grcnn::shape{pr.x.dims[0], pr.groups}, dtype::f32, layout::plain, cuda_device);
    grcnn::cuda::group_logsumexp_forward(cf(x), map.template data<std::int64_t>(), pr.x.dims[0], pr.x.dims[1], pr.groups,
                                         mf(y));
    return y;
  }
  static tensor backward(const Pr& pr, const tensor& dy, const tensor& x, const tensor& y, const tensor& map) {
    using namespace cuda_detail;
    tensor dx = empty(pr.x);
    grcnn::cuda::group_logsumexp_backward(cf(dy.to_device(cuda_device)), cf(x), cf(y), map.template data<std::int64_t>(),
                                          pr.x.dims[0], pr.x.dims[1], pr.groups, mf(dx));
    return dx;
  }
};

}  // namespace grcnn::backends
