#pragma once
// AdamW (Loshchilov & Hutter) as torch.optim.AdamW (1.13+, amsgrad off) computes it, to rounding
// (torch forms the first moment with lerp):
//   w *= 1 - lr * wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
#include "grcnn/train/device_updates.hpp"
#include "grcnn/train/optimizer.hpp"

namespace grcnn::train {

class adamw final : public optimizer {
 public:
  explicit adamw(std::vector<param_group> groups) : optimizer(std::move(groups)) {
    state_.resize(groups_.size());
    for (std::size_t g = 0; g < groups_.size(); ++g) state_[g].resize(groups_[g].params.size());
  }

  const char* kind() const override { return "adamw"; }

 private:
  struct slot {
    tensor exp_avg, exp_avg_sq;
    std::int64_t steps = 0;
  };

  // The moments exist in w's format; the step count advances.
  slot& prepare(std::size_t g, std::size_t i, const tensor& w) {
    slot& s = state_[g][i];
    if (!s.exp_avg.defined()) {
      s.exp_avg = tensor::zeros_like(w);
      s.exp_avg_sq = tensor::zeros_like(w);
    }
    match_format(s.exp_avg, w);
    match_format(s.exp_avg_sq, w);
    ++s.steps;
    return s;
  }
  // Device parameters: one multi-tensor update per device.
  void update_group(std::size_t g, std::span<update_item> items) override {
    const param_group& o = groups_[g];
    split_by_device(g, items, [&](device dev, const std::vector<update_item*>& list) {
      std::vector<adamw_slot> slots;
      slots.reserve(list.size());
      for (update_item* it : list) {
        tensor& w = *it->w;
        slot& s = prepare(g, it->index, w);
        slots.push_back({static_cast<float*>(w.raw()), static_cast<const float*>(it->grad.raw()),
                         static_cast<float*>(s.exp_avg.raw()), static_cast<float*>(s.exp_avg_sq.raw()),
                         static_cast<std::size_t>(w.numel()), s.steps});
      }
      optimizer_kernels_for(dev).adamw_update(slots, {o.lr, o.weight_decay, o.beta1, o.beta2, o.eps});
    });
  }
  void update(std::size_t g, std::size_t i, tensor& w, const tensor& grad) override {
    if (!w.on_host()) {
      update_item one{i, &w, grad};
      update_group(g, std::span<update_item>(&one, 1));
      return;
    }
    slot& s = prepare(g, i, w);
    if (w.type() == dtype::f64)
      apply<double>(groups_[g], w, grad, s);
    else
      apply<float>(groups_[g], w, grad, s);
  }

  template <class T>
  static void apply(const param_group& o, tensor& w, const tensor& grad, slot& s) {
    const std::size_t n = w.bytes() / sizeof(T);
    T* wv = static_cast<T*>(w.raw());
    const T* gv = static_cast<const T*>(grad.raw());
    T* m = static_cast<T*>(s.exp_avg.raw());
    T* v = static_cast<T*>(s.exp_avg_sq.raw());
    const double t = static_cast<double>(s.steps);
    const double bc1 = 1.0 - std::pow(o.beta1, t), bc2_sqrt = std::sqrt(1.0 - std::pow(o.beta2, t));
    const T decay = static_cast<T>(1.0 - o.lr * o.weight_decay), b1 = static_cast<T>(o.beta1),
            b2 = static_cast<T>(o.beta2), one_b1 = static_cast<T>(1.0 - o.beta1), one_b2 = static_cast<T>(1.0 - o.beta2),
            step_size = static_cast<T>(o.lr / bc1), c2 = static_cast<T>(bc2_sqrt), eps = static_cast<T>(o.eps);
    for (std::size_t k = 0; k < n; ++k) {
      wv[k] *= decay;
      m[k] = m[k] * b1 + one_b1 * gv[k];
      v[k] = v[k] * b2 + one_b2 * gv[k] * gv[k];
      wv[k] -= step_size * (m[k] / (std::sqrt(v[k]) / c2 + eps));
    }
  }

  void save_slots(io::tensor_dict& d, const std::string& key, std::size_t g, std::size_t i) const override {
    const slot& s = state_[g][i];
    if (s.steps == 0) return;
    put(d, key + ".exp_avg", s.exp_avg);
    put(d, key + ".exp_avg_sq", s.exp_avg_sq);
    d.add(key + ".step", tensor::from_values(shape{1}, std::vector<std::int64_t>{s.steps}));
  }
  void load_slots(const io::tensor_dict& d, const std::string& key, std::size_t g, std::size_t i) override {
    slot& s = state_[g][i];
    const tensor& w = groups_[g].params[i]->value();
    s = slot{};
    if (!d.contains(key + ".step")) return;
    s.steps = d.at(key + ".step").values<std::int64_t>().at(0);
    s.exp_avg = take(d, key + ".exp_avg", w);
    s.exp_avg_sq = take(d, key + ".exp_avg_sq", w);
    GRCNN_CHECK(s.exp_avg.defined() && s.exp_avg_sq.defined() && s.steps > 0, io_error, "optimizer state: ", key,
                " has a step count but no moments");
  }

  std::vector<std::vector<slot>> state_;
};

}  // namespace grcnn::train
