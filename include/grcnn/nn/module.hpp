#pragma once
// What every run-time module shares: its state entries (PyTorch names, in registration order), the
// forward context (train/eval mode and the optional activation taps), the initialisers the original
// code uses, and the contract every graph node's module keeps (graph_module below).
#include <array>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "grcnn/autograd/tape.hpp"
#include "grcnn/ops/batch_norm_group.hpp"

// On graph modules' constructors, forwards and collects: one copy per module kind, called by every node
// of that kind. Inlined into each of a graph's nodes (44 in grcnn109), they multiplied the code every
// translation unit that builds a network compiles; they are coarse (whole convolutions), so a call costs
// nothing measurable.
#if defined(__GNUC__) || defined(__clang__)
#define GRCNN_NOINLINE [[gnu::noinline]]
#else
#define GRCNN_NOINLINE
#endif

namespace grcnn::nn {

using autograd::variable;

// One state_dict entry: a parameter or a buffer (running statistics, counters). A fixed parameter
// (trainable = false: the VOneBlock's Gabor banks, PyTorch's requires_grad=False) is saved, loaded
// and counted like any other, but no optimizer ever sees it.
struct state_entry {
  std::string name;
  variable* parameter = nullptr;  // set for parameters
  tensor* buffer = nullptr;       // set for buffers
  bool trainable = true;          // for parameters: false for fixed ones
  bool is_parameter() const { return parameter != nullptr; }
  bool is_trainable() const { return parameter != nullptr && trainable; }
  tensor& value() const { return parameter ? parameter->value() : *buffer; }
};
using state_list = std::vector<state_entry>;

inline std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

// Run-time activation taps: callbacks by PyTorch module name. A module run once per iteration (a
// shared conv_g_r) reports each call with its step index (0-based); others report step 0.
class tap_registry {
 public:
  using callback = std::function<void(const std::string& name, int step, const tensor& value)>;
  // A tap that gets the variable itself (its gradient can be asked for: d(unit)/d(input) for receptive
  // fields, feature visualisation).
  using variable_callback = std::function<void(const std::string& name, int step, const variable& value)>;
  void on(const std::string& name, callback f) {
    taps_[name].push_back([f = std::move(f)](const std::string& n, int step, const variable& v) { f(n, step, v.value()); });
  }
  void on_variable(const std::string& name, variable_callback f) { taps_[name].push_back(std::move(f)); }
  bool wants(const std::string& name) const { return taps_.count(name) != 0; }
  bool empty() const { return taps_.empty(); }
  void emit(const std::string& name, int step, const variable& value) const {
    auto it = taps_.find(name);
    if (it == taps_.end()) return;
    for (const auto& f : it->second) f(name, step, value);
  }
  void clear() { taps_.clear(); }
  std::vector<std::string> names() const {
    std::vector<std::string> r;
    for (const auto& [k, v] : taps_) r.push_back(k);
    return r;
  }

 private:
  std::map<std::string, std::vector<variable_callback>> taps_;
};

struct forward_context {
  bool training = true;
  const tap_registry* taps = nullptr;
  // Where set, training batch norms take their statistics over every rank of the group (--sync-bn).
  ops::batch_norm_group* batch_norm_group = nullptr;
  // The network's own taps (network::tap), consulted beside `taps`.
  const tap_registry* own_taps = nullptr;
  bool tapping() const { return (taps && !taps->empty()) || (own_taps && !own_taps->empty()); }
  // Reports `v` under prefix.name when tapped; builds the name only while some tap is registered.
  void emit(const std::string& prefix, const char* name, const variable& v, int step = 0) const {
    if (tapping()) emit_as(join(prefix, name), v, step);
  }
  void emit_as(const std::string& full_name, const variable& v, int step = 0) const {
    if (taps) taps->emit(full_name, step, v);
    if (own_taps) own_taps->emit(full_name, step, v);
  }
  bool wants(const std::string& prefix, const char* name) const {
    if (!tapping()) return false;
    const std::string n = join(prefix, name);
    return (taps && taps->wants(n)) || (own_taps && own_taps->wants(n));
  }
};

// A graph node's inputs (nn/graph.hpp gives each node the outputs of the nodes its edges name). One
// variable converts implicitly: a single-input module is called with its input as it is.
class node_inputs {
 public:
  node_inputs(const variable& x) : values_{&x}, size_(1) {}  // NOLINT: implicit by design
  node_inputs(std::initializer_list<const variable*> values) {
    for (const variable* v : values) values_[static_cast<std::size_t>(size_++)] = v;
  }
  const variable& operator[](int i) const { return *values_[static_cast<std::size_t>(i)]; }
  int size() const { return size_; }

 private:
  std::array<const variable*, 4> values_{};
  int size_ = 0;
};

// The run-time state a checkpoint keeps beside the tensors (key -> value): a module's counters, such as
// the VOneBlock's noise draws.
using run_state = std::map<std::string, std::string>;

// The contract of every graph node's module (stems, the GRCL's feed-forward, gate, iteration and
// transition nodes, the head): it holds its tensors, names them (collect: PyTorch's state_dict names in
// registration order, the names fixed when the graph built it), and computes its output from its
// inputs on a backend. Optional capabilities, found by the network where a module has them:
//   save_run_state(run_state&) const / load_run_state(const run_state&, const std::string& where)
//   set_replica(int rank, int world)   (data-parallel training: per-rank random streams)
template <class M>
concept graph_module = requires(M& m, state_list& out) { m.collect(out); };
template <class M, class B>
concept graph_module_on = graph_module<M> && requires(M& m, const node_inputs& in, const forward_context& ctx) {
  { m.template forward<B>(in, ctx) } -> std::same_as<variable>;
};

// Initialisers of the original code (distributions as PyTorch's; the random streams are our own).
struct initializer {
  std::mt19937_64 rng;
  explicit initializer(std::uint64_t seed) : rng(seed) {}
  tensor normal(const shape& s, double stddev) {
    std::normal_distribution<double> d(0.0, stddev);
    std::vector<float> v(static_cast<std::size_t>(s.numel()));
    for (auto& e : v) e = static_cast<float>(d(rng));
    return tensor::from_values(s, v);
  }
  tensor uniform(const shape& s, double bound) {
    std::uniform_real_distribution<double> d(-bound, bound);
    std::vector<float> v(static_cast<std::size_t>(s.numel()));
    for (auto& e : v) e = static_cast<float>(d(rng));
    return tensor::from_values(s, v);
  }
  // kaiming_normal_ (fan_in, gain sqrt(2)).
  tensor kaiming_normal(const shape& s, std::int64_t fan_in) { return normal(s, std::sqrt(2.0 / static_cast<double>(fan_in))); }
  // PyTorch's default conv/linear weight init, kaiming_uniform_(a = sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  tensor default_uniform(const shape& s, std::int64_t fan_in) { return uniform(s, 1.0 / std::sqrt(static_cast<double>(fan_in))); }
};

}  // namespace grcnn::nn
