#pragma once
// The unrolled graph's nodes. Each layer description expands at compile time into a flat list of node
// types (node_expansion<Spec>::nodes, a Boost.Hana tuple of types); a GRCL with T iterations becomes
//
//   <layer>.feedforward   <layer>.gate   <layer>.iter_1 ... <layer>.iter_T   [<layer>.transition]
//
// each iteration node with its time step as a compile-time value. A node type gives:
//   spec, layer        the layer description it comes from and its name
//   name, step         its own name ("layer2.iter_3") and time step (1..T; 0 for other nodes)
//   local, inputs      its position in the layer and its edges: -1 the layer's input, k the layer's k-th node
//   ends_layer         whether its output is the layer's (tapped under the layer's name for GRCLs)
//   program            what it computes (nn/node_program.hpp), with PyTorch's names for every tap
//   module, make(b)    its run-time module (nn/module.hpp's graph_module) and how the graph builds it
#include <array>

#include <boost/hana/basic_tuple.hpp>
#include <boost/hana/concat.hpp>
#include <boost/hana/range.hpp>
#include <boost/hana/transform.hpp>
#include <boost/hana/type.hpp>
#include <boost/hana/unpack.hpp>

#include "grcnn/nn/grcl.hpp"
#include "grcnn/nn/node_program.hpp"
#include "grcnn/nn/stem_head.hpp"
#include "grcnn/nn/vone_block.hpp"

