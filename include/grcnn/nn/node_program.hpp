#pragma once
// What one graph node computes, as a constant: a short list of primitives (conv, BN, ReLU, pooling,
// linear, the gated update, ...) with their geometry, weight slots and PyTorch tap names. The run-time
// modules compute; these programs describe, and everything the library knows about a model without
// running it comes from them: shapes at any input size, parameter counts, multiply-adds, activation
// memory and receptive fields (nn/graph.hpp folds them over the graph). Tests hold the two together:
// every tap a program names is emitted by its module with the shape the program gives, and the
// parameter counts equal the modules' own.
#include <array>
#include <cstdint>
#include <stdexcept>

#include "grcnn/nn/static_name.hpp"

namespace grcnn::nn {

enum class prim_op : std::uint8_t {
  input,            // the node's k-th input
  conv,             // 2-D convolution (kernel, stride, pad, dilation, groups, bias)
  batch_norm,       // per-channel; identity geometry
  relu,
  max_pool,         // kernel, stride, pad (floor mode)
  avg_pool,         // kernel, stride; exact_window: the input must equal the window (a fixed readout)
  global_avg_pool,  // the whole map to 1x1
  linear,           // on a 1x1 map; out_channels < 0: the network's class count
  add,              // a + b
  gated_update,     // x + sigmoid(a + b) * y   (operands x, a, b, y)
  sk_select,        // softmax-weighted sum of two branches by a 1x1 attention map
  vone_response,    // the VOneBlock's simple/complex cell responses of its two Gabor convolutions
  identity,         // another name for its operand (a layer's output)
  weights_only,     // a convolution's weights this node owns for later nodes; computes nothing
};

// Where a primitive's weights live: nowhere, its own (trainable), another node's slot (shared, counted
// once, by the owner), or its own but fixed (not trained, e.g. the Gabor banks).
enum class weight_slot : std::uint8_t { none, own, shared, fixed };

struct prim {
  prim_op op = prim_op::input;
  std::array<std::int8_t, 4> operands{-1, -1, -1, -1};  // earlier primitives of the same node
  int in_channels = 0, out_channels = 0;
  int kernel = 1, stride = 1, pad = 0, dilation = 1, groups = 1;
  bool bias = false;
  bool exact_window = false;
  weight_slot slot = weight_slot::none;
  static_name slot_key;                 // the owner's name of the weights (own and shared slots)
  std::int64_t stored_weights = -1;     // weight elements where they differ from the computed ones
  static_name tap;                      // the PyTorch module name its output is tapped under, or empty
  int step = 0;                         // the tap's call index (time step t - 1 for per-iteration modules)
  bool kept = true;                     // a tensor of its own in training (a BN fused with its ReLU is not)

  // Its parameters' elements with `classes` output classes (a readout's weight and bias follow them).
  constexpr std::int64_t parameter_elements(int classes) const {
    return op == prim_op::linear ? std::int64_t{in_channels} * classes + classes : weight_elements();
  }
  constexpr std::int64_t weight_elements() const {
    if (stored_weights >= 0) return stored_weights;
    switch (op) {
      case prim_op::conv:
      case prim_op::weights_only:
        return std::int64_t{out_channels} * (in_channels / groups) * kernel * kernel + (bias ? out_channels : 0);
      case prim_op::batch_norm: return 2 * std::int64_t{in_channels};
      default: return 0;
    }
  }
};

class node_program {
 public:
  static constexpr int max_prims = 40;

