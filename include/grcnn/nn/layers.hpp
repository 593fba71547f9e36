#pragma once
// The parametrised building blocks: convolution, batch norm, linear. Not templated on the topology;
// only their forward is templated on the backend.
#include "grcnn/nn/module.hpp"
#include "grcnn/nn/precision.hpp"
#include "grcnn/ops.hpp"

namespace grcnn::nn {

// kaiming_normal: fan_in, gain sqrt(2) (the GRCNN code); kaiming_normal_fan_out: fan_out = out * k * k
// (VOneNet's bottleneck); normal_001: N(0, 0.01); default_uniform: PyTorch's default conv init.
enum class conv_init { kaiming_normal, kaiming_normal_fan_out, normal_001, default_uniform };

class conv2d_layer {
 public:
  conv2d_layer(int in, int out, int kernel, int stride, int pad, int dilation, int groups, bool bias, conv_init init,
               initializer& rng)
      : params_(ops::conv2d_params::square(stride, pad, dilation, groups)) {
    const shape ws{out, in / groups, kernel, kernel};
    const std::int64_t fan_in = static_cast<std::int64_t>(in / groups) * kernel * kernel;
    const std::int64_t fan_out = static_cast<std::int64_t>(out / groups) * kernel * kernel;
    tensor w = init == conv_init::kaiming_normal           ? rng.kaiming_normal(ws, fan_in)
               : init == conv_init::kaiming_normal_fan_out ? rng.kaiming_normal(ws, fan_out)
               : init == conv_init::normal_001             ? rng.normal(ws, 0.01)
                                                           : rng.default_uniform(ws, fan_in);
    weight = variable(w, true);
    if (bias) this->bias = variable(tensor::zeros({out}), true);  // the original code zeroes conv biases
  }

  template <class B>
  variable forward(const variable& x) {
    if (runs_mixed(weight.value().type(), x.value().type())) return forward_mixed<B>(x);
    // Hold the weight the way the backend prefers for this input (once; a later input of another
    // shape still works, the backend then converts per call).
    // A move to another device (network::to_device) makes the weight plain again: adopt anew there.
    if (weight.value().memory_layout() == layout::plain && !(adopted_ && adopted_on_ == weight.value().where())) {
      const auto pr = ops::make_conv2d_problem(x.value(), weight.value(), bias.defined() ? &bias.value() : nullptr, params_);
      weight.value() = backends::weight_layout<B>::conv(pr, weight.value());
      adopted_ = true;
      adopted_on_ = weight.value().where();
    }
    return ops::conv2d<B>(x, weight, bias, params_);
  }
  void collect(const std::string& prefix, state_list& out) {
    out.push_back({join(prefix, "weight"), &weight, nullptr});
    if (bias.defined()) out.push_back({join(prefix, "bias"), &bias, nullptr});
  }
  const ops::conv2d_params& params() const { return params_; }

  variable weight, bias;

 private:
  // Mixed precision (precision.hpp): the f32 master is cast per call to the activations' dtype. The master
  // is held in the order the backend wants its 16-bit filter in (backends::mixed_weight_order), so the
  // cast is the only conversion per call; a master in a blocked format returns to that order once (the
  // optimizer follows its weight's format).
  template <class B>
  variable forward_mixed(const variable& x) {
    const layout want = backends::mixed_weight_order<B>::conv(x.value().memory_layout());
    if (weight.value().memory_layout() != want) {
      weight.value() = weight.value().to_layout(layout::plain).to_layout(want);
      adopted_ = false;
    }
    const dtype t = x.value().type();
    return ops::conv2d<B>(x, ops::cast<B>(weight, t), bias.defined() ? ops::cast<B>(bias, t) : variable(), params_);
  }

  ops::conv2d_params params_;
  bool adopted_ = false;
  device adopted_on_ = cpu_device;
};

class batch_norm_layer {
 public:
  explicit batch_norm_layer(int channels, double momentum = 0.1, double eps = 1e-5)
      : gamma(tensor::full({channels}, 1.0), true),
        beta(tensor::zeros({channels}), true),
        running_mean(tensor::zeros({channels})),
        running_var(tensor::full({channels}, 1.0)),
        num_batches_tracked(tensor::zeros({}, dtype::i64)),
        momentum_(momentum),
        eps_(eps) {}

