#pragma once
// The run-time modules of a GRCL's graph nodes (nn/graph_nodes.hpp unrolls each GRCL into them):
//
//   feed-forward     x0 = conv_f(relu(bn_f(u)))
//   gate input       gf = conv_g_f(relu(bn_g_f(u)))            (and the owner of conv_g_r)
//   iteration t      x_t = x_{t-1} + sigmoid(conv_g_r(relu(bn_g_t(x_{t-1}))) + gf) * iter_t(x_{t-1})
//   transition       out = d_conv(avgpool2(relu(d_bn(x_T)))) + d_conv_1e(d_conv_3(relu(d_bn_3(d_conv_1(relu(d_bn_1(x_T)))))))
//
// iter_t is a 1x1-3x3-1x1 pre-activation bottleneck (3x3 replaced by SKConv in SK variants: the
// Middle template argument). conv_g_r, and with weight sharing the bottleneck's convolutions, are weight
// slots one node owns and the others share (graph_builder). Every module's forward is templated only on
// the backend: all iterations of all GRCLs of one kind share one instantiation, whatever the time step.
#include <memory>
#include <string>
#include <string_view>
#include <tuple>

#include "grcnn/nn/graph_builder.hpp"
#include "grcnn/nn/sk_conv.hpp"

namespace grcnn::nn {

// The two branches that read the GRCL's input: BN-ReLU-conv, named prefix.{bn, relu, conv}.
class grcl_input_branch {
 public:
  grcl_input_branch(const grcl_options& o, bool gate, initializer& rng)
      : bn_(o.in_channels, o.bn_momentum),
        conv_(gate ? conv2d_layer(o.in_channels, o.out_channels(), 1, 1, 0, 1, o.groups, true, conv_init::normal_001, rng)
                   : conv2d_layer(o.in_channels, o.out_channels(), 3, 1, 1, 1, o.groups, false, conv_init::kaiming_normal, rng)) {}
  template <class B>
  variable forward(const variable& u, const forward_context& ctx, const std::string& layer, const char* bn,
                   const char* relu, const char* conv) {
    const variable y = conv_.forward<B>(bn_relu<B>(bn_, u, ctx, layer, bn, relu));
    ctx.emit(layer, conv, y);
    return y;
  }
  void collect(const std::string& layer, const char* bn, const char* conv, state_list& out) {
    bn_.collect(join(layer, bn), out);
    conv_.collect(join(layer, conv), out);
  }

 private:
  batch_norm_layer bn_;
  conv2d_layer conv_;
};

// x0 = conv_f(relu(bn_f(u))): the state at time step 0 (also tapped as <layer>.state, step 0).
class grcl_feedforward_module {
 public:
  GRCNN_NOINLINE grcl_feedforward_module(const grcl_options& o, std::string_view layer, graph_builder& b)
      : layer_(layer), branch_(o, false, b.rng()) {}
  template <class B>
  GRCNN_NOINLINE variable forward(const node_inputs& in, const forward_context& ctx) {
    const variable x0 = branch_.forward<B>(in[0], ctx, layer_, "bn_f", "relu_f", "conv_f");
    ctx.emit(layer_, "state", x0, 0);
    return x0;
  }
  GRCNN_NOINLINE void collect(state_list& out) { branch_.collect(layer_, "bn_f", "conv_f", out); }

