#pragma once
// The run-time GRCL: one class for every GRCL description (its options are run-time copies of the
// compile-time ones), so T iterations and all GRCLs of a network share one instantiation.
//
//   x0 = conv_f(relu(bn_f(u)))          gf = conv_g_f(relu(bn_g_f(u)))
//   x_t = x_{t-1} + sigmoid(conv_g_r(relu(bn_g_t(x_{t-1}))) + gf) * iter_t(x_{t-1}),   t = 1..T
//   out = d_conv(avgpool2(relu(d_bn(x_T)))) + d_conv_1e(d_conv_3(relu(d_bn_3(d_conv_1(relu(d_bn_1(x_T)))))))
//
// conv_g_r is one module shared by all iterations; iter_t is a 1x1-3x3-1x1 pre-activation bottleneck
// (3x3 replaced by SKConv in SK variants), whose convs are shared too with weight sharing.
#include <memory>

#include "grcnn/nn/sk_conv.hpp"

namespace grcnn::nn {

class grcl_module {
 public:
  grcl_module(const grcl_options& o, initializer& rng) : o_(o) {
    const int E = o.out_channels(), p = o.planes, g = o.groups;
    const double mom = o.bn_momentum;
    bn_f_ = std::make_unique<batch_norm_layer>(o.in_channels, mom);
    conv_f_ = std::make_unique<conv2d_layer>(o.in_channels, E, 3, 1, 1, 1, g, false, conv_init::kaiming_normal, rng);
    bn_g_f_ = std::make_unique<batch_norm_layer>(o.in_channels, mom);
    conv_g_f_ = std::make_unique<conv2d_layer>(o.in_channels, E, 1, 1, 0, 1, g, true, conv_init::normal_001, rng);
    conv_g_r_ = std::make_unique<conv2d_layer>(
        E, E, 1, 1, 0, 1, g, false, o.style == code_style::cifar ? conv_init::normal_001 : conv_init::default_uniform, rng);
    const bool sk = o.middle == middle_kind::selective_kernel;
    // The original code leaves the non-shared 3x3 at PyTorch's default init; the shared one is kaiming.
    const conv_init mid_init = o.weight_sharing ? conv_init::kaiming_normal : conv_init::default_uniform;
    std::shared_ptr<conv2d_layer> conv_in, conv_mid, conv_out;
    std::shared_ptr<sk_conv_module> sk_mid;
    for (int t = 0; t < o.iterations; ++t) {
      iteration it;
      it.bn0 = std::make_unique<batch_norm_layer>(E, mom);
      if (!o.weight_sharing || t == 0) {
        conv_in = std::make_shared<conv2d_layer>(E, p, 1, 1, 0, 1, 1, false, conv_init::kaiming_normal, rng);
        if (sk)
          sk_mid = std::make_shared<sk_conv_module>(p, p, 1, g, o.style, mom, rng);
        else
          conv_mid = std::make_shared<conv2d_layer>(p, p, 3, 1, 1, 1, 1, false, mid_init, rng);
        conv_out = std::make_shared<conv2d_layer>(p, E, 1, 1, 0, 1, 1, false, conv_init::kaiming_normal, rng);
      }
      it.conv2 = conv_in;
      it.bn3 = std::make_unique<batch_norm_layer>(p, mom);
      it.conv5 = conv_mid;
      it.sk5 = sk_mid;
      if (!sk) it.bn6 = std::make_unique<batch_norm_layer>(p, mom);
      it.conv_last = conv_out;
      it.gate_bn = std::make_unique<batch_norm_layer>(E, mom);
      iterations_.push_back(std::move(it));
    }
    if (o.downsample) {
      d_bn_ = std::make_unique<batch_norm_layer>(E, mom);
      d_conv_ = std::make_unique<conv2d_layer>(E, E, 1, 1, 0, 1, 1, false, conv_init::kaiming_normal, rng);
      d_bn_1_ = std::make_unique<batch_norm_layer>(E, mom);
      d_conv_1_ = std::make_unique<conv2d_layer>(E, p, 1, 1, 0, 1, 1, false, conv_init::kaiming_normal, rng);
      d_bn_3_ = std::make_unique<batch_norm_layer>(p, mom);
      if (sk)
        d_sk_3_ = std::make_unique<sk_conv_module>(p, p, 2, g, o.style, mom, rng);
      else
        d_conv_3_ = std::make_unique<conv2d_layer>(p, p, 3, 2, 1, 1, 1, false, conv_init::kaiming_normal, rng);
      if (o.style == code_style::cifar && !sk) d_bn_1e_ = std::make_unique<batch_norm_layer>(p, mom);  // registered, unused
      d_conv_1e_ = std::make_unique<conv2d_layer>(p, E, 1, 1, 0, 1, 1, false, conv_init::kaiming_normal, rng);
    }
  }

