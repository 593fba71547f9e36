#pragma once
// A network built from a topology (a flat list of layer descriptions). One type serves training and
// evaluation: BN uses batch statistics in train mode and running statistics in eval mode. Parameters
// carry PyTorch's state_dict names in PyTorch's order.
#include <set>
#include <tuple>
#include <type_traits>

#include "grcnn/nn/grcl.hpp"
#include "grcnn/nn/stem_head.hpp"
#include "grcnn/nn/topology.hpp"
#include "grcnn/nn/vone_block.hpp"

namespace grcnn::nn {

enum class mode { train, eval };

namespace detail {
template <class Spec>
struct module_for;
template <int Out>
struct module_for<imagenet_stem<Out>> {
  using type = stem_module;
  static type make(int, initializer& rng) { return stem_module(true, Out, imagenet_stem<Out>::bn_momentum, rng); }
  // conv1 (7x7, stride 2, pad 3), maxpool (3, 2, 1), conv2 (3x3, pad 1): each (in - 1) / 2 + 1 or the same.
  static constexpr std::int64_t extent(std::int64_t in) { return in < 1 ? 0 : ((in - 1) / 2) / 2 + 1; }
};
template <int Out, int Stride>
struct module_for<cifar_stem<Out, Stride>> {
  using type = stem_module;
  static type make(int, initializer& rng) { return stem_module(false, Out, 0.1, rng, Stride); }
  static constexpr std::int64_t extent(std::int64_t in) { return in < 1 ? 0 : (in - 1) / Stride + 1; }  // 3x3, pad 1
};
template <vone_options O>
struct module_for<vone_stem<O>> {
  using type = vone_module;
  static type make(int, initializer& rng) { return vone_module(O, rng); }
  static constexpr std::int64_t extent(std::int64_t in) { return in < 1 ? 0 : (in - 1) / O.stride + 1; }  // odd k, pad k/2
};
template <fixed_string Name, grcl_options O>
struct module_for<grcl<Name, O>> {
  using type = grcl_module;
  static type make(int, initializer& rng) { return grcl_module(O, rng); }
  // The transition's two branches must agree: avgpool(2) gives in / 2, the stride-2 3x3 (in - 1) / 2 + 1,
  // equal for even sizes only.
  static constexpr std::int64_t extent(std::int64_t in) {
    if (!O.downsample) return in;
    return in >= 2 && in % 2 == 0 ? in / 2 : 0;
  }
};
template <int In, int Pool, double Momentum>
struct module_for<classifier_head<In, Pool, Momentum>> {
  using type = head_module;
  static type make(int classes, initializer& rng) { return head_module(In, Pool, classes, Momentum, rng); }
  static constexpr std::int64_t extent(std::int64_t in) { return Pool == 0 ? (in >= 1 ? 1 : 0) : (in == Pool ? 1 : 0); }
};
}  // namespace detail

template <class Topology, class Backend = backends::default_backend>
class network;

template <class... Layers, class Backend>
class network<topology<Layers...>, Backend> {
  static_assert(topology<Layers...>::checked);

 public:
  using topology_type = topology<Layers...>;
  using backend = Backend;

  explicit network(int num_classes = 1000, std::uint64_t seed = 0) : network(num_classes, initializer(seed)) {}

  variable forward(const variable& x, const tap_registry* taps = nullptr) {
    GRCNN_CHECK(x.value().rank() == 4 && x.dims()[1] == 3, shape_error, "network: input must be [N, 3, H, W], got ",
                x.value().describe());
    check_input_side("height", x.dims()[2]);
    check_input_side("width", x.dims()[3]);
    forward_context ctx{mode_ == mode::train, taps, batch_norm_group_};
    const bool mixed = precision_ != precision::fp32;
    variable h = x;
    if (mixed) {
      // The backend may run mixed precision in another activation order (CUDA: channels-last for bf16);
      // an input that needs no gradient is reordered here, once, before the cast.
      const layout want = backends::preferred_activations<Backend>(activation_dtype(precision_));
      if (!x.requires_grad() && x.value().memory_layout() != want) h = variable(x.value().to_layout(want));
      h = ops::cast<Backend>(h, activation_dtype(precision_));
    }
    auto run = [&]<class Spec>(boost::hana::basic_type<Spec>, auto& m) {
      forward_context c = ctx;
      c.training = ctx.training && !eval_layers_.count(std::string(Spec::name));
      h = run_module<Spec>(m, h, c);
    };
    std::apply([&](auto&... m) { (run(boost::hana::type_c<Layers>, m), ...); }, modules_);
    return mixed ? ops::cast<Backend>(h, dtype::f32) : h;  // losses and their reductions stay in f32
  }

  // fp32 (the default) or bf16_mixed: bf16 activations, convolutions and linear layers on f32 master
  // weights and f32 batch-norm statistics, f32 logits (precision.hpp). Parameters are unchanged, so a
  // network can switch at any time and its checkpoints are the same either way.
  void set_precision(precision p) { precision_ = p; }
  precision current_precision() const { return precision_; }