  constexpr int input(int channels) {
    if (size_ != arity_) throw std::logic_error("grcnn: a node's inputs come before its primitives");
    prim p;
    p.op = prim_op::input;
    p.in_channels = p.out_channels = channels;
    p.kept = false;
    ++arity_;
    return push(p);
  }
  struct conv_geometry {
    int in, out, kernel = 1, stride = 1, pad = 0, dilation = 1, groups = 1;
    bool bias = false;
  };
  constexpr int conv(int x, conv_geometry g, static_name tap, weight_slot slot = weight_slot::own,
                     static_name key = {}, int step = 0) {
    prim p = geometry(prim_op::conv, g);
    p.operands[0] = operand(x);
    p.slot = slot;
    p.slot_key = key.empty() ? tap : key;
    p.tap = tap;
    p.step = step;
    return push(p);
  }
  constexpr int weights_only(conv_geometry g, static_name key, weight_slot slot = weight_slot::own) {
    prim p = geometry(prim_op::weights_only, g);
    p.slot = slot;
    p.slot_key = key;
    p.kept = false;
    return push(p);
  }
  constexpr int batch_norm(int x, int channels, static_name tap, weight_slot slot = weight_slot::own,
                           static_name key = {}) {
    prim p;
    p.op = prim_op::batch_norm;
    p.operands[0] = operand(x);
    p.in_channels = p.out_channels = channels;
    p.slot = slot;
    p.slot_key = key.empty() ? tap : key;
    p.tap = tap;
    p.kept = false;  // fused with the ReLU that always follows it
    return push(p);
  }
  // A batch norm registered in the state but never run (the CIFAR code's d_bn_1e).
  constexpr int unused_batch_norm(int channels, static_name key) {
    prim p;
    p.op = prim_op::weights_only;
    p.in_channels = p.out_channels = channels;
    p.stored_weights = 2 * std::int64_t{channels};
    p.slot = weight_slot::own;
    p.slot_key = key;
    p.kept = false;
    return push(p);
  }
  constexpr int relu(int x, static_name tap) { return unary(prim_op::relu, x, tap); }
  // BN then ReLU, named prefix.bn_name and prefix.relu_name.
  constexpr int bn_relu(int x, int channels, const static_name& prefix, std::string_view bn_name,
                        std::string_view relu_name, weight_slot slot = weight_slot::own, static_name key_prefix = {}) {
    const static_name bn_key = key_prefix.empty() ? static_name{} : dotted(key_prefix, bn_name);
    return relu(batch_norm(x, channels, dotted(prefix, bn_name), slot, bn_key), dotted(prefix, relu_name));
  }
  constexpr int max_pool(int x, int kernel, int stride, int pad, static_name tap) {
    prim p = pool(prim_op::max_pool, x, kernel, stride, pad, tap);
    return push(p);
  }
  constexpr int avg_pool(int x, int kernel, int stride, static_name tap, bool exact_window = false) {
    prim p = pool(prim_op::avg_pool, x, kernel, stride, 0, tap);
    p.exact_window = exact_window;
    return push(p);
  }
  constexpr int global_avg_pool(int x, static_name tap) { return unary(prim_op::global_avg_pool, x, tap); }
  constexpr int linear(int x, int in, int out, static_name tap) {  // out < 0: the class count
    prim p;
    p.op = prim_op::linear;
    p.operands[0] = operand(x);
    p.in_channels = in;
    p.out_channels = out;
    p.bias = true;
    p.slot = weight_slot::own;
    p.slot_key = tap;
    p.tap = tap;
    return push(p);
  }
  constexpr int add(int a, int b, static_name tap = {}) {
    prim p;
    p.op = prim_op::add;
    p.operands = {operand(a), operand(b), -1, -1};
    p.tap = tap;
    return push(p);
  }
  constexpr int gated_update(int x, int a, int b, int y, static_name tap, int step) {
    prim p;
    p.op = prim_op::gated_update;
    p.operands = {operand(x), operand(a), operand(b), operand(y)};
    p.tap = tap;
    p.step = step;
    return push(p);
  }
  constexpr int sk_select(int b0, int b1, int attention, int channels, static_name tap) {
    prim p;
    p.op = prim_op::sk_select;
    p.operands = {operand(b0), operand(b1), operand(attention), -1};
    p.in_channels = p.out_channels = channels;
    p.tap = tap;
    return push(p);
  }
  constexpr int vone_response(int q0, int q1, int channels, static_name tap) {
    prim p;
    p.op = prim_op::vone_response;
    p.operands = {operand(q0), q1 >= 0 ? operand(q1) : std::int8_t{-1}, -1, -1};
    p.in_channels = p.out_channels = channels;
    p.tap = tap;
    return push(p);
  }
  constexpr int identity(int x, static_name tap) {
    prim p = prims_[static_cast<std::size_t>(x)];
    p.op = prim_op::identity;
    p.operands = {operand(x), -1, -1, -1};
    p.in_channels = p.out_channels = prims_[static_cast<std::size_t>(x)].out_channels;
    p.slot = weight_slot::none;
    p.slot_key = {};
    p.stored_weights = -1;
    p.tap = tap;
    p.step = 0;
    p.kept = false;
    return push(p);
  }
  // The weights primitive i stores where they are more than it computes with (VOne's q1 bank keeps all
  // rows, only the complex cells' are convolved).
  constexpr void stores_weights(int i, std::int64_t elements) { prims_[static_cast<std::size_t>(operand(i))].stored_weights = elements; }
  // Marks the result; a node program ends with this.
  constexpr node_program& returns(int x) {
    output_ = operand(x);
    return *this;
  }