 private:
  std::string layer_;
  grcl_input_branch branch_;
};

// gf = conv_g_f(relu(bn_g_f(u))); owns conv_g_r (registered after conv_g_f, as in PyTorch), which the
// iterations share.
class grcl_gate_module {
 public:
  GRCNN_NOINLINE grcl_gate_module(const grcl_options& o, std::string_view layer, std::string_view recurrent_key, bool owns_recurrent,
                   graph_builder& b)
      : layer_(layer), branch_(o, true, b.rng()) {
    const int E = o.out_channels();
    const conv_init init = o.style == code_style::cifar ? conv_init::normal_001 : conv_init::default_uniform;
    recurrent_gate_ = b.slot<conv2d_layer>(owns_recurrent, std::string(recurrent_key), [&] {
      return std::make_shared<conv2d_layer>(E, E, 1, 1, 0, 1, o.groups, false, init, b.rng());
    });
  }
  template <class B>
  GRCNN_NOINLINE variable forward(const node_inputs& in, const forward_context& ctx) {
    return branch_.forward<B>(in[0], ctx, layer_, "bn_g_f", "relu_g_f", "conv_g_f");
  }
  GRCNN_NOINLINE void collect(state_list& out) {
    branch_.collect(layer_, "bn_g_f", "conv_g_f", out);
    recurrent_gate_->collect(join(layer_, "conv_g_r"), out);
  }

 private:
  std::string layer_;
  grcl_input_branch branch_;
  std::shared_ptr<conv2d_layer> recurrent_gate_;
};

// Where an iteration's weights come from: the slot keys (the owner's PyTorch names) and whether this
// iteration owns them.
struct grcl_iteration_slots {
  std::string_view recurrent;   // conv_g_r: "<layer>.conv_g_r" of the owning GRCL
  std::string_view bottleneck;  // "<layer>.iter_<t>" of the owning iteration
  bool owns_bottleneck = true;
};

// One time step: x_t = x_{t-1} + sigmoid(conv_g_r(relu(bn_g_t(x_{t-1}))) + gf) * iter_t(x_{t-1}).
// Inputs: x_{t-1}, gf. Step is t (1-based; taps report t - 1 for conv_g_r and t for <layer>.state).
// PairedNorms (from the graph: both BNs read x_{t-1}): bn_g_t and iter_t.0 share their batch statistics.
template <middle_kind Middle, bool PairedNorms = true>
class grcl_iteration_module {
  static constexpr bool sk = Middle == middle_kind::selective_kernel;

 public:
  GRCNN_NOINLINE grcl_iteration_module(const grcl_options& o, std::string_view layer, int step, const grcl_iteration_slots& s,
                                       graph_builder& b)
      : layer_(layer),
        body_(join(layer_, "iter_" + std::to_string(step))),
        gate_(join(layer_, "iter_g_" + std::to_string(step))),
        step_(step),
        bottleneck_in_bn_(o.out_channels(), o.bn_momentum),
        bottleneck_mid_bn_(o.planes, o.bn_momentum),
        recurrent_gate_bn_(o.out_channels(), o.bn_momentum) {
    const int E = o.out_channels(), p = o.planes;
    auto& rng = b.rng();
    const std::string bottleneck(s.bottleneck);
    recurrent_gate_ = b.shared<conv2d_layer>(std::string(s.recurrent));
    // The original code leaves the non-shared 3x3 at PyTorch's default init; the shared one is kaiming.
    bottleneck_in_ = b.slot<conv2d_layer>(s.owns_bottleneck, join(bottleneck, "2"), [&] {
      return std::make_shared<conv2d_layer>(E, p, 1, 1, 0, 1, 1, false, conv_init::kaiming_normal, rng);
    });
    if constexpr (sk) {
      bottleneck_mid_ = b.slot<sk_conv_module>(s.owns_bottleneck, join(bottleneck, "5"), [&] {
        return std::make_shared<sk_conv_module>(p, p, 1, o.groups, o.style, o.bn_momentum, rng);
      });
    } else {
      const conv_init mid_init = o.weight_sharing ? conv_init::kaiming_normal : conv_init::default_uniform;
      bottleneck_mid_ = b.slot<conv2d_layer>(s.owns_bottleneck, join(bottleneck, "5"), [&] {
        return std::make_shared<conv2d_layer>(p, p, 3, 1, 1, 1, 1, false, mid_init, rng);
      });
      bottleneck_out_bn_ = std::make_unique<batch_norm_layer>(p, o.bn_momentum);
    }
    bottleneck_out_ = b.slot<conv2d_layer>(s.owns_bottleneck, join(bottleneck, sk ? "6" : "8"), [&] {
      return std::make_shared<conv2d_layer>(p, E, 1, 1, 0, 1, 1, false, conv_init::kaiming_normal, rng);
    });
  }