  // Input sides (height or width) the topology turns into a valid final map: every stride and
  // transition fits and the readout gets the window it needs. The same arithmetic as the ops'.
  static constexpr bool accepts_side(std::int64_t side) {
    std::int64_t e = side;
    ((e = e >= 1 ? detail::module_for<Layers>::extent(e) : 0), ...);
    return e >= 1;
  }
  static constexpr std::int64_t max_checked_side = 1 << 16;
  // The smallest accepted side (0 if none up to 65536).
  static constexpr std::int64_t min_input_size() {
    for (std::int64_t s = 1; s <= max_checked_side; ++s)
      if (accepts_side(s)) return s;
    return 0;
  }

  // The top-level layer names in order (stem, layer1, ..., head).
  static std::vector<std::string> layer_names() { return {std::string(Layers::name)...}; }
  // Each top-level layer with the state_dict names it owns (a stem owns conv1, bn1, ...; a GRCL layer1.*).
  std::vector<std::pair<std::string, std::vector<std::string>>> layer_states() {
    std::vector<std::pair<std::string, std::vector<std::string>>> out;
    auto one = [&]<class Spec>(boost::hana::basic_type<Spec>, auto& m) {
      state_list l;
      collect_module<Spec>(m, l);
      std::vector<std::string> names;
      for (const auto& e : l) names.push_back(e.name);
      out.emplace_back(std::string(Spec::name), std::move(names));
    };
    std::apply([&](auto&... m) { (one(boost::hana::type_c<Layers>, m), ...); }, modules_);
    return out;
  }
  // Layers that stay in evaluation mode (BN uses and keeps its running statistics) while the network
  // trains: staged fine-tuning leaves frozen layers exactly as they were. Unknown names are refused.
  void set_eval_layers(const std::set<std::string>& names) {
    const auto all = layer_names();
    for (const auto& n : names)
      GRCNN_CHECK(std::find(all.begin(), all.end(), n) != all.end(), error, "network: no top-level layer '", n, "'");
    eval_layers_ = names;
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
    std::apply([&](auto&... m) { (collect_module<Layers>(m, out), ...); }, modules_);
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

  // The top-level module of type M where exactly one layer has it, e.g. net.module<nn::vone_module>()
  // to fix the VOneBlock's noise (a type held by several layers does not compile).
  template <class M>
  M& module() {
    return std::get<M>(modules_);
  }
  // How many top-level layers run a module of type M.
  template <class M>
  static constexpr int count_modules = (0 + ... + int(std::is_same_v<typename detail::module_for<Layers>::type, M>));

  // Compile-time visitor: f(boost::hana::type<Spec>, module&) for each layer, in order.
  template <class F>
  void visit_layers(F&& f) {
    std::apply([&](auto&... m) { (f(boost::hana::type_c<Layers>, m), ...); }, modules_);
  }

 private:
  // An input side the layers cannot take is refused up front, naming the minimum and the nearest
  // accepted sides, instead of failing deep inside some layer's op.
  static void check_input_side(const char* which, std::int64_t side) {
    if (side <= max_checked_side && accepts_side(side)) return;
    const std::int64_t min = min_input_size();
    GRCNN_CHECK(min >= 1, shape_error, "network: this architecture accepts no input side up to ", max_checked_side);
    GRCNN_CHECK(side >= min, shape_error, "network: input ", which, " ", side, " is below this architecture's minimum of ", min);
    std::int64_t below = std::min(side, max_checked_side), above = below;
    while (below >= min && !accepts_side(below)) --below;
    while (above <= max_checked_side && !accepts_side(above)) ++above;
    const std::string nearest = above <= max_checked_side
                                    ? "sizes are " + std::to_string(below) + " and " + std::to_string(above)
                                    : "size is " + std::to_string(below);
    throw shape_error(::grcnn::detail::concat("network: input ", which, " ", side,
                                              " gives no valid final feature map in this architecture (its downsampling "
                                              "layers need even sizes, a fixed readout window one final size); the nearest "
                                              "accepted ", nearest));
  }
  // Braces: the layers are built (and draw from the seeded stream) in order, on every compiler.
  network(int num_classes, initializer rng)
      : modules_{detail::module_for<Layers>::make(check_classes(num_classes), rng)...} {}
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

  template <class Spec, class M>
  static variable run_module(M& m, const variable& h, const forward_context& ctx) {
    if constexpr (std::is_same_v<M, grcl_module>) {
      const variable y = m.template forward<Backend>(h, ctx, std::string(Spec::name));
      if (ctx.tapping()) ctx.taps->emit(std::string(Spec::name), 0, y.value());
      return y;
    } else {
      return m.template forward<Backend>(h, ctx);
    }
  }
  template <class Spec, class M>
  static void collect_module(M& m, state_list& out) {
    if constexpr (std::is_same_v<M, grcl_module>)
      m.collect(std::string(Spec::name), out);
    else
      m.collect(out);
  }

  std::tuple<typename detail::module_for<Layers>::type...> modules_;
  mode mode_ = mode::train;
  ops::batch_norm_group* batch_norm_group_ = nullptr;
  std::set<std::string> eval_layers_;
  precision precision_ = precision::fp32;
};

}  // namespace grcnn::nn
