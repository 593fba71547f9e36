#pragma once
// The unrolled graph of a topology: one flat list of node types (each layer description expanded by
// nn/graph_nodes.hpp, the expansions flattened with Boost.Hana) with compile-time edges, and the model
// facts folded over its node programs, all constexpr:
//
//   using facts = nn::model_facts<models::grcnn55_topology>;
//   static_assert(facts::parameters(1000).total() == 24'929'704);
//   facts::macs(224, 224), facts::activation_bytes(224, 224), facts::tap("layer2.iter_3.8").rf_h.size()
//
// The receptive fields are those of evaluation mode (a training batch norm couples every pixel) and
// count the zero padding as input (the theoretical field; a unit near the border sees less image).
#include <array>
#include <cstdint>

#include <boost/hana/basic_tuple.hpp>
#include <boost/hana/flatten.hpp>
#include <boost/hana/type.hpp>
#include <boost/hana/unpack.hpp>

#include "grcnn/nn/graph_nodes.hpp"
#include "grcnn/nn/topology.hpp"

namespace grcnn::nn {

template <class... Nodes>
struct node_list {
  static constexpr std::size_t size = sizeof...(Nodes);
};

template <class Topology>
struct graph_of;
template <class... Layers>
struct graph_of<topology<Layers...>> {
  static constexpr auto node_types = boost::hana::flatten(boost::hana::make_basic_tuple(node_expansion<Layers>::nodes...));
  using type = typename decltype(boost::hana::unpack(node_types, boost::hana::template_<node_list>))::type;
};
// The flat node list of a topology: node_list<stem node, layer1.feedforward, ..., head node>.
template <class Topology>
using graph_nodes = typename graph_of<Topology>::type;

struct parameter_counts {
  std::int64_t trainable = 0, fixed = 0;
  constexpr std::int64_t total() const { return trainable + fixed; }
};

// A named tap's output at an input size: shape, receptive field and reach.
struct tap_facts {
  static_name name;
  int step = 0;
  int node = -1;  // the graph node that computes it
  value_facts value;
  constexpr bool found() const { return node >= 0; }
};

// A node at an input size: its output, inputs (graph node indices; -1 the image) and costs.
struct node_facts {
  static_name name, layer;
  int step = 0;
  std::array<int, 4> inputs{-2, -2, -2, -2};  // -2: none
  value_facts output;
  parameter_counts parameters;
  std::int64_t macs = 0, activation_elements = 0;
};

template <class Nodes>
struct graph_facts;

template <class... N>
struct graph_facts<node_list<N...>> {
  static constexpr int size = static_cast<int>(sizeof...(N));
  static constexpr std::array<const node_program*, sizeof...(N)> programs{&N::program...};
  static constexpr std::array<static_name, sizeof...(N)> names{N::name...};
  static constexpr std::array<static_name, sizeof...(N)> layers{N::layer...};
  static constexpr std::array<int, sizeof...(N)> steps{N::step...};
  static constexpr int prim_total = (0 + ... + N::program.size());
  static constexpr std::array<int, sizeof...(N)> arities{static_cast<int>(N::inputs.size())...};
  // Whether a node's output is its layer's (tapped under the layer's name).
  static constexpr std::array<bool, sizeof...(N)> emits_layer{N::emits_layer...};

 private:
  template <class Node>
  static constexpr std::array<int, 4> local_inputs() {
    std::array<int, 4> r{-2, -2, -2, -2};
    for (std::size_t k = 0; k < Node::inputs.size(); ++k) r[k] = Node::inputs[k];
    return r;
  }
  static constexpr std::array<std::array<int, 4>, sizeof...(N)> local_edges{local_inputs<N>()...};
  static constexpr std::array<int, sizeof...(N)> locals{N::local...};

