#pragma once
// The stems and the classifier head, with the original code's module names.
#include "grcnn/nn/layers.hpp"
#include "grcnn/nn/specs.hpp"

namespace grcnn::nn {

// conv1 -> bn1 -> relu -> maxpool -> conv2 (the ImageNet stem).
class imagenet_stem_module {
 public:
  GRCNN_NOINLINE imagenet_stem_module(int out, double momentum, initializer& rng)
      : conv1_(3, out, 7, 2, 3, 1, 1, false, conv_init::kaiming_normal, rng),
        bn1_(out, momentum),
        conv2_(out, out, 3, 1, 1, 1, 1, false, conv_init::kaiming_normal, rng) {}
  template <class B>
  GRCNN_NOINLINE variable forward(const node_inputs& in, const forward_context& ctx) {
    const variable c1 = conv1_.forward<B>(in[0]);
    ctx.emit("", "conv1", c1);
    const variable m = ops::max_pool2d<B>(bn_relu<B>(bn1_, c1, ctx, "", "bn1", "relu"), 3, 2, 1);
    ctx.emit("", "maxpool", m);
    const variable c2 = conv2_.forward<B>(m);
    ctx.emit("", "conv2", c2);
    return c2;
  }
  GRCNN_NOINLINE void collect(state_list& out) {
    conv1_.collect("conv1", out);
    bn1_.collect("bn1", out);
    conv2_.collect("conv2", out);
  }

 private:
  conv2d_layer conv1_;
  batch_norm_layer bn1_;
  conv2d_layer conv2_;
};

// conv_3x3 alone (the CIFAR stem).
class cifar_stem_module {
 public:
  GRCNN_NOINLINE cifar_stem_module(int out, int stride, initializer& rng)
      : conv_(3, out, 3, stride, 1, 1, 1, false, conv_init::kaiming_normal, rng) {}
  template <class B>
  GRCNN_NOINLINE variable forward(const node_inputs& in, const forward_context& ctx) {
    const variable y = conv_.forward<B>(in[0]);
    ctx.emit("", "conv_3x3", y);
    return y;
  }
  GRCNN_NOINLINE void collect(state_list& out) { conv_.collect("conv_3x3", out); }

 private:
  conv2d_layer conv_;
};

// lastact (BN + ReLU) -> avgpool (fixed window, read as set_readout says) -> flatten -> classifier.
class head_module {
 public:
  GRCNN_NOINLINE head_module(int in, int pool, int classes, double momentum, initializer& rng)
      : pool_(pool), bn_(in, momentum), classifier_(in, classes, rng) {}
  void set_readout(readout r) { readout_ = r; }
  template <class B>
  GRCNN_NOINLINE variable forward(const node_inputs& in, const forward_context& ctx) {
    const variable& x = in[0];
    const auto& d = x.dims();
    const bool global = pool_ == 0 || readout_ == readout::global;
    if (!global) check_map(d[2], d[3]);
    const variable a = bn_relu<B>(bn_, x, ctx, "lastact", "0", "1");
    // The tap sees [N, C, 1, 1] in every mode, as AvgPool2d gives.
    const variable p = global ? ops::reshape(ops::global_avg_pool<B>(a), grcnn::shape{d[0], d[1], 1, 1})
                              : ops::avg_pool2d<B>(a, pool_, pool_);
    ctx.emit("", "avgpool", p);
    const variable y = classifier_.forward<B>(ops::flatten(p));
    ctx.emit("", "classifier", y);
    return y;
  }
  GRCNN_NOINLINE void collect(state_list& out) {
    bn_.collect("lastact.0", out);
    classifier_.collect("classifier", out);
  }

 private:
  // The fixed window's map: exactly Pool x Pool, or (original) Pool to 2 Pool - 1 a side, whose
  // AvgPool2d(Pool) output is 1 x 1 (the top-left window).
  void check_map(std::int64_t h, std::int64_t w) const {
    if (readout_ == readout::exact)
      GRCNN_CHECK(h == pool_ && w == pool_, shape_error, "classifier head: the AvgPool2d(", pool_,
                  ") readout of the original model needs a ", pool_, "x", pool_, " final feature map, got ", h, "x", w,
                  " (input images of the wrong size? --readout original or global takes other sizes)");
    else
      GRCNN_CHECK(h >= pool_ && h < 2 * pool_ && w >= pool_ && w < 2 * pool_, shape_error,
                  "classifier head: the original AvgPool2d(", pool_, ") readout takes final feature maps of ", pool_,
                  " to ", 2 * pool_ - 1, " pixels a side (one window), got ", h, "x", w, " (--readout global takes any)");
  }

  int pool_;
  readout readout_ = readout::exact;
  batch_norm_layer bn_;
  linear_layer classifier_;
};

}  // namespace grcnn::nn
