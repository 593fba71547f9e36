#pragma once
// A network built from a topology (a flat list of layer descriptions), run as its unrolled graph
// (nn/graph.hpp): one module per graph node, the forward a fold over the flat node list along the
// compile-time edges. One type serves training and evaluation: BN uses batch statistics in train mode and
// running statistics in eval mode. Parameters carry PyTorch's state_dict names in PyTorch's order.
#include <set>
#include <type_traits>

#include <boost/hana/at.hpp>
#include <boost/hana/basic_tuple.hpp>
#include <boost/hana/unpack.hpp>

#include "grcnn/nn/graph.hpp"

namespace grcnn::nn {

enum class mode { train, eval };

namespace detail {
// One node's module in the network's tuple. Built in place from the node's make (no temporary module);
// its move and destructor are out of line, one copy per module kind: inlined, the tuple's construction,
// exception cleanup and destruction repeated every module's member-wise code for every node.
template <class M>
struct node_module {
  M module;
  template <class Node>
  node_module(boost::hana::basic_type<Node>, graph_builder& b) : module(Node::make(b)) {}
  GRCNN_NOINLINE node_module(node_module&& other) noexcept(std::is_nothrow_move_constructible_v<M>)
      : module(std::move(other.module)) {}
  node_module(const node_module&) = delete;
  node_module& operator=(const node_module&) = delete;
  GRCNN_NOINLINE node_module& operator=(node_module&& other) {
    module = std::move(other.module);
    return *this;
  }
  GRCNN_NOINLINE ~node_module() {}
};

template <class Nodes>
struct graph_modules;
template <class... N>
struct graph_modules<node_list<N...>> {
  // Flat (Hana's basic_tuple): a std::tuple of a grcnn109's 44 modules nests 44 base classes deep.
  using tuple = boost::hana::basic_tuple<node_module<typename N::module>...>;
  template <std::size_t I>
  using node = typename std::remove_cvref_t<decltype(boost::hana::at_c<I>(
      std::declval<boost::hana::basic_tuple<boost::hana::basic_type<N>...>>()))>::type;
  // Braces: the nodes are built (and draw from the seeded stream) in graph order, on every compiler.
  static tuple make(graph_builder& b) { return tuple{node_module<typename N::module>(boost::hana::type_c<N>, b)...}; }
  template <class M>
  static constexpr int count = (0 + ... + int(std::is_same_v<typename N::module, M>));
  // The first node whose module is M.
  template <class M>
  static constexpr std::size_t index_of = [] {
    constexpr std::array<bool, sizeof...(N)> same{std::is_same_v<typename N::module, M>...};
    std::size_t i = 0;
    while (i < same.size() && !same[i]) ++i;
    return i;
  }();
  template <class B>
  static constexpr bool modules_keep_contract = (graph_module_on<typename N::module, B> && ...);
};

// Input sides a graph turns into a valid final map (the side arithmetic of node_program's evaluate, on
// one axis and nothing else: cheap enough to search for the nearest accepted sizes). A fixed readout
// window (exact_window) takes its map as `r` says (nn/specs.hpp's readout).
template <class Facts>
constexpr bool graph_accepts_side(std::int64_t side, readout r = readout::exact) {
  std::array<std::int64_t, static_cast<std::size_t>(Facts::size)> out{};
  for (int i = 0; i < Facts::size; ++i) {
    const node_program& p = *Facts::programs[static_cast<std::size_t>(i)];
    std::array<std::int64_t, node_program::max_prims> v{};
    for (int j = 0; j < p.size(); ++j) {
      const prim& q = p[j];
      const auto operand = [&](int k) { return v[static_cast<std::size_t>(q.operands[static_cast<std::size_t>(k)])]; };
      std::int64_t s = 0;
      switch (q.op) {
        case prim_op::input: {
          const int e = Facts::edges[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)];
          s = e < 0 ? side : out[static_cast<std::size_t>(e)];
          break;
        }
        case prim_op::conv:
        case prim_op::max_pool:
        case prim_op::avg_pool:
          if (q.exact_window && r == readout::global) {
            s = operand(0) >= 1 ? 1 : 0;
            break;
          }
          if (q.exact_window && r == readout::exact && operand(0) != q.kernel) return false;
          s = window_side(operand(0), q.kernel, q.stride, q.pad, q.dilation);  // original: the classifier wants 1
          break;
        case prim_op::global_avg_pool: s = 1; break;
        case prim_op::linear:
          if (operand(0) != 1) return false;
          s = 1;
          break;
        case prim_op::weights_only: s = 1; break;
        case prim_op::add:
        case prim_op::gated_update:
        case prim_op::vone_response:
          s = operand(0);
          for (int k = 1; k < 4 && q.operands[static_cast<std::size_t>(k)] >= 0; ++k)
            if (operand(k) != s) return false;
          break;
        case prim_op::sk_select:
          s = operand(0);
          if (operand(1) != s || operand(2) != 1) return false;
          break;
        default: s = operand(0); break;
      }
      if (s < 1) return false;
      v[static_cast<std::size_t>(j)] = s;
    }
    out[static_cast<std::size_t>(i)] = v[static_cast<std::size_t>(p.output())];
  }
  return true;
}

// What the forward's step needs of the graph at run time: its tables (nn/graph.hpp's model facts) and
// the values computed so far.
struct graph_run_view {
  const std::array<int, 4>* edges;
  const int* arities;
  const bool* emits_layer;
  const static_name* layers;
  const int* last_use;
  const bool* eval_nodes;  // nodes of layers held in evaluation mode (set_eval_layers)
  variable* values;
};
// One node's step of the forward fold: gathers its inputs along its edges, runs its module, reports a
// layer's output to the taps and drops every value whose last reader it is. Templated on the backend and
// the module type only: every node of one kind, in every network, shares this code (a step per node
// index would be compiled once per node of every network).
template <class B, class M>
void run_graph_node(M& module, int i, const graph_run_view& g, const variable& image, const forward_context& ctx) {
  const auto& e = g.edges[i];
  const auto input = [&](int k) -> const variable& { return e[static_cast<std::size_t>(k)] < 0 ? image : g.values[e[static_cast<std::size_t>(k)]]; };
  forward_context c = ctx;
  c.training = ctx.training && !g.eval_nodes[i];
  g.values[i] = g.arities[i] == 1 ? module.template forward<B>(node_inputs(input(0)), c)
                                  : module.template forward<B>(node_inputs{&input(0), &input(1)}, c);
  if (g.emits_layer[i] && c.tapping()) c.emit_as(std::string(g.layers[i].view()), g.values[i]);
  for (int j = 0; j < i; ++j)
    if (g.last_use[j] == i) g.values[j] = variable();
}
}  // namespace detail

