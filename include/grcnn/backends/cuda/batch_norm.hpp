#pragma once
// Batch norm (+ fused ReLU) and the paired batch norm (two affine outputs of one normalisation) on our
// own kernels (src/cuda/norm.cu): statistics and parameters in f32, activations f32 or bf16.
#include <array>

#include "grcnn/backends/cuda/context.hpp"

namespace grcnn::backends {

template <class P>
struct kernel<cuda_t<P>, ops::batch_norm_op> {
  using Pr = ops::batch_norm_problem;
  static status can_implement(const Pr& pr) { return cuda_detail::check(pr.x); }
  struct saved : autograd::payload {
    tensor mean, invstd;
    tensor beta;  // the fused ReLU's mask is recomputed from x in backward (the parameter, not a copy)
  };
  static grcnn::cuda::batch_norm_args args(const Pr& pr) {
    return {cuda_detail::view_of(pr.x), pr.eps, pr.momentum, pr.fuse_relu};
  }
  static tensor forward(const Pr& pr, const tensor& x, const tensor& gamma, const tensor& beta, tensor& running_mean,
                        tensor& running_var, std::unique_ptr<autograd::payload>& state) {
    using namespace cuda_detail;
    for (auto [what, t] : {std::pair<const char*, const tensor*>{"input", &x}, {"weight", &gamma}, {"bias", &beta},
                           {"running_mean", &running_mean}, {"running_var", &running_var}})
      on_device("batch_norm", what, *t);
    auto s = std::make_unique<saved>();
    s->mean = channels(pr.x.dims[1]);
    s->invstd = channels(pr.x.dims[1]);
    s->beta = beta;
    tensor y = empty(pr.x);
    with_storage(pr.x.type, [&]<class S>() {
      if (pr.training)
        grcnn::cuda::batch_norm_forward_training(args(pr), cp<S>(x), cf(gamma), cf(beta), mf(running_mean),
                                                 mf(running_var), mp<S>(y), mf(s->mean), mf(s->invstd));
      else
        grcnn::cuda::batch_norm_forward_inference(args(pr), cp<S>(x), cf(gamma), cf(beta), cf(running_mean),
                                                  cf(running_var), mp<S>(y), mf(s->mean), mf(s->invstd));
    });
    state = std::move(s);
    return y;
  }
  static void backward(const Pr& pr, autograd::payload* state, const tensor& dy, const tensor& x,
                       const tensor& /*y: the ReLU mask comes from x*/, const tensor& gamma, tensor* dx, tensor* dgamma,
                       tensor* dbeta) {
    using namespace cuda_detail;
    const auto& s = *static_cast<saved*>(state);
    const std::int64_t C = pr.x.dims[1];
    tensor dg = channels(C), dbt = channels(C);
    // x's gradient so far, when the tape hands it over (ops::batch_norm allows it), takes dx added in.
    const bool add = adds_into(dx, pr.x);
    if (dx && !add) *dx = empty(pr.x);
    with_storage(pr.x.type, [&]<class S>() {
      grcnn::cuda::batch_norm_backward(args(pr), pr.training, cp<S>(dy), cp<S>(x), cf(gamma), cf(s.beta), cf(s.mean),
                                       cf(s.invstd), dx ? mp<S>(*dx) : nullptr, add, mf(dg), mf(dbt));
    });
    if (dgamma) *dgamma = dg;
    if (dbeta) *dbeta = dbt;
  }
};

// The paired batch norm (ops::paired_batch_norm) in training: statistics once, both outputs from one
// read of x; the backward's two channel reductions, then one dx pass for both gradients
// (grcnn::cuda::batch_norm_pair_*). An output nothing used (no gradient) leaves the other's plain
// backward, with zero gradients for the unused one's parameters.
template <class P>
struct kernel<cuda_t<P>, ops::paired_batch_norm_op> {
  using Pr = ops::batch_norm_problem;
  using single = kernel<cuda_t<P>, ops::batch_norm_op>;
  struct saved : autograd::payload {
    tensor mean, invstd, beta_a, beta_b;  // the betas for the fused ReLU's masks
  };
  static status can_implement(const Pr& pr) {
    if (!pr.training) return status::no("paired batch norm is a training kernel (evaluation uses each BN's own running statistics)");
    return cuda_detail::check(pr.x);
  }
  static std::array<tensor, 2> forward(const Pr& pr, const tensor& x, const tensor& ga, const tensor& ba, const tensor& gb,
                                       const tensor& bb, tensor& rma, tensor& rva, tensor& rmb, tensor& rvb,
                                       std::unique_ptr<autograd::payload>& state) {
    using namespace cuda_detail;
    for (auto [what, t] : {std::pair<const char*, const tensor*>{"input", &x}, {"first weight", &ga}, {"first bias", &ba},
                           {"second weight", &gb}, {"second bias", &bb}, {"first running_mean", &rma},
                           {"first running_var", &rva}, {"second running_mean", &rmb}, {"second running_var", &rvb}})
      on_device("paired_batch_norm", what, *t);
    auto s = std::make_unique<saved>();
    s->mean = channels(pr.x.dims[1]);
    s->invstd = channels(pr.x.dims[1]);
    s->beta_a = ba, s->beta_b = bb;
    std::array<tensor, 2> y{empty(pr.x), empty(pr.x)};
    const grcnn::cuda::batch_norm_affine a{cf(ga), cf(ba), mf(rma), mf(rva)}, b{cf(gb), cf(bb), mf(rmb), mf(rvb)};
    with_storage(pr.x.type, [&]<class S>() {
      grcnn::cuda::batch_norm_pair_forward_training(single::args(pr), cp<S>(x), a, b, mp<S>(y[0]), mp<S>(y[1]),
                                                    mf(s->mean), mf(s->invstd));
    });
    state = std::move(s);
    return y;
  }
  static void backward(const Pr& pr, autograd::payload* state, const tensor& dya, const tensor& dyb, const tensor& x,
                       const tensor& /*ya*/, const tensor& /*yb: the ReLU masks come from x*/, const tensor& ga,
                       const tensor& gb, tensor* dx, tensor* dga, tensor* dba, tensor* dgb, tensor* dbb) {
    using namespace cuda_detail;
    const auto& s = *static_cast<saved*>(state);
    const std::int64_t C = pr.x.dims[1];
    const grcnn::cuda::batch_norm_affine a{cf(ga), cf(s.beta_a)}, b{cf(gb), cf(s.beta_b)};
    const auto zeros = [&] {
      tensor z = channels(C);
      grcnn::cuda::fill(mf(z), 0.f, C);
      return z;
    };
    // x's gradient so far, when the tape hands it over (ops::paired_batch_norm allows it), takes dx added in.
    const bool add = adds_into(dx, pr.x);
    if (!dya.defined() && !dyb.defined()) {  // nothing used either output: x's gradient stays as it was
      for (tensor* t : {dga, dba, dgb, dbb})
        if (t) *t = zeros();
      if (dx && !add) *dx = tensor();
      return;
    }
    if (dx && !add) *dx = empty(pr.x);
    if (!dya.defined() || !dyb.defined()) {  // an output nothing used: no gradient from it
      const bool first = dya.defined();
      tensor g = channels(C), bt = channels(C);
      const grcnn::cuda::batch_norm_affine& k = first ? a : b;
      const tensor& dy = first ? dya : dyb;
      with_storage(pr.x.type, [&]<class S>() {
        grcnn::cuda::batch_norm_backward(single::args(pr), true, cp<S>(dy), cp<S>(x), k.gamma, k.beta, cf(s.mean),
                                         cf(s.invstd), dx ? mp<S>(*dx) : nullptr, add, mf(g), mf(bt));
      });
      if (dga) *dga = first ? g : zeros();
      if (dba) *dba = first ? bt : zeros();
      if (dgb) *dgb = first ? zeros() : g;
      if (dbb) *dbb = first ? zeros() : bt;
      return;
    }
    tensor g1 = channels(C), b1 = channels(C), g2 = channels(C), b2 = channels(C);
    with_storage(pr.x.type, [&]<class S>() {
      grcnn::cuda::batch_norm_pair_backward(single::args(pr), cp<S>(dya), cp<S>(dyb), cp<S>(x), a, b, cf(s.mean),
                                            cf(s.invstd), dx ? mp<S>(*dx) : nullptr, add, mf(g1), mf(b1), mf(g2),
                                            mf(b2));
    });
    if (dga) *dga = g1;
    if (dba) *dba = b1;
    if (dgb) *dgb = g2;
    if (dbb) *dbb = b2;
  }
};

}  // namespace grcnn::backends
