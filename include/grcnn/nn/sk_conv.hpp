#pragma once
// Selective-kernel convolution (SKConv of the SK-GRCNN variants), named as PyTorch does:
// conv.{m}.{0 conv, 1 BN, 2 ReLU}, fc1.{0 conv, 1 BN, 2 ReLU}, fc2.
#include "grcnn/nn/layers.hpp"
#include "grcnn/nn/specs.hpp"

namespace grcnn::nn {

class sk_conv_module {
 public:
  static constexpr int branches = 2;

  sk_conv_module(int in, int out, int stride, int groups, code_style style, double momentum, initializer& rng)
      : out_(out) {
    const int r = style == code_style::imagenet ? 16 : 32;
    const int d = std::max(in / r, 32);
    for (int m = 0; m < branches; ++m) {
      // ImageNet: 3x3 with dilation 1 and 2; CIFAR: 3x3 and 1x1.
      const bool one_by_one = style == code_style::cifar && m == 1;
      const int k = one_by_one ? 1 : 3, dil = style == code_style::imagenet ? 1 + m : 1, pad = one_by_one ? 0 : dil;
      convs_.emplace_back(in, out, k, stride, pad, dil, groups, false, conv_init::kaiming_normal, rng);
      bns_.emplace_back(out, momentum);
    }
    fc1_ = std::make_unique<conv2d_layer>(out, d, 1, 1, 0, 1, 1, false, conv_init::normal_001, rng);
    fc1_bn_ = std::make_unique<batch_norm_layer>(d, momentum);
    fc2_ = std::make_unique<conv2d_layer>(d, out * branches, 1, 1, 0, 1, 1, false, conv_init::normal_001, rng);
  }

  template <class B>
  variable forward(const variable& x, const forward_context& ctx, const std::string& prefix) {
    std::vector<variable> outs;
    variable sum;
    for (int m = 0; m < branches; ++m) {
      const std::string branch = ctx.tapping() ? join(prefix, "conv." + std::to_string(m)) : std::string();
      const variable c = convs_[static_cast<std::size_t>(m)].forward<B>(x);
      ctx.emit(branch, "0", c);
      outs.push_back(bn_relu<B>(bns_[static_cast<std::size_t>(m)], c, ctx, branch, "1", "2"));
      sum = m == 0 ? outs.back() : ops::add<B>(sum, outs.back());
    }
    const auto N = x.dims()[0];
    const variable s = ops::reshape(ops::global_avg_pool<B>(sum), shape{N, out_, 1, 1});
    const variable z = fc1_->forward<B>(s);
    ctx.emit(join(prefix, "fc1"), "0", z);
    const variable zr = bn_relu<B>(*fc1_bn_, z, ctx, ctx.tapping() ? join(prefix, "fc1") : std::string(), "1", "2");
    const variable a = fc2_->forward<B>(zr);
    ctx.emit(prefix, "fc2", a);
    return ops::sk_select<B>(outs, ops::reshape(a, shape{N, branches * out_}));
  }

  void collect(const std::string& prefix, state_list& out) {
    for (int m = 0; m < branches; ++m) {
      const std::string b = join(prefix, "conv." + std::to_string(m));
      convs_[static_cast<std::size_t>(m)].collect(join(b, "0"), out);
      bns_[static_cast<std::size_t>(m)].collect(join(b, "1"), out);
    }
    fc1_->collect(join(prefix, "fc1.0"), out);
    fc1_bn_->collect(join(prefix, "fc1.1"), out);
    fc2_->collect(join(prefix, "fc2"), out);
  }

 private:
  int out_;
  std::vector<conv2d_layer> convs_;
  std::vector<batch_norm_layer> bns_;
  std::unique_ptr<conv2d_layer> fc1_, fc2_;
  std::unique_ptr<batch_norm_layer> fc1_bn_;
};

}  // namespace grcnn::nn