namespace grcnn::nn {

template <class Spec>
struct node_expansion;  // node_expansion<Spec>::nodes: the node types a layer description expands into

namespace detail {
// SKConv's program (nn/sk_conv.hpp): two branches (3x3 dilation 1 and 2, or 3x3 and 1x1 in the CIFAR
// code), their sum pooled to 1x1, fc1 (BN-ReLU), fc2, the softmax selection. Shared SK modules share
// their batch norms too.
constexpr int sk_program(node_program& p, int x, int channels, int stride, const grcl_options& o, const static_name& tap,
                         weight_slot slot, const static_name& key) {
  const bool cifar = o.style == code_style::cifar;
  const int r = cifar ? 32 : 16, d = channels / r > 32 ? channels / r : 32;
  int branch[2]{};
  for (int m = 0; m < 2; ++m) {
    const bool one_by_one = cifar && m == 1;
    const int k = one_by_one ? 1 : 3, dil = cifar ? 1 : 1 + m, pad = one_by_one ? 0 : dil;
    const static_name name = dotted(tap, "conv.", m), slot_name = dotted(key, "conv.", m);
    const int c = p.conv(x, {channels, channels, k, stride, pad, dil, o.groups}, dotted(name, "0"), slot, dotted(slot_name, "0"));
    branch[m] = p.bn_relu(c, channels, name, "1", "2", slot, slot_name);
  }
  const int pooled = p.global_avg_pool(p.add(branch[0], branch[1]), {});
  const int z = p.conv(pooled, {channels, d}, dotted(tap, "fc1.0"), slot, dotted(key, "fc1.0"));
  const int zr = p.bn_relu(z, d, dotted(tap, "fc1"), "1", "2", slot, dotted(key, "fc1"));
  const int a = p.conv(zr, {d, 2 * channels}, dotted(tap, "fc2"), slot, dotted(key, "fc2"));
  return p.sk_select(branch[0], branch[1], a, channels, tap);
}

// What every node of GRCL G knows: its options, names and where its recurrent weights live.
template <class G>
struct grcl_node_facts {
  static constexpr grcl_options options = G::options;
  static constexpr int E = options.out_channels(), P = options.planes;
  static constexpr bool sk = options.middle == middle_kind::selective_kernel;
  static constexpr static_name layer = G::name_string;
  // The GRCL whose recurrent weights these nodes use: G itself, or the one it shares with.
  static constexpr static_name owner = G::shares_with.view().empty() ? layer : static_name(G::shares_with);
  static constexpr bool owns_recurrent = G::shares_with.view().empty();
  static constexpr static_name recurrent_key = dotted(owner, "conv_g_r");
  // Iteration t's bottleneck slot: the owner's iteration t, or its one bottleneck (iteration 1).
  static constexpr static_name bottleneck_key(int t) { return dotted(owner, "iter_", options.weight_sharing ? 1 : t); }
  static constexpr bool owns_bottleneck(int t) { return owns_recurrent && (!options.weight_sharing || t == 1); }
};
}  // namespace detail

// ---- stems and head ---------------------------------------------------------------------------------

// A layer that is one node (a stem, the head): named as its layer, reading the layer's input, its output
// the layer's (not tapped under the layer's name: its last module's name is the tap).
template <fixed_string Layer>
struct single_node_layer {
  static constexpr static_name layer = Layer, name = Layer;
  static constexpr int step = 0, local = 0;
  static constexpr std::array<int, 1> inputs{-1};
  static constexpr bool ends_layer = true, emits_layer = false;
};

template <int Out>
struct imagenet_stem_node : single_node_layer<"stem"> {
  using spec = imagenet_stem<Out>;
  using module = imagenet_stem_module;
  static constexpr node_program program = [] {
    node_program p;
    int x = p.input(3);
    x = p.conv(x, {3, Out, 7, 2, 3}, "conv1");
    x = p.bn_relu(x, Out, {}, "bn1", "relu");
    x = p.max_pool(x, 3, 2, 1, "maxpool");
    x = p.conv(x, {Out, Out, 3, 1, 1}, "conv2");
    return p.returns(x);
  }();
  static module make(graph_builder& b) { return module(Out, spec::bn_momentum, b.rng()); }
};

template <int Out, int Stride>
struct cifar_stem_node : single_node_layer<"stem"> {
  using spec = cifar_stem<Out, Stride>;
  using module = cifar_stem_module;
  static constexpr node_program program = [] {
    node_program p;
    return p.returns(p.conv(p.input(3), {3, Out, 3, Stride, 1}, "conv_3x3"));
  }();
  static module make(graph_builder& b) { return module(Out, Stride, b.rng()); }
};

template <vone_options O>
struct vone_stem_node : single_node_layer<"stem"> {
  using spec = vone_stem<O>;
  using module = vone_module;
  static constexpr node_program program = [] {
    node_program p;
    const int C = O.channels(), k = O.kernel_size, x = p.input(3);
    const std::int64_t bank = std::int64_t{C} * 3 * k * k;  // each bank holds all C rows
    const int q0 = p.conv(x, {3, C, k, O.stride, k / 2}, "vone_block.simple_conv_q0", weight_slot::fixed);
    int q1 = -1;
    if (O.complex_channels > 0) {  // only the complex cells' rows of the quadrature bank are convolved
      q1 = p.conv(x, {3, O.complex_channels, k, O.stride, k / 2}, {}, weight_slot::fixed, "vone_block.simple_conv_q1");
      p.stores_weights(q1, bank);
    } else {
      p.stores_weights(p.weights_only({3, C, k}, "vone_block.simple_conv_q1", weight_slot::fixed), bank);
    }
    const int r = p.vone_response(q0, q1, C, "vone_block");
    return p.returns(p.conv(r, {C, O.out_channels}, "bottleneck"));
  }();
  static module make(graph_builder& b) { return module(O, b.rng()); }
};

template <int In, int Pool, double Momentum>
struct head_node : single_node_layer<"head"> {
  using spec = classifier_head<In, Pool, Momentum>;
  using module = head_module;
  static constexpr node_program program = [] {
    node_program p;
    int x = p.bn_relu(p.input(In), In, "lastact", "0", "1");
    x = Pool == 0 ? p.global_avg_pool(x, "avgpool") : p.avg_pool(x, Pool, Pool, "avgpool", true);
    return p.returns(p.linear(x, In, -1, "classifier"));
  }();
  static module make(graph_builder& b) { return module(In, Pool, b.classes(), Momentum, b.rng()); }
};

// ---- a GRCL's nodes ---------------------------------------------------------------------------------

template <class G>
struct grcl_feedforward_node : detail::grcl_node_facts<G> {
  using f = detail::grcl_node_facts<G>;
  using spec = G;
  using module = grcl_feedforward_module;
  static constexpr static_name name = dotted(f::layer, "feedforward");
  static constexpr int step = 0, local = 0;
  static constexpr std::array<int, 1> inputs{-1};
  static constexpr bool ends_layer = false, emits_layer = false;
  static constexpr node_program program = [] {
    node_program p;
    const int x = p.bn_relu(p.input(f::options.in_channels), f::options.in_channels, f::layer, "bn_f", "relu_f");
    const int x0 = p.conv(x, {f::options.in_channels, f::E, 3, 1, 1, 1, f::options.groups}, dotted(f::layer, "conv_f"));
    return p.returns(p.identity(x0, dotted(f::layer, "state")));  // the state at step 0
  }();
  static module make(graph_builder& b) { return module(f::options, f::layer.view(), b); }
};

template <class G>
struct grcl_gate_node : detail::grcl_node_facts<G> {
  using f = detail::grcl_node_facts<G>;
  using spec = G;
  using module = grcl_gate_module;
  static constexpr static_name name = dotted(f::layer, "gate");
  static constexpr int step = 0, local = 1;
  static constexpr std::array<int, 1> inputs{-1};
  static constexpr bool ends_layer = false, emits_layer = false;
  static constexpr node_program program = [] {
    node_program p;
    const int cin = f::options.in_channels;
    const int x = p.bn_relu(p.input(cin), cin, f::layer, "bn_g_f", "relu_g_f");
    const int gf = p.conv(x, {cin, f::E, 1, 1, 0, 1, f::options.groups, true}, dotted(f::layer, "conv_g_f"));
    if (f::owns_recurrent) p.weights_only({f::E, f::E, 1, 1, 0, 1, f::options.groups}, f::recurrent_key);
    return p.returns(gf);
  }();
  static module make(graph_builder& b) { return module(f::options, f::layer.view(), f::recurrent_key.view(), f::owns_recurrent, b); }
};

template <class G, int T>
struct grcl_iteration_node : detail::grcl_node_facts<G> {
  using f = detail::grcl_node_facts<G>;
  using spec = G;
  static constexpr static_name name = dotted(f::layer, "iter_", T);
  static constexpr int step = T, local = 1 + T;
  // x_{t-1} (the feed-forward node's x0 for t = 1, else the previous iteration) and the gate input gf.
  static constexpr std::array<int, 2> inputs{T == 1 ? 0 : T, 1};
  static constexpr bool ends_layer = T == G::options.iterations && !G::options.downsample;
  static constexpr bool emits_layer = ends_layer;
  static constexpr node_program program = [] {
    constexpr int E = f::E, P = f::P;
    node_program p;
    const int x = p.input(E), gf = p.input(E);
    const static_name body = name, gate = dotted(f::layer, "iter_g_", T), key = f::bottleneck_key(T);
    const weight_slot slot = f::owns_bottleneck(T) ? weight_slot::own : weight_slot::shared;
    const int g = p.bn_relu(x, E, gate, "0", "1");
    const int gr = p.conv(g, {E, E, 1, 1, 0, 1, f::options.groups}, dotted(f::layer, "conv_g_r"), weight_slot::shared,
                          f::recurrent_key, T - 1);
    int h = p.bn_relu(x, E, body, "0", "1");
    h = p.conv(h, {E, P}, dotted(body, "2"), slot, dotted(key, "2"));
    h = p.bn_relu(h, P, body, "3", "4");
    if (f::sk) {
      h = detail::sk_program(p, h, P, 1, f::options, dotted(body, "5"), slot, dotted(key, "5"));
      h = p.conv(h, {P, E}, dotted(body, "6"), slot, dotted(key, "6"));
    } else {
      h = p.conv(h, {P, P, 3, 1, 1}, dotted(body, "5"), slot, dotted(key, "5"));
      h = p.bn_relu(h, P, body, "6", "7");
      h = p.conv(h, {P, E}, dotted(body, "8"), slot, dotted(key, "8"));
    }
    int out = p.gated_update(x, gr, gf, h, dotted(f::layer, "state"), T);
    if (ends_layer) out = p.identity(out, f::layer);
    return p.returns(out);
  }();
  // The gate BN and the bottleneck's first BN read x_{t-1}: the module computes their statistics once.
  static constexpr bool pairs_batch_norms = program.batch_norm_pairs() == 1;
  static constexpr static_name bottleneck = f::bottleneck_key(T);
  using module = grcl_iteration_module<G::options.middle, pairs_batch_norms>;
  static module make(graph_builder& b) {
    return module(f::options, f::layer.view(), T,
                  {.recurrent = f::recurrent_key.view(), .bottleneck = bottleneck.view(), .owns_bottleneck = f::owns_bottleneck(T)}, b);
  }
};

template <class G>
struct grcl_transition_node : detail::grcl_node_facts<G> {
  using f = detail::grcl_node_facts<G>;
  using spec = G;
  using module = grcl_transition_module<G::options.middle>;
  static constexpr static_name name = dotted(f::layer, "transition");
  static constexpr int step = 0, local = 2 + G::options.iterations;
  static constexpr std::array<int, 1> inputs{1 + G::options.iterations};  // x_T
  static constexpr bool ends_layer = true, emits_layer = true;
  static constexpr node_program program = [] {
    constexpr int E = f::E, P = f::P;
    const static_name& L = f::layer;
    node_program p;
    const int x = p.input(E);
    int a = p.bn_relu(x, E, L, "d_bn", "d_relu");
    a = p.conv(p.avg_pool(a, 2, 2, {}), {E, E}, dotted(L, "d_conv"));
    int b = p.bn_relu(x, E, L, "d_bn_1", "d_relu_1");
    b = p.conv(b, {E, P}, dotted(L, "d_conv_1"));
    b = p.bn_relu(b, P, L, "d_bn_3", "d_relu_3");
    if (f::sk)
      b = detail::sk_program(p, b, P, 2, f::options, dotted(L, "d_conv_3"), weight_slot::own, dotted(L, "d_conv_3"));
    else
      b = p.conv(b, {P, P, 3, 2, 1}, dotted(L, "d_conv_3"));
    if (f::options.style == code_style::cifar && !f::sk) p.unused_batch_norm(P, dotted(L, "d_bn_1e"));
    b = p.conv(b, {P, E}, dotted(L, "d_conv_1e"));
    return p.returns(p.identity(p.add(a, b), L));
  }();
  static module make(graph_builder& b) { return module(f::options, f::layer.view(), b); }
};

// ---- expansions -------------------------------------------------------------------------------------

template <int Out>
struct node_expansion<imagenet_stem<Out>> {
  static constexpr auto nodes = boost::hana::make_basic_tuple(boost::hana::type_c<imagenet_stem_node<Out>>);
};
template <int Out, int Stride>
struct node_expansion<cifar_stem<Out, Stride>> {
  static constexpr auto nodes = boost::hana::make_basic_tuple(boost::hana::type_c<cifar_stem_node<Out, Stride>>);
};
template <vone_options O>
struct node_expansion<vone_stem<O>> {
  static constexpr auto nodes = boost::hana::make_basic_tuple(boost::hana::type_c<vone_stem_node<O>>);
};
template <int In, int Pool, double Momentum>
struct node_expansion<classifier_head<In, Pool, Momentum>> {
  static constexpr auto nodes = boost::hana::make_basic_tuple(boost::hana::type_c<head_node<In, Pool, Momentum>>);
};
// A GRCL: feed-forward, gate, the range 1..T folded into iteration node types, the transition.
template <fixed_string Name, grcl_options O, fixed_string SharesWith>
struct node_expansion<grcl<Name, O, SharesWith>> {
  using G = grcl<Name, O, SharesWith>;
  static constexpr auto iterations = boost::hana::unpack(
      boost::hana::make_range(boost::hana::int_c<1>, boost::hana::int_c<O.iterations + 1>),
      [](auto... t) { return boost::hana::make_basic_tuple(boost::hana::type_c<grcl_iteration_node<G, decltype(t)::value>>...); });
  static constexpr auto tail = [] {
    if constexpr (O.downsample)
      return boost::hana::make_basic_tuple(boost::hana::type_c<grcl_transition_node<G>>);
    else
      return boost::hana::make_basic_tuple();
  }();
  static constexpr auto nodes = boost::hana::concat(
      boost::hana::concat(
          boost::hana::make_basic_tuple(boost::hana::type_c<grcl_feedforward_node<G>>, boost::hana::type_c<grcl_gate_node<G>>),
          iterations),
      tail);
};

}  // namespace grcnn::nn