  constexpr int size() const { return size_; }
  constexpr int arity() const { return arity_; }
  constexpr int output() const { return output_; }
  constexpr const prim& operator[](int i) const { return prims_[static_cast<std::size_t>(i)]; }
  // Pairs of batch norms that read the same value with the same channels: in training they share one
  // set of batch statistics (a GRCL iteration's iter_g_t.0 and iter_t.0; ops::paired_batch_norm).
  constexpr int batch_norm_pairs() const {
    int n = 0;
    for (int i = 0; i < size_; ++i)
      for (int j = i + 1; j < size_; ++j) {
        const prim &a = prims_[static_cast<std::size_t>(i)], &b = prims_[static_cast<std::size_t>(j)];
        n += a.op == prim_op::batch_norm && b.op == prim_op::batch_norm && a.operands[0] == b.operands[0] &&
                     a.in_channels == b.in_channels
                 ? 1
                 : 0;
      }
    return n;
  }
  constexpr int tap_count() const {
    int n = 0;
    for (int i = 0; i < size_; ++i) n += prims_[static_cast<std::size_t>(i)].tap.empty() ? 0 : 1;
    return n;
  }

 private:
  constexpr std::int8_t operand(int x) const {
    if (x < 0 || x >= size_) throw std::logic_error("grcnn: a primitive reads a value not computed before it");
    return static_cast<std::int8_t>(x);
  }
  constexpr int push(const prim& p) {
    if (size_ == max_prims) throw std::length_error("grcnn: a node program has more than 40 primitives");
    prims_[static_cast<std::size_t>(size_)] = p;
    return size_++;
  }
  constexpr int unary(prim_op op, int x, static_name tap) {
    prim p;
    p.op = op;
    p.operands[0] = operand(x);
    p.in_channels = p.out_channels = prims_[static_cast<std::size_t>(x)].out_channels;
    p.tap = tap;
    return push(p);
  }
  constexpr prim pool(prim_op op, int x, int kernel, int stride, int pad, static_name tap) const {
    prim p;
    p.op = op;
    p.operands[0] = operand(x);
    p.in_channels = p.out_channels = prims_[static_cast<std::size_t>(x)].out_channels;
    p.kernel = kernel, p.stride = stride, p.pad = pad;
    p.tap = tap;
    return p;
  }
  static constexpr prim geometry(prim_op op, const conv_geometry& g) {
    prim p;
    p.op = op;
    p.in_channels = g.in, p.out_channels = g.out;
    p.kernel = g.kernel, p.stride = g.stride, p.pad = g.pad, p.dilation = g.dilation, p.groups = g.groups;
    p.bias = g.bias;
    return p;
  }

  std::array<prim, max_prims> prims_{};
  int size_ = 0, arity_ = 0, output_ = -1;
};

}  // namespace grcnn::nn

