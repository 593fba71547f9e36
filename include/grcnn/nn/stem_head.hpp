#pragma once
// The stems and the classifier head, with the original code's module names.
#include "grcnn/nn/layers.hpp"
#include "grcnn/nn/specs.hpp"

namespace grcnn::nn {

// conv1 -> bn1 -> relu -> maxpool -> conv2 (ImageNet) or conv_3x3 (CIFAR).
class stem_module {
 public:
  stem_module(bool imagenet, int out, double momentum, initializer& rng, int cifar_stride = 1) : imagenet_(imagenet) {
    if (imagenet) {
      conv1_ = std::make_unique<conv2d_layer>(3, out, 7, 2, 3, 1, 1, false, conv_init::kaiming_normal, rng);
      bn1_ = std::make_unique<batch_norm_layer>(out, momentum);
      conv2_ = std::make_unique<conv2d_layer>(out, out, 3, 1, 1, 1, 1, false, conv_init::kaiming_normal, rng);
    } else {
      conv1_ = std::make_unique<conv2d_layer>(3, out, 3, cifar_stride, 1, 1, 1, false, conv_init::kaiming_normal, rng);
    }
  }
  template <class B>
  variable forward(const variable& x, const forward_context& ctx) {
    if (!imagenet_) {
      const variable y = conv1_->forward<B>(x);
      ctx.emit("", "conv_3x3", y);
      return y;
    }
    const variable c1 = conv1_->forward<B>(x);
    ctx.emit("", "conv1", c1);
    const variable m = ops::max_pool2d<B>(bn_relu<B>(*bn1_, c1, ctx, "", "bn1", "relu"), 3, 2, 1);
    ctx.emit("", "maxpool", m);
    const variable c2 = conv2_->forward<B>(m);
    ctx.emit("", "conv2", c2);
    return c2;
  }
  void collect(state_list& out) {
    if (!imagenet_) {
      conv1_->collect("conv_3x3", out);
      return;
    }
    conv1_->collect("conv1", out);
    bn1_->collect("bn1", out);
    conv2_->collect("conv2", out);
  }

 private:
  bool imagenet_;
  std::unique_ptr<conv2d_layer> conv1_, conv2_;
  std::unique_ptr<batch_norm_layer> bn1_;
};

// lastact (BN + ReLU) -> avgpool (fixed window) -> flatten -> classifier.
class head_module {
 public:
  head_module(int in, int pool, int classes, double momentum, initializer& rng)
      : pool_(pool), bn_(in, momentum), classifier_(in, classes, rng) {}
  template <class B>
  variable forward(const variable& x, const forward_context& ctx) {
    const auto& d = x.dims();
    GRCNN_CHECK(pool_ == 0 || (d[2] == pool_ && d[3] == pool_), shape_error, "classifier head: the AvgPool2d(", pool_,
                ") readout of the original model needs a ", pool_, "x", pool_, " final feature map, got ", d[2], "x",
                d[3], " (input images of the wrong size?)");
    const variable a = bn_relu<B>(bn_, x, ctx, "lastact", "0", "1");
    const variable p = pool_ == 0 ? ops::global_avg_pool<B>(a) : ops::avg_pool2d<B>(a, pool_, pool_);
    ctx.emit("", "avgpool", p);
    const variable y = classifier_.forward<B>(ops::flatten(p));
    ctx.emit("", "classifier", y);
    return y;
  }
  void collect(state_list& out) {
    bn_.collect("lastact.0", out);
    classifier_.collect("classifier", out);
  }

 private:
  int pool_;
  batch_norm_layer bn_;
  linear_layer classifier_;
};

}  // namespace grcnn::nn