 public:
  // Graph edges: node i reads the outputs of edges[i][k] (-1: the image; -2: no k-th input).
  static constexpr std::array<std::array<int, 4>, sizeof...(N)> edges = [] {
    std::array<std::array<int, 4>, sizeof...(N)> e{};
    for (int i = 0; i < size; ++i)
      for (int k = 0; k < 4; ++k) {
        const int l = local_edges[static_cast<std::size_t>(i)][static_cast<std::size_t>(k)];
        const int base = i - locals[static_cast<std::size_t>(i)];
        e[static_cast<std::size_t>(i)][static_cast<std::size_t>(k)] = l == -2 ? -2 : l == -1 ? base - 1 : base + l;
      }
    return e;
  }();
  // The last node reading each node's output (the network drops a value after it).
  static constexpr std::array<int, sizeof...(N)> last_use = [] {
    std::array<int, sizeof...(N)> u{};
    for (int i = 0; i < size; ++i) u[static_cast<std::size_t>(i)] = i == size - 1 ? size : i;
    for (int i = 0; i < size; ++i)
      for (int e : edges[static_cast<std::size_t>(i)])
        if (e >= 0) u[static_cast<std::size_t>(e)] = u[static_cast<std::size_t>(e)] > i ? u[static_cast<std::size_t>(e)] : i;
    return u;
  }();

  // Walks every primitive of every node in order at input size h x w, calling
  // visit(node, primitive index, prim, its output facts, its multiply-adds). Returns the final output.
  template <class Visit>
  static constexpr value_facts walk(std::int64_t h, std::int64_t w, int classes, Visit&& visit) {
    std::array<value_facts, sizeof...(N)> out{};
    const value_facts image = image_facts(h, w);
    for (int i = 0; i < size; ++i) {
      const node_program& p = *programs[static_cast<std::size_t>(i)];
      std::array<value_facts, node_program::max_prims> v{};
      for (int j = 0; j < p.size(); ++j) {
        const prim& q = p[j];
        std::int64_t macs = 0;
        if (q.op == prim_op::input) {
          const int e = edges[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)];
          v[static_cast<std::size_t>(j)] = e < 0 ? image : out[static_cast<std::size_t>(e)];
          v[static_cast<std::size_t>(j)].channels_valid =
              v[static_cast<std::size_t>(j)].channels_valid && v[static_cast<std::size_t>(j)].channels == q.out_channels;
        } else {
          const value_facts* ops[4] = {};
          for (int k = 0; k < 4; ++k) {
            const int o = q.operands[static_cast<std::size_t>(k)];
            ops[k] = o >= 0 ? &v[static_cast<std::size_t>(o)] : nullptr;
          }
          if (ops[0] == nullptr) ops[0] = &image;  // weights_only: no operand, no output
          v[static_cast<std::size_t>(j)] = evaluate(q, ops, classes, macs);
        }
        visit(i, j, q, v[static_cast<std::size_t>(j)], macs);
      }
      out[static_cast<std::size_t>(i)] = v[static_cast<std::size_t>(p.output())];
    }
    return out[static_cast<std::size_t>(size - 1)];
  }

  // ---- counts -------------------------------------------------------------------------------------------
  // Every parameter element once (shared weights counted by their owner), as PyTorch's
  // sum(p.numel() for p in model.parameters()); fixed ones (the Gabor banks) apart.
  static constexpr parameter_counts parameters(int classes) {
    parameter_counts c;
    for (int i = 0; i < size; ++i) {
      const node_program& p = *programs[static_cast<std::size_t>(i)];
      for (int j = 0; j < p.size(); ++j) {
        const prim& q = p[j];
        const std::int64_t n = q.parameter_elements(classes);
        if (q.slot == weight_slot::own) c.trainable += n;
        if (q.slot == weight_slot::fixed) c.fixed += n;
      }
    }
    return c;
  }
  // Multiply-adds of the convolutions and linear layers for one image of h x w.
  static constexpr std::int64_t macs(std::int64_t h, std::int64_t w, int classes = 1000) {
    std::int64_t total = 0;
    walk(h, w, classes, [&](int, int, const prim&, const value_facts&, std::int64_t m) { total += m; });
    return total;
  }
  static constexpr std::int64_t flops(std::int64_t h, std::int64_t w, int classes = 1000) { return 2 * macs(h, w, classes); }
  // The elements of every tensor one training forward of one h x w image produces and keeps (each
  // convolution's, fused BN-ReLU's, pooling's, sum's and gated update's output); times the activation
  // dtype's size, the activation memory per image.
  static constexpr std::int64_t activation_elements(std::int64_t h, std::int64_t w, int classes = 1000) {
    std::int64_t total = 0;
    walk(h, w, classes, [&](int, int, const prim& q, const value_facts& v, std::int64_t) {
      if (q.kept && q.op != prim_op::input && q.op != prim_op::weights_only) total += v.elements();
    });
    return total;
  }
  static constexpr std::int64_t activation_bytes(std::int64_t h, std::int64_t w, int bytes_per_element = 4, int classes = 1000) {
    return activation_elements(h, w, classes) * bytes_per_element;
  }

