#pragma once
// What every run-time module shares: its state entries (PyTorch names, in registration order), the
// forward context (train/eval mode and the optional activation taps), and the initialisers the
// original code uses.
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "grcnn/autograd/tape.hpp"
#include "grcnn/ops/batch_norm_group.hpp"

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
  void on(const std::string& name, callback f) { taps_[name].push_back(std::move(f)); }
  bool wants(const std::string& name) const { return taps_.count(name) != 0; }
  bool empty() const { return taps_.empty(); }
  void emit(const std::string& name, int step, const tensor& value) const {
    auto it = taps_.find(name);
    if (it == taps_.end()) return;
    for (const auto& f : it->second) f(name, step, value);
  }
  std::vector<std::string> names() const {
    std::vector<std::string> r;
    for (const auto& [k, v] : taps_) r.push_back(k);
    return r;
  }

 private:
  std::map<std::string, std::vector<callback>> taps_;
};

struct forward_context {
  bool training = true;
  const tap_registry* taps = nullptr;
  // Where set, training batch norms take their statistics over every rank of the group (--sync-bn).
  ops::batch_norm_group* batch_norm_group = nullptr;
  bool tapping() const { return taps && !taps->empty(); }
  // Reports `v` under prefix.name when tapped; builds the name only while some tap is registered.
  void emit(const std::string& prefix, const char* name, const variable& v, int step = 0) const {
    if (tapping()) taps->emit(join(prefix, name), step, v.value());
  }
  bool wants(const std::string& prefix, const char* name) const { return tapping() && taps->wants(join(prefix, name)); }
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
