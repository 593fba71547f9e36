#pragma once
// The optimizer interface shared by SGD and AdamW: parameter groups with their own hyper-parameters
// (as torch.optim's param_groups), frozen parameters, and a state that round-trips through a
// checkpoint bit for bit. Updates run on the weights' own storage and format (blocked oneDNN weights
// included), in the weights' precision (f32 or f64).
#include <algorithm>
#include <cmath>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "grcnn/autograd/variable.hpp"
#include "grcnn/io/safetensors.hpp"
#include "grcnn/io/state_dict.hpp"

namespace grcnn::train {

using autograd::variable;

// One parameter group. Fields an optimizer does not use are ignored (SGD reads lr, weight_decay,
// momentum, dampening, nesterov; AdamW reads lr, weight_decay, beta1, beta2, eps).
struct param_group {
  std::string name;
  std::vector<variable*> params;
  double lr = 0.1;
  double weight_decay = 0.0;
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double initial_lr = -1.0;  // the lr a schedule scales; set from lr when the optimizer is built
};

// Stops gradients for these parameters: they keep their values and are skipped by every optimizer
// (staged fine-tuning trains one GRCL while the rest of the network stays fixed).
inline void freeze(const std::vector<variable*>& params, bool frozen = true) {
  for (auto* p : params) {
    p->set_requires_grad(!frozen);
    if (frozen) p->zero_grad();
  }
}

class optimizer {
 public:
  explicit optimizer(std::vector<param_group> groups) : groups_(std::move(groups)) {
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      auto& grp = groups_[g];
      GRCNN_CHECK(grp.lr >= 0 && grp.weight_decay >= 0 && grp.momentum >= 0 && grp.dampening >= 0 && grp.eps >= 0,
                  error, "optimizer: group ", g, " (", grp.name, ") has a negative lr, weight decay, momentum, dampening or eps");
      GRCNN_CHECK(grp.beta1 >= 0 && grp.beta1 < 1 && grp.beta2 >= 0 && grp.beta2 < 1, error, "optimizer: group ", g,
                  " (", grp.name, ") betas must lie in [0, 1), got ", grp.beta1, ", ", grp.beta2);
      for (auto* p : grp.params)
        GRCNN_CHECK(p && p->defined() && (p->value().type() == dtype::f32 || p->value().type() == dtype::f64),
                    dtype_error, "optimizer: group ", g, " holds a parameter that is not an f32 or f64 tensor");
      if (grp.initial_lr < 0) grp.initial_lr = grp.lr;
    }
    std::set<const void*> seen;
    for (std::size_t g = 0; g < groups_.size(); ++g)
      for (auto* p : groups_[g].params)
        GRCNN_CHECK(seen.insert(p->cell().get()).second, error, "optimizer: parameter '", p->name(), "' appears twice (group ", g,
                    ", ", groups_[g].name, "); each parameter belongs to one group");
  }
  virtual ~optimizer() = default;
  optimizer(const optimizer&) = delete;
  optimizer& operator=(const optimizer&) = delete;