  template <class B>
  variable forward(const variable& x, const forward_context& ctx, bool relu) {
    if (ctx.training) count_batch();
    return ops::batch_norm<B>(x, gamma, beta, running_mean, running_var,
                              {.training = ctx.training, .momentum = momentum_, .eps = eps_, .fuse_relu = relu,
                               .group = ctx.batch_norm_group});
  }
  // Both ReLU(BN(x)) of two batch norms of the same x, their training statistics computed once
  // (ops::paired_batch_norm; two plain calls where that does not apply).
  template <class B>
  friend std::pair<variable, variable> paired_forward(batch_norm_layer& a, batch_norm_layer& b, const variable& x,
                                                       const forward_context& ctx) {
    if (a.momentum_ != b.momentum_ || a.eps_ != b.eps_)
      return {a.forward<B>(x, ctx, true), b.forward<B>(x, ctx, true)};
    if (ctx.training) a.count_batch(), b.count_batch();
    return ops::paired_batch_norm<B>(x, {a.gamma, a.beta, a.running_mean, a.running_var},
                                     {b.gamma, b.beta, b.running_mean, b.running_var},
                                     {.training = ctx.training, .momentum = a.momentum_, .eps = a.eps_, .fuse_relu = true,
                                      .group = ctx.batch_norm_group});
  }
  void collect(const std::string& prefix, state_list& out) {
    out.push_back({join(prefix, "weight"), &gamma, nullptr});
    out.push_back({join(prefix, "bias"), &beta, nullptr});
    out.push_back({join(prefix, "running_mean"), nullptr, &running_mean});
    out.push_back({join(prefix, "running_var"), nullptr, &running_var});
    out.push_back({join(prefix, "num_batches_tracked"), nullptr, &num_batches_tracked});
  }

  variable gamma, beta;
  tensor running_mean, running_var, num_batches_tracked;

 private:
  void count_batch() { num_batches_tracked.data<std::int64_t>()[0] += 1; }
  double momentum_, eps_;
};

class linear_layer {
 public:
  linear_layer(int in, int out, initializer& rng)
      : weight(rng.kaiming_normal({out, in}, in), true), bias(tensor::zeros({out}), true) {}
  template <class B>
  variable forward(const variable& x) {
    if (runs_mixed(weight.value().type(), x.value().type()))  // f32 master, 16-bit activations: cast per call
      return ops::linear<B>(x, ops::cast<B>(weight, x.value().type()), ops::cast<B>(bias, x.value().type()));
    return ops::linear<B>(x, weight, bias);
  }
  void collect(const std::string& prefix, state_list& out) {
    out.push_back({join(prefix, "weight"), &weight, nullptr});
    out.push_back({join(prefix, "bias"), &bias, nullptr});
  }
  variable weight, bias;
};

// BN followed by ReLU, fused unless a tap asks for the BN output itself.
template <class B>
variable bn_relu(batch_norm_layer& bn, const variable& x, const forward_context& ctx, const std::string& prefix,
                 const char* bn_name, const char* relu_name) {
  if (ctx.wants(prefix, bn_name)) {
    const variable y = bn.forward<B>(x, ctx, false);
    ctx.emit(prefix, bn_name, y);
    const variable r = ops::relu<B>(y);
    ctx.emit(prefix, relu_name, r);
    return r;
  }
  const variable r = bn.forward<B>(x, ctx, true);
  ctx.emit(prefix, relu_name, r);
  return r;
}

// ReLU(BN_a(x)) and ReLU(BN_b(x)) for two batch norms of the same x (a GRCL iteration's gate and
// bottleneck), named prefix_a.0/1 and prefix_b.0/1: their statistics computed once, unless a tap asks
// for a BN output itself (then each runs on its own, unfused, as bn_relu does).
template <class B>
std::pair<variable, variable> paired_bn_relu(batch_norm_layer& a, batch_norm_layer& b, const variable& x,
                                             const forward_context& ctx, const std::string& prefix_a,
                                             const std::string& prefix_b) {
  if (ctx.wants(prefix_a, "0") || ctx.wants(prefix_b, "0")) {
    variable ya = bn_relu<B>(a, x, ctx, prefix_a, "0", "1");
    return {std::move(ya), bn_relu<B>(b, x, ctx, prefix_b, "0", "1")};
  }
  auto y = paired_forward<B>(a, b, x, ctx);
  ctx.emit(prefix_a, "1", y.first);
  ctx.emit(prefix_b, "1", y.second);
  return y;
}

}  // namespace grcnn::nn
