#pragma once
// The tape: forward ops append nodes; backward() walks them in reverse, accumulating (+=) into the
// gradient cells of the inputs. A node carries an opaque payload (a backend's saved state), which the
// tape only owns and frees: it never looks inside. Saved tensors and payloads are released as soon as
// their node's backward has run.
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "grcnn/autograd/variable.hpp"
#include "grcnn/core/tensor_math.hpp"

namespace grcnn::autograd {

// Whatever a backend needs to keep from forward to backward (descriptors, workspaces, statistics).
struct payload {
  virtual ~payload() = default;
};

struct node;
// Given the output gradients (undefined where none arrived), write input gradients into in_grads
// (leave undefined where an input needs none). For an input the node declares in adds_into,
// in_grads[i] may arrive holding the input's gradient so far (a buffer nothing else holds): the backward
// may add its contribution into that buffer and leave in_grads[i] as it is (one pass where a fresh
// gradient and the tape's addition take three), or replace in_grads[i] with its contribution alone.
using backward_fn = std::function<void(node&, std::span<const tensor> out_grads, std::span<tensor> in_grads)>;

struct node {
  std::string_view op;
  std::vector<std::shared_ptr<grad_cell>> inputs;   // null where the input needs no gradient
  std::vector<std::shared_ptr<grad_cell>> outputs;
  std::vector<tensor> saved;
  std::unique_ptr<payload> state;
  backward_fn backward;
  unsigned adds_into = 0;  // bit i: the backward can add into input i's gradient (see backward_fn)

  bool needs_grad(std::size_t input) const { return input < inputs.size() && inputs[input]; }
};

// Called during backward when a leaf's gradient is final: the earliest-recorded node that uses the leaf
// has run its backward, so nothing adds to it any more (a weight shared across time steps is final only
// after its first use's backward). The gradient may be undefined (the leaf's uses received none).
// Data-parallel training starts reducing a gradient bucket from here while backward goes on.
using gradient_ready_fn = std::function<void(grad_cell&)>;

class tape {
 public:
  void record(node&& n) { nodes_.push_back(std::move(n)); }
  std::size_t size() const { return nodes_.size(); }
  void clear() { nodes_.clear(); }  // keeps capacity: the next step reuses it
  // The op names of the recorded nodes, in recording order (coverage listings, diagnostics).
  std::vector<std::string_view> recorded_ops() const {
    std::vector<std::string_view> out;
    out.reserve(nodes_.size());
    for (const node& n : nodes_) out.push_back(n.op);
    return out;
  }

  // Back-propagates from `root` with seed gradient `seed` (ones for a scalar loss when undefined).
  void backward(const variable& root, tensor seed = {}, const gradient_ready_fn& ready = {}) {
    GRCNN_CHECK(root.requires_grad(), error,
                "backward: the root does not require grad (no parameter or input on its path requires grad)");
    if (!seed.defined()) {
      seed = tensor::full(root.dims(), 1.0, root.value().type(), layout::plain, root.value().where());
    }
    GRCNN_CHECK(seed.dims() == root.dims(), shape_error, "backward: seed ", seed.describe(), " for root ",
                root.value().describe());
    seed = seed.to_device(root.value().where());
    if (!root.cell()->leaf) {
      bool recorded = false;
      for (const node& n : nodes_)
        for (const auto& o : n.outputs) recorded = recorded || o == root.cell();
      GRCNN_CHECK(recorded, error,
                  "backward: the graph that produced this root is no longer on the tape (backward already ran "
                  "for this forward pass, or it was recorded on another thread)");
    }
    // Whatever happens below (an error in a node's backward), the tape ends empty and holds nothing.
    struct release_on_exit {
      tape& t;
      ~release_on_exit() { t.release(); }
    } guard{*this};
    accumulate(*root.cell(), seed);
    // For `ready`: each leaf's earliest use (its last in backward order).
    std::unordered_map<const grad_cell*, std::size_t> first_use;
    if (ready)
      for (std::size_t k = nodes_.size(); k-- > 0;)
        for (const auto& in : nodes_[k].inputs)
          if (in && in->leaf) first_use[in.get()] = k;
    std::vector<tensor> out_grads, in_grads;
    for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) {
      node& n = *it;
      out_grads.assign(n.outputs.size(), tensor());
      bool any = false;
      for (std::size_t i = 0; i < n.outputs.size(); ++i) {
        out_grads[i] = n.outputs[i]->grad;
        any = any || out_grads[i].defined();
      }
      if (any) {
        in_grads.assign(n.inputs.size(), tensor());
        const unsigned handed = hand_over_gradients(n, in_grads);
        n.backward(n, out_grads, in_grads);
        for (std::size_t i = 0; i < n.inputs.size(); ++i) {
          if (!n.inputs[i] || !in_grads[i].defined()) continue;
          const bool added = (handed >> i & 1u) && in_grads[i].raw() == n.inputs[i]->grad.raw();
          if (!added) accumulate(*n.inputs[i], std::move(in_grads[i]));
        }
      }
      for (auto& o : n.outputs)
        if (!o->leaf) o->grad = tensor();
      n.saved.clear();
      n.state.reset();
      n.backward = nullptr;
      if (ready) {
        const std::size_t k = static_cast<std::size_t>(nodes_.rend() - it) - 1;
        for (const auto& in : n.inputs) {
          if (!in || !in->leaf) continue;
          const auto f = first_use.find(in.get());
          if (f == first_use.end() || f->second != k) continue;
          first_use.erase(f);  // once, even when the node takes the leaf twice
          ready(*in);
        }
      }
    }
  }