  virtual const char* kind() const = 0;
  // One update of every parameter that has a gradient (frozen ones have none); gradients stay in place.
  // A group's parameters are handed over together, so a device updates them in a few launches.
  void step() {
    std::vector<update_item> items;
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      items.clear();
      for (std::size_t i = 0; i < groups_[g].params.size(); ++i) {
        tensor grad = gradient_of(*groups_[g].params[i]);
        if (grad.defined()) items.push_back({i, &groups_[g].params[i]->value(), std::move(grad)});
      }
      update_group(g, items);
    }
  }
  void zero_grad() {
    for (auto& g : groups_)
      for (auto* p : g.params) p->zero_grad();
  }

  std::vector<param_group>& groups() { return groups_; }
  const std::vector<param_group>& groups() const { return groups_; }
  // Sets every group's lr to factor * its initial lr (what a schedule does each step).
  void scale_lr(double factor) {
    for (auto& g : groups_) g.lr = g.initial_lr * factor;
  }

  // Checkpointing: per-parameter state as tensors named "<prefix>.<group>.<index>.<slot>" (plain
  // layout), scalar state in metadata. Loading checks that the groups hold the same shapes.
  void save_state(io::tensor_dict& d, const std::string& prefix) const {
    d.metadata[prefix + ".kind"] = kind();
    d.metadata[prefix + ".groups"] = std::to_string(groups_.size());
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      d.metadata[prefix + "." + std::to_string(g) + ".size"] = std::to_string(groups_[g].params.size());
      for (std::size_t i = 0; i < groups_[g].params.size(); ++i) save_slots(d, key(prefix, g, i), g, i);
    }
    save_scalars(d, prefix);
  }
  void load_state(const io::tensor_dict& d, const std::string& prefix) {
    const auto kind_it = d.metadata.find(prefix + ".kind");
    GRCNN_CHECK(kind_it != d.metadata.end() && kind_it->second == kind(), io_error, "optimizer state: the checkpoint holds ",
                kind_it == d.metadata.end() ? std::string("no optimizer") : "a " + kind_it->second + " optimizer",
                ", this run uses ", kind());
    const auto n_groups = d.metadata.find(prefix + ".groups");
    GRCNN_CHECK(n_groups != d.metadata.end() && n_groups->second == std::to_string(groups_.size()), io_error,
                "optimizer state: this run has ", groups_.size(), " parameter group(s), the checkpoint ",
                n_groups == d.metadata.end() ? std::string("does not say how many") : n_groups->second);
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      const auto it = d.metadata.find(prefix + "." + std::to_string(g) + ".size");
      GRCNN_CHECK(it != d.metadata.end() && it->second == std::to_string(groups_[g].params.size()), io_error,
                  "optimizer state: group ", g, " (", groups_[g].name, ") has ", groups_[g].params.size(),
                  " parameters here but ", it == d.metadata.end() ? std::string("none") : it->second, " in the checkpoint");
    }
    // Non-finite momentum or Adam moments would turn the first step's update into NaN weights: refused,
    // like non-finite weights, before any state changes.
    for (const auto& [name, t] : d.entries())
      if (name.rfind(prefix + ".", 0) == 0)
        if (const auto bad = io::detail::find_nonfinite(t))
          throw io_error("optimizer state" + (d.origin_.empty() ? std::string() : " from '" + d.origin_ + "'") + ": " +
                         io::detail::nonfinite_problem(name, t, *bad));
    for (std::size_t g = 0; g < groups_.size(); ++g)
      for (std::size_t i = 0; i < groups_[g].params.size(); ++i) load_slots(d, key(prefix, g, i), g, i);
    load_scalars(d, prefix);
  }

 protected:
  static std::string key(const std::string& prefix, std::size_t g, std::size_t i) {
    return prefix + "." + std::to_string(g) + "." + std::to_string(i);
  }
  // Parameter i of group g: its weight and its gradient (in the weight's format and dtype).
  struct update_item {
    std::size_t index;
    tensor* w;
    tensor grad;
  };
  // Updates the group's parameters that have gradients; by default one at a time through update().
  virtual void update_group(std::size_t g, std::span<update_item> items) {
    for (auto& it : items) update(g, it.index, *it.w, it.grad);
  }
  // Updates parameter i of group g (weight w, gradient in w's format and dtype).
  virtual void update(std::size_t g, std::size_t i, tensor& w, const tensor& grad) = 0;
  // The device parameters among items, by device (a group may span several), in item order; the rest
  // go to update() one at a time. Device parameters must be f32: checked for the whole group before
  // anything is updated (a refused group leaves every tensor and its state as they were).
  template <class OnDevice>
  void split_by_device(std::size_t g, std::span<update_item> items, OnDevice&& on_device) {
    std::vector<std::pair<device, std::vector<update_item*>>> devices;
    for (auto& it : items) {
      if (it.w->on_host()) continue;
      GRCNN_CHECK(it.w->type() == dtype::f32, dtype_error, kind(), ": device parameters must be f32, got ",
                  it.w->describe());
      auto d = std::find_if(devices.begin(), devices.end(), [&](const auto& e) { return e.first == it.w->where(); });
      if (d == devices.end()) d = devices.insert(devices.end(), {it.w->where(), {}});
      d->second.push_back(&it);
    }
    for (auto& it : items)
      if (it.w->on_host()) update(g, it.index, *it.w, it.grad);
    for (auto& [dev, list] : devices) on_device(dev, list);
  }
  virtual void save_slots(io::tensor_dict& d, const std::string& key, std::size_t g, std::size_t i) const = 0;
  virtual void load_slots(const io::tensor_dict& d, const std::string& key, std::size_t g, std::size_t i) = 0;
  virtual void save_scalars(io::tensor_dict&, const std::string&) const {}
  virtual void load_scalars(const io::tensor_dict&, const std::string&) {}

  // The gradient of p in p's own format and dtype, or an undefined tensor when p has none.
  static tensor gradient_of(const variable& p) {
    if (!p.requires_grad() || !p.grad().defined()) return {};
    const tensor& w = p.value();
    tensor g = p.grad();
    GRCNN_CHECK(g.type() == w.type() && g.dims() == w.dims(), dtype_error, "optimizer: gradient ", g.describe(),
                " of parameter ", p.name(), " does not match its weight ", w.describe());
    if (g.where() != w.where()) g = g.to_device(w.where());
    if (!g.same_format(w)) g = w.memory_layout() == layout::opaque ? g.to_format(w.format()) : g.to_layout(w.memory_layout());
    return g;
  }
  // Brings a state buffer to its weight's format: a layer may re-format its weight for the backend
  // after the state was created or loaded (blocked formats can be padded, so the sizes differ).
  static void match_format(tensor& state, const tensor& w) {
    if (!state.defined()) return;
    if (state.where() != w.where()) state = state.to_device(w.where());
    if (state.same_format(w)) return;
    state = w.memory_layout() == layout::opaque ? state.to_format(w.format()) : state.to_layout(w.memory_layout());
  }
  // Stored plain; loaded back into the weight's format (a pure permutation, so bitwise).
  static void put(io::tensor_dict& d, const std::string& name, const tensor& t) {
    if (t.defined()) d.add(name, t.memory_layout() == layout::plain ? t : t.to_layout(layout::plain));
  }
  static tensor take(const io::tensor_dict& d, const std::string& name, const tensor& like) {
    if (!d.contains(name)) return {};
    const tensor& t = d.at(name);
    GRCNN_CHECK(t.dims() == like.dims() && t.type() == like.type(), io_error, "optimizer state: ", name, " is ",
                t.describe(), ", the parameter is ", like.describe());
    if (like.memory_layout() == layout::opaque) return t.to_format(like.format());
    return like.memory_layout() == t.memory_layout() ? t.clone() : t.to_layout(like.memory_layout());
  }

  std::vector<param_group> groups_;
};

}  // namespace grcnn::train