  // ---- shapes -------------------------------------------------------------------------------------------
  static constexpr value_facts output(std::int64_t h, std::int64_t w, int classes = 1000) {
    return walk(h, w, classes, [](int, int, const prim&, const value_facts&, std::int64_t) {});
  }
  // Whether an h x w input gives a valid output (every window fits, the transitions' branches agree,
  // a fixed readout window gets its size).
  static constexpr bool accepts(std::int64_t h, std::int64_t w) {
    bool ok = true;
    walk(h, w, 1, [&](int, int, const prim& q, const value_facts& v, std::int64_t) {
      if (q.op != prim_op::weights_only) ok = ok && v.sides_valid;
    });
    return ok;
  }
  // The first node whose primitives get other channels than they were built for (-1: none). Channels
  // only, as integers: this runs in every translation unit that builds a network (a static_assert), so
  // it does not pay for walk()'s shapes and fields.
  static constexpr int first_channel_mismatch() {
    std::array<int, sizeof...(N)> out{};
    for (int i = 0; i < size; ++i) {
      const node_program& p = *programs[static_cast<std::size_t>(i)];
      std::array<int, node_program::max_prims> c{};
      for (int j = 0; j < p.size(); ++j) {
        const prim& q = p[j];
        const auto operand = [&](int k) { return c[static_cast<std::size_t>(q.operands[static_cast<std::size_t>(k)])]; };
        int channels = q.out_channels;
        bool ok = true;
        switch (q.op) {
          case prim_op::input: {
            const int e = edges[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)];
            ok = (e < 0 ? 3 : out[static_cast<std::size_t>(e)]) == q.out_channels;
            break;
          }
          case prim_op::conv:
          case prim_op::linear:
          case prim_op::batch_norm:
          case prim_op::vone_response: ok = operand(0) == q.in_channels; break;
          case prim_op::sk_select:
            ok = operand(0) == q.in_channels && operand(1) == q.in_channels && operand(2) == 2 * q.in_channels;
            break;
          case prim_op::add:
          case prim_op::gated_update:
            channels = operand(0);
            for (int k = 1; k < 4 && q.operands[static_cast<std::size_t>(k)] >= 0; ++k) ok = ok && operand(k) == channels;
            break;
          case prim_op::weights_only: channels = 0; break;
          default: channels = operand(0); break;  // relu, pooling, identity
        }
        if (!ok) return i;
        c[static_cast<std::size_t>(j)] = channels;
      }
      out[static_cast<std::size_t>(i)] = c[static_cast<std::size_t>(p.output())];
    }
    return -1;
  }

  // ---- weight slots --------------------------------------------------------------------------------------
  struct slot_problem {
    int node = -1;  // the sharing node (-1: none)
    static_name key;
    bool has_owner = false;
    int owner_in = 0, owner_out = 0, owner_kernel = 0, owner_groups = 0;
    int user_in = 0, user_out = 0, user_kernel = 0, user_groups = 0;
  };
  // The first shared weight whose owner is missing (or comes later) or has another shape. One pass: each
  // node's owned slots go into a table keyed by a hash of the name, then its shared slots are looked up
  // there (a static_assert in every translation unit that builds a network; comparing names pairwise cost
  // seconds per topology in the compiler).
  static constexpr slot_problem first_slot_problem() {
    struct owner {
      std::uint64_t hash = 0;
      const prim* p = nullptr;
    };
    std::array<owner, prim_total> owners{};
    int owned = 0;
    for (int i = 0; i < size; ++i) {
      const node_program& p = *programs[static_cast<std::size_t>(i)];
      for (int j = 0; j < p.size(); ++j)
        if (p[j].slot == weight_slot::own) owners[static_cast<std::size_t>(owned++)] = {name_hash(p[j].slot_key), &p[j]};
      for (int j = 0; j < p.size(); ++j) {
        const prim& u = p[j];
        if (u.slot != weight_slot::shared) continue;
        slot_problem r{i, u.slot_key, false, 0, 0, 0, 0, u.in_channels, u.out_channels, u.kernel, u.groups};
        const std::uint64_t h = name_hash(u.slot_key);
        for (int k = 0; k < owned && !r.has_owner; ++k) {
          const owner& o = owners[static_cast<std::size_t>(k)];
          if (o.hash != h || !(o.p->slot_key == u.slot_key)) continue;
          const prim& c = *o.p;
          r.has_owner = true;
          r.owner_in = c.in_channels, r.owner_out = c.out_channels, r.owner_kernel = c.kernel, r.owner_groups = c.groups;
          if (c.in_channels != u.in_channels || c.out_channels != u.out_channels || c.kernel != u.kernel ||
              c.groups != u.groups || c.dilation != u.dilation || c.bias != u.bias || (c.op == prim_op::batch_norm) != (u.op == prim_op::batch_norm))
            return r;
        }
        if (!r.has_owner) return r;
      }
    }
    return {};
  }

  // ---- taps ---------------------------------------------------------------------------------------------
  static constexpr int tap_count = (0 + ... + N::program.tap_count());
  // Every tap of the graph in forward order at h x w (name, call index, the node computing it, shape,
  // receptive field). A module run once per iteration (conv_g_r) has one entry per call.
  static constexpr std::array<tap_facts, tap_count> taps(std::int64_t h, std::int64_t w, int classes = 1000) {
    std::array<tap_facts, tap_count> r{};
    int n = 0;
    walk(h, w, classes, [&](int i, int, const prim& q, const value_facts& v, std::int64_t) {
      if (!q.tap.empty()) r[static_cast<std::size_t>(n++)] = {q.tap, q.step, i, v};
    });
    return r;
  }
  // Whether the graph has a tap of this name (at this call index; -1: any).
  static constexpr bool has_tap(std::string_view name, int step = -1) {
    for (const node_program* p : programs)
      for (int j = 0; j < p->size(); ++j)
        if ((*p)[j].tap.view() == name && (step < 0 || (*p)[j].step == step)) return true;
    return false;
  }
  // One tap's facts at h x w (found() false if the graph has no such tap and step).
  static constexpr tap_facts tap(std::string_view name, int step = 0, std::int64_t h = 224, std::int64_t w = 224,
                                 int classes = 1000) {
    tap_facts r;
    walk(h, w, classes, [&](int i, int, const prim& q, const value_facts& v, std::int64_t) {
      if (!r.found() && q.tap.view() == name && q.step == step) r = {q.tap, q.step, i, v};
    });
    return r;
  }
  // The `count` tap names nearest to `name` by edit distance (for "did you mean").
  template <std::size_t Count = 3>
  static constexpr std::array<static_name, Count> nearest_taps(std::string_view name) {
    std::array<static_name, Count> best{};
    std::array<std::size_t, Count> distance{};
    for (auto& d : distance) d = ~std::size_t{0};
    for (const node_program* p : programs)
      for (int j = 0; j < p->size(); ++j) {
        const static_name& t = (*p)[j].tap;
        if (t.empty()) continue;
        bool seen = false;
        for (const auto& b : best) seen = seen || b == t;
        if (seen) continue;
        std::size_t d = edit_distance(name, t.view());
        static_name candidate = t;
        for (std::size_t k = 0; k < Count; ++k)
          if (d < distance[k]) {
            const std::size_t dd = distance[k];
            const static_name bb = best[k];
            distance[k] = d, best[k] = candidate;
            d = dd, candidate = bb;
          }
      }
    return best;
  }

  // ---- nodes --------------------------------------------------------------------------------------------
  static constexpr std::array<node_facts, sizeof...(N)> nodes(std::int64_t h, std::int64_t w, int classes = 1000) {
    std::array<node_facts, sizeof...(N)> r{};
    for (int i = 0; i < size; ++i) {
      r[static_cast<std::size_t>(i)].name = names[static_cast<std::size_t>(i)];
      r[static_cast<std::size_t>(i)].layer = layers[static_cast<std::size_t>(i)];
      r[static_cast<std::size_t>(i)].step = steps[static_cast<std::size_t>(i)];
      r[static_cast<std::size_t>(i)].inputs = edges[static_cast<std::size_t>(i)];
    }
    walk(h, w, classes, [&](int i, int j, const prim& q, const value_facts& v, std::int64_t m) {
      node_facts& f = r[static_cast<std::size_t>(i)];
      f.macs += m;
      const std::int64_t n = q.parameter_elements(classes);
      if (q.slot == weight_slot::own) f.parameters.trainable += n;
      if (q.slot == weight_slot::fixed) f.parameters.fixed += n;
      if (q.kept && q.op != prim_op::input && q.op != prim_op::weights_only) f.activation_elements += v.elements();
      if (j == programs[static_cast<std::size_t>(i)]->output()) f.output = v;
    });
    return r;
  }
};