  template <class B>
  GRCNN_NOINLINE variable forward(const node_inputs& in, const forward_context& ctx) {
    const variable& x = in[0];
    variable g, h;
    if constexpr (PairedNorms) {
      std::tie(g, h) = paired_bn_relu<B>(recurrent_gate_bn_, bottleneck_in_bn_, x, ctx, gate_, body_);
    } else {
      g = bn_relu<B>(recurrent_gate_bn_, x, ctx, gate_, "0", "1");
      h = bn_relu<B>(bottleneck_in_bn_, x, ctx, body_, "0", "1");
    }
    const variable gr = recurrent_gate_->forward<B>(g);
    ctx.emit(layer_, "conv_g_r", gr, step_ - 1);
    h = bottleneck_in_->forward<B>(h);
    ctx.emit(body_, "2", h);
    h = bn_relu<B>(bottleneck_mid_bn_, h, ctx, body_, "3", "4");
    if constexpr (sk) {
      h = bottleneck_mid_->template forward<B>(h, ctx, join(body_, "5"));
      ctx.emit(body_, "5", h);
      h = bottleneck_out_->forward<B>(h);
      ctx.emit(body_, "6", h);
    } else {
      h = bottleneck_mid_->template forward<B>(h);
      ctx.emit(body_, "5", h);
      h = bn_relu<B>(*bottleneck_out_bn_, h, ctx, body_, "6", "7");
      h = bottleneck_out_->forward<B>(h);
      ctx.emit(body_, "8", h);
    }
    const variable next = ops::gated_update<B>(x, gr, in[1], h);
    ctx.emit(layer_, "state", next, step_);
    return next;
  }

  // PyTorch's order: iter_t.* then iter_g_t.0; shared convolutions are listed under every iteration.
  GRCNN_NOINLINE void collect(state_list& out) {
    bottleneck_in_bn_.collect(join(body_, "0"), out);
    bottleneck_in_->collect(join(body_, "2"), out);
    bottleneck_mid_bn_.collect(join(body_, "3"), out);
    bottleneck_mid_->collect(join(body_, "5"), out);
    if constexpr (sk) {
      bottleneck_out_->collect(join(body_, "6"), out);
    } else {
      bottleneck_out_bn_->collect(join(body_, "6"), out);
      bottleneck_out_->collect(join(body_, "8"), out);
    }
    recurrent_gate_bn_.collect(join(gate_, "0"), out);
  }

 private:
  using middle_module = std::conditional_t<sk, sk_conv_module, conv2d_layer>;
  std::string layer_, body_, gate_;
  int step_;
  // Members by role; PyTorch's indices live only in the state names: iter_t.0 bottleneck_in_bn, .2
  // bottleneck_in (1x1, E -> p), .3 bottleneck_mid_bn, .5 bottleneck_mid (3x3 or SKConv), .6
  // bottleneck_out_bn (plain only), .8 (SK: .6) bottleneck_out (1x1, p -> E); iter_g_t.0 recurrent_gate_bn.
  batch_norm_layer bottleneck_in_bn_, bottleneck_mid_bn_, recurrent_gate_bn_;
  std::unique_ptr<batch_norm_layer> bottleneck_out_bn_;  // plain 3x3 only
  std::shared_ptr<conv2d_layer> recurrent_gate_, bottleneck_in_, bottleneck_out_;
  std::shared_ptr<middle_module> bottleneck_mid_;
};

// The transition that halves the resolution: an average-pool branch and a strided bottleneck branch.
template <middle_kind Middle>
class grcl_transition_module {
  static constexpr bool sk = Middle == middle_kind::selective_kernel;