namespace grcnn::nn {

// ---- what a primitive's output is, at a given input size ----------------------------------------------

// A receptive field along one axis, in input pixels: unit i of a map sees pixels [lo + i * jump,
// hi + i * jump] (the theoretical field, padding included: lo < 0 reaches into the zero padding).
struct receptive_field {
  std::int64_t lo = 0, hi = 0, jump = 1;
  constexpr std::int64_t size() const { return hi - lo + 1; }
  // The centre of unit 0's field (the classic "start"); half pixels where an even window is involved.
  constexpr double start() const { return 0.5 * static_cast<double>(lo + hi); }
  friend constexpr bool operator==(const receptive_field&, const receptive_field&) = default;
};

// Whether a value depends on the image through local windows only, also through a global pooling (an
// SK attention, a batch statistic does not count: fields are those of evaluation mode), or only globally.
enum class spatial_reach : std::uint8_t { local, local_and_global, global };

struct value_facts {
  int channels = 0;
  std::int64_t h = 0, w = 0;
  receptive_field rf_h, rf_w;
  spatial_reach reach = spatial_reach::local;
  bool sides_valid = true;     // every window fits and the operands of sums agree in size
  bool channels_valid = true;  // every primitive gets the channels it was built for
  constexpr std::int64_t elements() const { return std::int64_t{channels} * h * w; }
};

constexpr value_facts image_facts(std::int64_t h, std::int64_t w) {
  value_facts v;
  v.channels = 3, v.h = h, v.w = w;
  v.sides_valid = h >= 1 && w >= 1;
  return v;
}

namespace detail {
constexpr std::int64_t window_side(std::int64_t in, int k, int s, int p, int d) {
  const std::int64_t span = in + 2 * p - std::int64_t{d} * (k - 1) - 1;
  return in < 1 || span < 0 ? 0 : span / s + 1;
}
constexpr receptive_field through_window(const receptive_field& r, int k, int s, int p, int d) {
  return {r.lo - p * r.jump, r.hi + (std::int64_t{d} * (k - 1) - p) * r.jump, r.jump * s};
}
constexpr receptive_field through_global(const receptive_field& r, std::int64_t side) {
  return {r.lo, r.hi + (side - 1) * r.jump, r.jump * (side < 1 ? 1 : side)};
}
// The union of operands' fields: a value's local field comes from its locally reaching operands.
constexpr value_facts merge(const value_facts* const* ops, int n) {
  value_facts v = *ops[0];
  bool any_local = false, any_global = false;
  for (int i = 0; i < n; ++i) {
    const value_facts& o = *ops[i];
    v.sides_valid = v.sides_valid && o.sides_valid;
    v.channels_valid = v.channels_valid && o.channels_valid;
    any_global = any_global || o.reach != spatial_reach::local;
    if (o.reach == spatial_reach::global) continue;
    if (!any_local) {
      v.rf_h = o.rf_h, v.rf_w = o.rf_w;
    } else {
      v.rf_h.lo = o.rf_h.lo < v.rf_h.lo ? o.rf_h.lo : v.rf_h.lo, v.rf_h.hi = o.rf_h.hi > v.rf_h.hi ? o.rf_h.hi : v.rf_h.hi;
      v.rf_w.lo = o.rf_w.lo < v.rf_w.lo ? o.rf_w.lo : v.rf_w.lo, v.rf_w.hi = o.rf_w.hi > v.rf_w.hi ? o.rf_w.hi : v.rf_w.hi;
    }
    any_local = true;
  }
  v.reach = !any_local ? spatial_reach::global : any_global ? spatial_reach::local_and_global : spatial_reach::local;
  return v;
}
}  // namespace detail

// The output of primitive p from its operands' facts; `macs` gets its multiply-adds (convolutions and
// linear layers only: BN, activations, pooling and the gating products are not counted, as the usual
// MAC counts and the spec's table).
constexpr value_facts evaluate(const prim& p, const value_facts* const* ops, int classes, std::int64_t& macs) {
  macs = 0;
  if (p.op == prim_op::weights_only) return {};
  int n = 0;
  while (n < 4 && p.operands[static_cast<std::size_t>(n)] >= 0) ++n;
  value_facts v = detail::merge(ops, n);
  const value_facts& x = *ops[0];
  switch (p.op) {
    case prim_op::conv:
    case prim_op::max_pool:
    case prim_op::avg_pool: {
      v.channels_valid = v.channels_valid && (p.op != prim_op::conv || x.channels == p.in_channels);
      v.channels = p.op == prim_op::conv ? p.out_channels : x.channels;
      if (p.exact_window) {
        v.sides_valid = v.sides_valid && x.h == p.kernel && x.w == p.kernel;
      }
      v.h = detail::window_side(x.h, p.kernel, p.stride, p.pad, p.dilation);
      v.w = detail::window_side(x.w, p.kernel, p.stride, p.pad, p.dilation);
      v.sides_valid = v.sides_valid && v.h >= 1 && v.w >= 1;
      v.rf_h = detail::through_window(x.rf_h, p.kernel, p.stride, p.pad, p.dilation);
      v.rf_w = detail::through_window(x.rf_w, p.kernel, p.stride, p.pad, p.dilation);
      if (p.op == prim_op::conv) macs = std::int64_t{p.out_channels} * (p.in_channels / p.groups) * p.kernel * p.kernel * v.h * v.w;
      break;
    }
    case prim_op::global_avg_pool:
      v.h = v.w = 1;
      v.rf_h = detail::through_global(x.rf_h, x.h);
      v.rf_w = detail::through_global(x.rf_w, x.w);
      v.reach = spatial_reach::global;
      break;
    case prim_op::linear:
      v.channels_valid = v.channels_valid && x.channels == p.in_channels;
      v.sides_valid = v.sides_valid && x.h == 1 && x.w == 1;
      v.channels = p.out_channels < 0 ? classes : p.out_channels;
      macs = std::int64_t{p.in_channels} * v.channels;
      break;
    case prim_op::batch_norm:
      v.channels_valid = v.channels_valid && x.channels == p.in_channels;
      break;
    case prim_op::add:
    case prim_op::gated_update:
      for (int i = 1; i < n; ++i) {
        v.channels_valid = v.channels_valid && ops[i]->channels == x.channels;
        v.sides_valid = v.sides_valid && ops[i]->h == x.h && ops[i]->w == x.w;
      }
      break;
    case prim_op::sk_select:
      v.channels_valid = v.channels_valid && x.channels == p.in_channels && ops[1]->channels == p.in_channels &&
                         ops[2]->channels == 2 * p.in_channels;
      v.sides_valid = v.sides_valid && ops[1]->h == x.h && ops[1]->w == x.w && ops[2]->h == 1 && ops[2]->w == 1;
      v.channels = p.out_channels, v.h = x.h, v.w = x.w;
      break;
    case prim_op::vone_response:
      v.channels_valid = v.channels_valid && x.channels == p.in_channels;
      if (n > 1) v.sides_valid = v.sides_valid && ops[1]->h == x.h && ops[1]->w == x.w;
      v.channels = p.out_channels, v.h = x.h, v.w = x.w;
      break;
    default:  // relu, identity
      break;
  }
  return v;
}

}  // namespace grcnn::nn