  template <class B>
  variable forward(const variable& u, const forward_context& ctx, const std::string& name) {
    const variable x0 = conv_f_->forward<B>(bn_relu<B>(*bn_f_, u, ctx, name, "bn_f", "relu_f"));
    ctx.emit(name, "conv_f", x0);
    const variable gf = conv_g_f_->forward<B>(bn_relu<B>(*bn_g_f_, u, ctx, name, "bn_g_f", "relu_g_f"));
    ctx.emit(name, "conv_g_f", gf);
    variable x = x0;
    for (int t = 0; t < o_.iterations; ++t) {
      iteration& it = iterations_[static_cast<std::size_t>(t)];
      const std::string gate = ctx.tapping() ? join(name, "iter_g_" + std::to_string(t + 1)) : std::string();
      const std::string body = ctx.tapping() ? join(name, "iter_" + std::to_string(t + 1)) : std::string();
      const variable gr = conv_g_r_->forward<B>(bn_relu<B>(*it.gate_bn, x, ctx, gate, "0", "1"));
      ctx.emit(name, "conv_g_r", gr, t);
      variable h = it.conv2->forward<B>(bn_relu<B>(*it.bn0, x, ctx, body, "0", "1"));
      ctx.emit(body, "2", h);
      h = bn_relu<B>(*it.bn3, h, ctx, body, "3", "4");
      if (it.sk5) {
        h = it.sk5->forward<B>(h, ctx, join(body, "5"));
        ctx.emit(body, "5", h);
        h = it.conv_last->forward<B>(h);
        ctx.emit(body, "6", h);
      } else {
        h = it.conv5->forward<B>(h);
        ctx.emit(body, "5", h);
        h = bn_relu<B>(*it.bn6, h, ctx, body, "6", "7");
        h = it.conv_last->forward<B>(h);
        ctx.emit(body, "8", h);
      }
      x = ops::gated_update<B>(x, gr, gf, h);
    }
    if (!o_.downsample) return x;
    const variable a = d_conv_->forward<B>(ops::avg_pool2d<B>(bn_relu<B>(*d_bn_, x, ctx, name, "d_bn", "d_relu"), 2, 2));
    ctx.emit(name, "d_conv", a);
    variable b = d_conv_1_->forward<B>(bn_relu<B>(*d_bn_1_, x, ctx, name, "d_bn_1", "d_relu_1"));
    ctx.emit(name, "d_conv_1", b);
    b = bn_relu<B>(*d_bn_3_, b, ctx, name, "d_bn_3", "d_relu_3");
    b = d_sk_3_ ? d_sk_3_->forward<B>(b, ctx, join(name, "d_conv_3")) : d_conv_3_->forward<B>(b);
    ctx.emit(name, "d_conv_3", b);
    b = d_conv_1e_->forward<B>(b);
    ctx.emit(name, "d_conv_1e", b);
    return ops::add<B>(a, b);
  }

  // PyTorch registration order; shared convs are listed under every iteration that uses them.
  void collect(const std::string& name, state_list& out) {
    bn_f_->collect(join(name, "bn_f"), out);
    conv_f_->collect(join(name, "conv_f"), out);
    bn_g_f_->collect(join(name, "bn_g_f"), out);
    conv_g_f_->collect(join(name, "conv_g_f"), out);
    conv_g_r_->collect(join(name, "conv_g_r"), out);
    for (int t = 0; t < o_.iterations; ++t) {
      iteration& it = iterations_[static_cast<std::size_t>(t)];
      const std::string body = join(name, "iter_" + std::to_string(t + 1));
      it.bn0->collect(join(body, "0"), out);
      it.conv2->collect(join(body, "2"), out);
      it.bn3->collect(join(body, "3"), out);
      if (it.sk5) {
        it.sk5->collect(join(body, "5"), out);
        it.conv_last->collect(join(body, "6"), out);
      } else {
        it.conv5->collect(join(body, "5"), out);
        it.bn6->collect(join(body, "6"), out);
        it.conv_last->collect(join(body, "8"), out);
      }
      it.gate_bn->collect(join(name, "iter_g_" + std::to_string(t + 1) + ".0"), out);
    }
    if (!o_.downsample) return;
    d_bn_->collect(join(name, "d_bn"), out);
    d_conv_->collect(join(name, "d_conv"), out);
    d_bn_1_->collect(join(name, "d_bn_1"), out);
    d_conv_1_->collect(join(name, "d_conv_1"), out);
    d_bn_3_->collect(join(name, "d_bn_3"), out);
    if (d_sk_3_)
      d_sk_3_->collect(join(name, "d_conv_3"), out);
    else
      d_conv_3_->collect(join(name, "d_conv_3"), out);
    if (d_bn_1e_) d_bn_1e_->collect(join(name, "d_bn_1e"), out);
    d_conv_1e_->collect(join(name, "d_conv_1e"), out);
  }

  const grcl_options& options() const { return o_; }

 private:
  struct iteration {
    std::unique_ptr<batch_norm_layer> bn0, bn3, bn6, gate_bn;
    std::shared_ptr<conv2d_layer> conv2, conv5, conv_last;
    std::shared_ptr<sk_conv_module> sk5;
  };
  grcl_options o_;
  std::unique_ptr<batch_norm_layer> bn_f_, bn_g_f_, d_bn_, d_bn_1_, d_bn_3_, d_bn_1e_;
  std::unique_ptr<conv2d_layer> conv_f_, conv_g_f_, conv_g_r_, d_conv_, d_conv_1_, d_conv_3_, d_conv_1e_;
  std::unique_ptr<sk_conv_module> d_sk_3_;
  std::vector<iteration> iterations_;
};

}  // namespace grcnn::nn