// The facts of a topology's unrolled graph (see the top of this file).
template <class Topology>
using model_facts = graph_facts<graph_nodes<Topology>>;

// ---- compile-time checks with readable diagnostics --------------------------------------------------------

// Instantiated when a compile-time tap name is not in the graph: the template arguments name the
// request and the nearest valid names.
template <static_name Requested, static_name Nearest1, static_name Nearest2, static_name Nearest3>
struct unknown_tap_name {
  static_assert(Requested.length == 0 && Requested.length != 0,
                "grcnn tap: the topology has no tap of this name - unknown_tap_name<requested, nearest, next, next> "
                "in the line above names it and the nearest valid names");
  static constexpr bool value = false;
};
template <class Facts, static_name Name>
constexpr bool check_tap_name() {
  if constexpr (Facts::has_tap(Name.view())) {
    return true;
  } else {
    constexpr auto near = Facts::nearest_taps(Name.view());
    return unknown_tap_name<Name, near[0], near[1], near[2]>::value;
  }
}

// Instantiated when a shared weight slot's owner is missing or has another shape; the arguments name the
// slot and both shapes (in, out, kernel, groups; an owner of 0s: none before the sharing node).
template <static_name Slot, int OwnerIn, int OwnerOut, int OwnerKernel, int OwnerGroups, int UserIn, int UserOut,
          int UserKernel, int UserGroups>