template <class Topology, class Backend = backends::default_backend>
class network;

template <class... Layers, class Backend>
class network<topology<Layers...>, Backend> {
  static_assert(topology<Layers...>::checked);

 public:
  using topology_type = topology<Layers...>;
  using backend = Backend;
  // The unrolled graph: node_list<node types...> and the model facts folded over it (nn/graph.hpp).
  using nodes = graph_nodes<topology_type>;
  using facts = model_facts<topology_type>;

 private:
  using modules_type = detail::graph_modules<nodes>;
  static_assert(check_node_channels<facts>());
  static_assert(check_shared_weights<facts>());
  static_assert(modules_type::template modules_keep_contract<Backend>,
                "grcnn network: a node's module does not keep the graph_module contract on this backend "
                "(forward<B>(node_inputs, forward_context) -> variable, collect(state_list&); see nn/module.hpp)");
  static constexpr std::size_t node_count = static_cast<std::size_t>(facts::size);

 public:
  explicit network(int num_classes = 1000, std::uint64_t seed = 0) : network(num_classes, initializer(seed)) {}

  variable forward(const variable& x, const tap_registry* taps = nullptr) {
    GRCNN_CHECK(x.value().rank() == 4 && x.dims()[1] == 3, shape_error, "network: input must be [N, 3, H, W], got ",
                x.value().describe());
    check_input_side("height", x.dims()[2]);
    check_input_side("width", x.dims()[3]);
    forward_context ctx{mode_ == mode::train, taps, batch_norm_group_, own_taps_.empty() ? nullptr : &own_taps_};
    const bool mixed = precision_ != precision::fp32;
    variable h = x;
    if (mixed) {
      // The backend may run mixed precision in another activation order (CUDA: channels-last for bf16);
      // an input that needs no gradient is reordered here, once, before the cast.
      const layout want = backends::preferred_activations<Backend>(activation_dtype(precision_));
      if (!x.requires_grad() && x.value().memory_layout() != want) h = variable(x.value().to_layout(want));
      h = ops::cast<Backend>(h, activation_dtype(precision_));
    }
    // The fold over the flat node list: node I reads the outputs its compile-time edges name; a value is
    // dropped after its last reader (the tape keeps what backward needs).
    std::array<variable, node_count> values;
    const detail::graph_run_view graph{facts::edges.data(), facts::arities.data(), facts::emits_layer.data(),
                                       facts::layers.data(), facts::last_use.data(), eval_nodes_.data(), values.data()};
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (detail::run_graph_node<Backend>(boost::hana::at_c<I>(modules_).module, static_cast<int>(I), graph, h, ctx), ...);
    }(std::make_index_sequence<node_count>{});
    variable y = std::move(values[node_count - 1]);
    return mixed ? ops::cast<Backend>(y, dtype::f32) : y;  // losses and their reductions stay in f32
  }

  // fp32 (the default) or bf16_mixed: bf16 activations, convolutions and linear layers on f32 master
  // weights and f32 batch-norm statistics, f32 logits (precision.hpp). Parameters are unchanged, so a
  // network can switch at any time and its checkpoints are the same either way.
  void set_precision(precision p) { precision_ = p; }
  precision current_precision() const { return precision_; }

  // Input sides (height or width) the topology turns into a valid final map: every stride and
  // transition fits and the readout gets the window it needs. The same arithmetic as the ops'.
  static constexpr bool accepts_side(std::int64_t side, readout r = readout::exact) {
    return side >= 1 && detail::graph_accepts_side<facts>(side, r);
  }
  static constexpr std::int64_t max_checked_side = 1 << 16;
  // The smallest accepted side (0 if none up to 65536). Searched at run time, once: as a constexpr
  // function (or any constant-initialisable expression) GCC evaluated the search (221 walks of the graph
  // for grcnn55) at compile time wherever it was called, seconds per network in every translation unit.
  static std::int64_t min_input_size() {
    static const std::int64_t min = smallest_accepted_side();
    return min;
  }
  // The same under another readout (searched per call).
  static std::int64_t min_input_size(readout r) { return r == readout::exact ? min_input_size() : smallest_accepted_side(r); }

  // How a fixed readout window (AvgPool2d(7) of the ImageNet variants, AvgPool2d(8) of the CIFAR ones)
  // reads the final map (nn/specs.hpp): exact (the default: only inputs giving a Pool x Pool map),
  // original (as the original code: AvgPool2d over the top-left window of a map of Pool to 2 Pool - 1
  // pixels) or global (the mean of any map). Input sizes are checked against it.
  void set_readout(readout r) {
    readout_ = r;
    visit_nodes([&]<class Node>(boost::hana::basic_type<Node>, auto& m) {
      if constexpr (requires { m.set_readout(r); }) m.set_readout(r);
    });
  }
  readout current_readout() const { return readout_; }

  // The top-level layer names in order (stem, layer1, ..., head).
  static std::vector<std::string> layer_names() { return {std::string(Layers::name)...}; }
  // Each top-level layer with the state_dict names it owns (a stem owns conv1, bn1, ...; a GRCL layer1.*).
  std::vector<std::pair<std::string, std::vector<std::string>>> layer_states() {
    std::vector<std::pair<std::string, std::vector<std::string>>> out;
    for (const auto& n : layer_names()) out.emplace_back(n, std::vector<std::string>{});
    visit_nodes([&]<class Node>(boost::hana::basic_type<Node>, auto& m) {
      state_list l;
      m.collect(l);
      for (auto& e : out)
        if (e.first == Node::layer.view())
          for (const auto& s : l) e.second.push_back(s.name);
    });
    return out;
  }
  // Layers that stay in evaluation mode (BN uses and keeps its running statistics) while the network
  // trains: staged fine-tuning leaves frozen layers exactly as they were. Unknown names are refused.
  void set_eval_layers(const std::set<std::string>& names) {
    const auto all = layer_names();
    for (const auto& n : names)
      GRCNN_CHECK(std::find(all.begin(), all.end(), n) != all.end(), error, "network: no top-level layer '", n, "'");
    eval_layers_ = names;
    for (std::size_t i = 0; i < node_count; ++i) eval_nodes_[i] = names.count(facts::layers[i].str()) != 0;
  }
  const std::set<std::string>& eval_layers() const { return eval_layers_; }

  // Synchronised batch norm (PyTorch's SyncBatchNorm): in training, every batch norm's statistics over
  // the batches of all ranks of `g` (not owned; nullptr: each rank's own batch, the default).
  void set_batch_norm_group(ops::batch_norm_group* g) { batch_norm_group_ = g; }
  ops::batch_norm_group* batch_norm_group() const { return batch_norm_group_; }
  void set_mode(mode m) { mode_ = m; }
  void train() { mode_ = mode::train; }
  void eval() { mode_ = mode::eval; }
  mode current_mode() const { return mode_; }

  // Every state_dict entry in PyTorch's order (shared tensors appear under each of their names).
  state_list state() {
    state_list out;
    boost::hana::unpack(modules_, [&](auto&... m) { (m.module.collect(out), ...); });
    return out;
  }
  // The learnable parameters, each once (shared weights are not repeated; fixed ones left out): what
  // an optimizer takes.
  std::vector<variable*> parameters() { return parameter_list(true); }
  // Every parameter's size, fixed ones included, as PyTorch's sum(p.numel() for p in model.parameters()).
  std::size_t parameter_count() { return count(parameter_list(false)); }
  // The learnable part of parameter_count() (equal to it unless the network has fixed parameters).
  std::size_t trainable_parameter_count() { return count(parameters()); }
  // Converts every floating parameter and buffer to `t` (f64 for the reference backend's checks).
  void to_dtype(dtype t) {
    for (auto& e : state()) {
      tensor& v = e.value();
      if (v.type() != dtype::i64 && v.type() != t) v = v.to_layout(layout::plain).to_dtype(t);
    }
  }
  // Moves every floating parameter and buffer to `d` (a GPU backend needs its network there); i64
  // counters (num_batches_tracked) stay on the host. Backend-specific weight formats become plain first.
  void to_device(device d) {
    for (auto& e : state()) {
      tensor& v = e.value();
      if (v.type() == dtype::i64 || v.where() == d) continue;  // already there: keep its adopted format
      if (v.memory_layout() == layout::opaque) v = v.to_layout(layout::plain);
      v = v.to_device(d);
    }
    zero_grad();
  }
  void zero_grad() {
    for (auto* p : parameter_list(false)) p->zero_grad();
  }

  // The run-time state a checkpoint keeps beside the tensors (the modules that have some, such as the
  // VOneBlock's noise counter), and its restoration; `where` names the checkpoint in errors.
  void save_run_state(run_state& s) const {
    boost::hana::unpack(modules_, [&](const auto&... m) { (save_state_of(m.module, s), ...); });
  }
  void load_run_state(const run_state& s, const std::string& where) {
    boost::hana::unpack(modules_, [&](auto&... m) { (load_state_of(m.module, s, where), ...); });
  }
  // Data-parallel training: this network is replica `rank` of `world` (modules with per-replica random
  // streams draw from their own).
  void set_replica(int rank, int world) {
    boost::hana::unpack(modules_, [&](auto&... m) { (replica_of(m.module, rank, world), ...); });
  }

  // The module of type M where exactly one node has it, e.g. net.module<nn::vone_module>() to fix the
  // VOneBlock's noise (a type held by several nodes does not compile).
  template <class M>
  M& module() {
    static_assert(count_modules<M> == 1, "grcnn network: module<M>() needs exactly one node with a module of type M");
    return boost::hana::at_c<modules_type::template index_of<M>>(modules_).module;
  }
  // How many graph nodes run a module of type M.
  template <class M>
  static constexpr int count_modules = modules_type::template count<M>;

  // Compile-time visitors: f(boost::hana::type<Spec>) for each top-level layer description, in order;
  // f(boost::hana::type<Node>, module&) for each node of the unrolled graph.
  template <class F>
  static void visit_layers(F&& f) {
    (f(boost::hana::type_c<Layers>), ...);
  }
  template <class F>
  void visit_nodes(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (f(boost::hana::type_c<typename modules_type::template node<I>>, boost::hana::at_c<I>(modules_).module), ...);
    }(std::make_index_sequence<node_count>{});
  }

  // A tap checked against the graph at compile time: net.tap<"layer2.iter_3.8">(f), or one call of a
  // per-iteration module, net.tap<"layer2.conv_g_r", 2>(f) (call index t - 1). A name the graph does not
  // have fails to compile naming the nearest valid names. f takes (const variable&, int step),
  // (const tensor&, int step) or (const tensor&); it is called in every forward until clear_taps().
  // Run-time names (a tap_registry passed to forward) keep working for the tools.
  template <static_name Name, int Step = -1, class F>
  void tap(F&& f) {
    static_assert(check_tap_name<facts, Name>());
    static_assert(Step < 0 || facts::has_tap(Name.view(), Step),
                  "grcnn tap: the tap exists, but not at this call index (only per-iteration modules such as conv_g_r "
                  "and <layer>.state have one per time step)");
    own_taps_.on_variable(Name.str(), [g = std::forward<F>(f)](const std::string&, int step, const variable& v) mutable {
      if (Step >= 0 && step != Step) return;
      if constexpr (std::is_invocable_v<decltype(g)&, const variable&, int>)
        g(v, step);
      else if constexpr (std::is_invocable_v<decltype(g)&, const tensor&, int>)
        g(v.value(), step);
      else
        g(v.value());
    });
  }
  void clear_taps() { own_taps_.clear(); }

 private:
  static std::int64_t smallest_accepted_side(readout r = readout::exact) {  // not constexpr: see min_input_size
    for (std::int64_t s = 1; s <= max_checked_side; ++s)
      if (accepts_side(s, r)) return s;
    return 0;
  }
  template <class M>
  static void save_state_of(const M& m, run_state& s) {
    if constexpr (requires { m.save_run_state(s); }) m.save_run_state(s);
  }
  template <class M>
  static void load_state_of(M& m, const run_state& s, const std::string& where) {
    if constexpr (requires { m.load_run_state(s, where); }) m.load_run_state(s, where);
  }
  template <class M>
  static void replica_of(M& m, int rank, int world) {
    if constexpr (requires { m.set_replica(rank, world); }) m.set_replica(rank, world);
  }

  // An input side the layers cannot take is refused up front, naming the minimum and the nearest
  // accepted sides, instead of failing deep inside some layer's op.
  void check_input_side(const char* which, std::int64_t side) const {
    const readout r = readout_;
    if (side <= max_checked_side && accepts_side(side, r)) return;
    const std::int64_t min = min_input_size(r);
    GRCNN_CHECK(min >= 1, shape_error, "network: this architecture accepts no input side up to ", max_checked_side);
    GRCNN_CHECK(side >= min, shape_error, "network: input ", which, " ", side, " is below this architecture's minimum of ", min);
    std::int64_t below = std::min(side, max_checked_side), above = below;
    while (below >= min && !accepts_side(below, r)) --below;
    while (above <= max_checked_side && !accepts_side(above, r)) ++above;
    const std::string nearest = above <= max_checked_side
                                    ? "sizes are " + std::to_string(below) + " and " + std::to_string(above)
                                    : "size is " + std::to_string(below);
    throw shape_error(::grcnn::detail::concat("network: input ", which, " ", side,
                                              " gives no valid final feature map in this architecture (its downsampling "
                                              "layers need even sizes, a fixed readout window one final size); the nearest "
                                              "accepted ", nearest,
                                              r == readout::exact ? " (set_readout(original or global), grcnn-infer's "
                                                                    "--readout, takes other final map sizes)"
                                                                  : ""));
  }
  network(int num_classes, initializer rng) : modules_(make_modules(check_classes(num_classes), rng)) {}
  static typename modules_type::tuple make_modules(int classes, initializer& rng) {
    graph_builder b(rng, classes);
    return modules_type::make(b);
  }
  static int check_classes(int classes) {
    GRCNN_CHECK(classes >= 1, shape_error, "network: the classifier needs at least one class, got ", classes);
    return classes;
  }

  std::vector<variable*> parameter_list(bool trainable_only) {
    std::vector<variable*> out;
    std::set<const void*> seen;
    for (auto& e : state())
      if ((trainable_only ? e.is_trainable() : e.is_parameter()) && seen.insert(e.parameter->cell().get()).second)
        out.push_back(e.parameter);
    return out;
  }
  static std::size_t count(const std::vector<variable*>& ps) {
    std::size_t n = 0;
    for (auto* p : ps) n += static_cast<std::size_t>(p->value().numel());
    return n;
  }

  typename modules_type::tuple modules_;
  mode mode_ = mode::train;
  ops::batch_norm_group* batch_norm_group_ = nullptr;
  std::set<std::string> eval_layers_;
  std::array<bool, node_count> eval_nodes_{};
  tap_registry own_taps_;
  precision precision_ = precision::fp32;
  readout readout_ = readout::exact;
};

}  // namespace grcnn::nn
