#pragma once
// SGD with momentum, Nesterov and weight decay exactly as torch.optim.SGD (1.13+) applies them:
//   d = grad + wd * w;  buf = d on the first step, else momentum * buf + (1 - dampening) * d;
//   step = nesterov ? d + momentum * buf : buf;  w -= lr * step.
#include "grcnn/train/device_updates.hpp"
#include "grcnn/train/optimizer.hpp"

namespace grcnn::train {

class sgd final : public optimizer {
 public:
  explicit sgd(std::vector<param_group> groups) : optimizer(std::move(groups)) {
    for (const auto& g : groups_)
      GRCNN_CHECK(!g.nesterov || (g.momentum > 0 && g.dampening == 0), error, "sgd: group ", g.name,
                  ": Nesterov momentum needs momentum > 0 and zero dampening");
    buffers_.resize(groups_.size());
    for (std::size_t g = 0; g < groups_.size(); ++g) buffers_[g].resize(groups_[g].params.size());
  }
  // One group with the given hyper-parameters.
  sgd(std::vector<variable*> params, param_group hyper) : sgd(one_group(std::move(params), std::move(hyper))) {}

  const char* kind() const override { return "sgd"; }
  const tensor& momentum_buffer(std::size_t group, std::size_t index) const { return buffers_.at(group).at(index); }

 private:
  // Device parameters: one multi-tensor update per device.
  void update_group(std::size_t g, std::span<update_item> items) override {
    const param_group& o = groups_[g];
    split_by_device(g, items, [&](device dev, const std::vector<update_item*>& list) {
      std::vector<sgd_slot> slots;
      slots.reserve(list.size());
      for (update_item* it : list) {
        tensor& w = *it->w;
        tensor& buf = buffers_[g][it->index];
        match_format(buf, w);
        const bool first = !buf.defined();
        if (first && o.momentum != 0.0) buf = tensor::empty_like(w);
        slots.push_back({static_cast<float*>(w.raw()), static_cast<const float*>(it->grad.raw()),
                         o.momentum != 0.0 ? static_cast<float*>(buf.raw()) : nullptr,
                         static_cast<std::size_t>(w.numel()), first});
      }
      optimizer_kernels_for(dev).sgd_update(slots, {static_cast<float>(o.lr), static_cast<float>(o.weight_decay),
                                          static_cast<float>(o.momentum), static_cast<float>(1.0 - o.dampening),
                                          o.nesterov});
    });
  }
  void update(std::size_t g, std::size_t i, tensor& w, const tensor& grad) override {
    if (!w.on_host()) {
      update_item one{i, &w, grad};
      update_group(g, std::span<update_item>(&one, 1));
      return;
    }
    if (w.type() == dtype::f64)
      apply<double>(groups_[g], w, grad, buffers_[g][i]);
    else
      apply<float>(groups_[g], w, grad, buffers_[g][i]);
  }

  static std::vector<param_group> one_group(std::vector<variable*> params, param_group hyper) {
    hyper.params = std::move(params);
    return {std::move(hyper)};
  }

  template <class T>
  static void apply(const param_group& o, tensor& w, const tensor& grad, tensor& buf) {
    const std::size_t n = w.bytes() / sizeof(T);
    T* wv = static_cast<T*>(w.raw());
    const T* gv = static_cast<const T*>(grad.raw());
    const T lr = static_cast<T>(o.lr), wd = static_cast<T>(o.weight_decay), mom = static_cast<T>(o.momentum),
            damp = static_cast<T>(1.0 - o.dampening);
    if (o.momentum == 0.0) {
      for (std::size_t k = 0; k < n; ++k) wv[k] -= lr * (gv[k] + wd * wv[k]);
      return;
    }
    match_format(buf, w);
    const bool first = !buf.defined();
    if (first) buf = tensor::empty_like(w);
    T* bv = static_cast<T*>(buf.raw());
    for (std::size_t k = 0; k < n; ++k) {
      const T d = gv[k] + wd * wv[k];
      bv[k] = first ? d : mom * bv[k] + damp * d;
      wv[k] -= lr * (o.nesterov ? d + mom * bv[k] : bv[k]);
    }
  }

  void save_slots(io::tensor_dict& d, const std::string& key, std::size_t g, std::size_t i) const override {
    put(d, key + ".momentum_buffer", buffers_[g][i]);
  }
  void load_slots(const io::tensor_dict& d, const std::string& key, std::size_t g, std::size_t i) override {
    buffers_[g][i] = take(d, key + ".momentum_buffer", groups_[g].params[i]->value());
  }

  std::vector<std::vector<tensor>> buffers_;  // undefined until a parameter's first momentum step
};

}  // namespace grcnn::train