struct shared_weight_mismatch {
  static_assert(OwnerIn < 0,
                "grcnn graph: a node shares a weight slot whose owner has another shape or comes later - "
                "shared_weight_mismatch<slot, owner in, out, kernel, groups, user in, out, kernel, groups> in the line "
                "above names them");
  static constexpr bool value = false;
};
template <class Facts>
constexpr bool check_shared_weights() {
  constexpr auto problem = Facts::first_slot_problem();
  if constexpr (problem.node < 0) {
    return true;
  } else {
    return shared_weight_mismatch<problem.key, problem.owner_in, problem.owner_out, problem.owner_kernel,
                                  problem.owner_groups, problem.user_in, problem.user_out, problem.user_kernel,
                                  problem.user_groups>::value;
  }
}

// Instantiated when some node's primitive gets other channels than it was built for (a user topology the
// layer-to-layer check cannot see, such as a readout narrower than the last layer's output).
template <static_name Node>
struct node_channel_mismatch {
  static_assert(Node.length == 0 && Node.length != 0,
                "grcnn graph: channel mismatch inside the unrolled graph - node_channel_mismatch<node> in the line above "
                "names the node");
  static constexpr bool value = false;
};
template <class Facts>
constexpr bool check_node_channels() {
  constexpr int bad = Facts::first_channel_mismatch();
  if constexpr (bad < 0)
    return true;
  else
    return node_channel_mismatch<Facts::names[static_cast<std::size_t>(bad)]>::value;
}

}  // namespace grcnn::nn