 public:
  GRCNN_NOINLINE grcl_transition_module(const grcl_options& o, std::string_view layer, graph_builder& b)
      : layer_(layer),
        pool_branch_bn_(o.out_channels(), o.bn_momentum),
        conv_branch_in_bn_(o.out_channels(), o.bn_momentum),
        conv_branch_mid_bn_(o.planes, o.bn_momentum) {
    const int E = o.out_channels(), p = o.planes;
    auto& rng = b.rng();
    pool_branch_conv_ = std::make_unique<conv2d_layer>(E, E, 1, 1, 0, 1, 1, false, conv_init::kaiming_normal, rng);
    conv_branch_in_ = std::make_unique<conv2d_layer>(E, p, 1, 1, 0, 1, 1, false, conv_init::kaiming_normal, rng);
    if constexpr (sk)
      conv_branch_mid_ = std::make_unique<sk_conv_module>(p, p, 2, o.groups, o.style, o.bn_momentum, rng);
    else
      conv_branch_mid_ = std::make_unique<conv2d_layer>(p, p, 3, 2, 1, 1, 1, false, conv_init::kaiming_normal, rng);
    if (o.style == code_style::cifar && !sk) unused_bn_ = std::make_unique<batch_norm_layer>(p, o.bn_momentum);  // registered, unused
    conv_branch_out_ = std::make_unique<conv2d_layer>(p, E, 1, 1, 0, 1, 1, false, conv_init::kaiming_normal, rng);
  }

  template <class B>
  GRCNN_NOINLINE variable forward(const node_inputs& in, const forward_context& ctx) {
    const variable& x = in[0];
    const variable a = pool_branch_conv_->forward<B>(ops::avg_pool2d<B>(bn_relu<B>(pool_branch_bn_, x, ctx, layer_, "d_bn", "d_relu"), 2, 2));
    ctx.emit(layer_, "d_conv", a);
    variable h = conv_branch_in_->forward<B>(bn_relu<B>(conv_branch_in_bn_, x, ctx, layer_, "d_bn_1", "d_relu_1"));
    ctx.emit(layer_, "d_conv_1", h);
    h = bn_relu<B>(conv_branch_mid_bn_, h, ctx, layer_, "d_bn_3", "d_relu_3");
    if constexpr (sk)
      h = conv_branch_mid_->template forward<B>(h, ctx, join(layer_, "d_conv_3"));
    else
      h = conv_branch_mid_->template forward<B>(h);
    ctx.emit(layer_, "d_conv_3", h);
    h = conv_branch_out_->forward<B>(h);
    ctx.emit(layer_, "d_conv_1e", h);
    return ops::add<B>(a, h);
  }

  GRCNN_NOINLINE void collect(state_list& out) {
    pool_branch_bn_.collect(join(layer_, "d_bn"), out);
    pool_branch_conv_->collect(join(layer_, "d_conv"), out);
    conv_branch_in_bn_.collect(join(layer_, "d_bn_1"), out);
    conv_branch_in_->collect(join(layer_, "d_conv_1"), out);
    conv_branch_mid_bn_.collect(join(layer_, "d_bn_3"), out);
    conv_branch_mid_->collect(join(layer_, "d_conv_3"), out);
    if (unused_bn_) unused_bn_->collect(join(layer_, "d_bn_1e"), out);
    conv_branch_out_->collect(join(layer_, "d_conv_1e"), out);
  }

 private:
  std::string layer_;
  // d_bn/d_conv: the pool branch; d_bn_1/d_conv_1, d_bn_3/d_conv_3 (strided), d_conv_1e: the conv branch;
  // d_bn_1e: CIFAR code registers it and never uses it.
  batch_norm_layer pool_branch_bn_, conv_branch_in_bn_, conv_branch_mid_bn_;
  std::unique_ptr<batch_norm_layer> unused_bn_;
  std::unique_ptr<conv2d_layer> pool_branch_conv_, conv_branch_in_, conv_branch_out_;
  std::unique_ptr<std::conditional_t<sk, sk_conv_module, conv2d_layer>> conv_branch_mid_;
};

}  // namespace grcnn::nn