 private:
  // Frees every node's saved tensors, payload and non-leaf output gradients, and empties the tape.
  void release() {
    for (node& n : nodes_)
      for (auto& o : n.outputs)
        if (!o->leaf) o->grad = tensor();
    nodes_.clear();
  }

  // Puts into in_grads the gradients so far of the inputs the node can add into, where no other handle
  // shares their buffer and the input appears once in the node; returns those inputs as bits.
  static unsigned hand_over_gradients(const node& n, std::vector<tensor>& in_grads) {
    unsigned handed = 0;
    for (std::size_t i = 0; i < n.inputs.size() && i < 32; ++i) {
      if (!(n.adds_into >> i & 1u) || !n.inputs[i] || !n.inputs[i]->grad.defined() ||
          n.inputs[i]->grad.use_count() != 1)
        continue;
      bool repeated = false;
      for (std::size_t j = 0; j < n.inputs.size(); ++j) repeated = repeated || (j != i && n.inputs[j] == n.inputs[i]);
      if (repeated) continue;
      in_grads[i] = n.inputs[i]->grad;
      handed |= 1u << i;
    }
    return handed;
  }

  static void accumulate(grad_cell& cell, tensor g) {
    GRCNN_CHECK(!cell.grad.defined() || cell.grad.dims() == g.dims(), shape_error, "backward: gradient ",
                g.describe(), " for ", cell.name.empty() ? "a variable" : cell.name, " holding ",
                cell.grad.describe());
    if (!cell.grad.defined()) {
      cell.grad = std::move(g);
    } else if (cell.grad.use_count() == 1) {
      add_inplace(cell.grad, g);
    } else {  // the buffer is shared with another gradient: never write through it
      tensor sum = cell.grad.clone();
      add_inplace(sum, g);
      cell.grad = std::move(sum);
    }
  }
  std::vector<node> nodes_;
};

inline tape& current_tape() {
  thread_local tape t;
  return t;
}

inline bool& grad_mode() {
  thread_local bool enabled = true;
  return enabled;
}
inline bool grad_enabled() { return grad_mode(); }

// Nothing is recorded while a no_grad_guard lives (evaluation, optimizer updates).
class no_grad_guard {
 public:
  no_grad_guard() : previous_(grad_mode()) { grad_mode() = false; }
  ~no_grad_guard() { grad_mode() = previous_; }
  no_grad_guard(const no_grad_guard&) = delete;
  no_grad_guard& operator=(const no_grad_guard&) = delete;

 private:
  bool previous_;
};

inline void backward(const variable& root, tensor seed = {}, const gradient_ready_fn& ready = {}) {
  current_tape().backward(root, std::move(seed), ready);
}

// True when an op over these inputs must be recorded.
inline bool should_record(std::initializer_list<const variable*> inputs) {
  if (!grad_enabled()) return false;
  for (const variable* v : inputs)
    if (v && v->defined() && v->requires_grad()) return true;
  return false;
}

// The public way to append an op to the tape, used by every built-in op and by user-defined ones.
// `outputs` must be fresh results (variable::result); `inputs` may contain undefined variables.
// adds_into: bit i set when the backward can add into input i's gradient (see backward_fn).
inline void record_op(std::string_view op, std::span<const variable* const> inputs,
                      std::span<const variable* const> outputs, std::vector<tensor> saved,
                      std::unique_ptr<payload> state, backward_fn backward, unsigned adds_into = 0) {
  node n;
  n.op = op;
  n.adds_into = adds_into;
  n.inputs.reserve(inputs.size());
  for (const variable* v : inputs)
    n.inputs.push_back(v && v->defined() && v->requires_grad() ? v->cell() : nullptr);
  for (const variable* v : outputs) n.outputs.push_back(v->cell());
  n.saved = std::move(saved);
  n.state = std::move(state);
  n.backward = std::move(backward);
  current_tape().record(std::move(n));
}
inline void record_op(std::string_view op, std::initializer_list<const variable*> inputs,
                      std::initializer_list<const variable*> outputs, std::vector<tensor> saved,
                      std::unique_ptr<payload> state, backward_fn backward, unsigned adds_into = 0) {
  record_op(op, std::span<const variable* const>(inputs.begin(), inputs.size()),
            std::span<const variable* const>(outputs.begin(), outputs.size()), std::move(saved), std::move(state),
            std::move(backward), adds_into);
}

}  // namespace grcnn::autograd
