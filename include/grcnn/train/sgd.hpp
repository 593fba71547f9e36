#pragma once
// SGD with momentum, Nesterov and weight decay exactly as torch.optim.SGD applies them:
//   g = grad + wd * w;  buf = momentum * buf + (1 - dampening) * g  (buf = g on the first step);
//   step = nesterov ? g + momentum * buf : buf;  w -= lr * step.
// Works on any weight format (blocked oneDNN weights included): gradients come in the weight's format.
#include <vector>

#include "grcnn/autograd/variable.hpp"

namespace grcnn::train {

struct sgd_options {
  double lr = 0.1;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

class sgd {
 public:
  sgd(std::vector<autograd::variable*> params, sgd_options o) : params_(std::move(params)), o_(o), buffers_(params_.size()) {
    GRCNN_CHECK(o.lr >= 0 && o.momentum >= 0 && o.weight_decay >= 0, error, "sgd: negative lr, momentum or weight decay");
    GRCNN_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0), error,
                "sgd: Nesterov momentum needs momentum > 0 and zero dampening");
  }

  void set_lr(double lr) { o_.lr = lr; }
  double lr() const { return o_.lr; }

  // Applies one update to every parameter that has a gradient; leaves gradients in place.
  void step() {
    for (std::size_t i = 0; i < params_.size(); ++i) {
      autograd::variable& p = *params_[i];
      if (!p.grad().defined()) continue;
      tensor& w = p.value();
      GRCNN_CHECK(w.type() == dtype::f32, dtype_error, "sgd: parameter ", p.name(), " is ", w.describe(),
                  "; the optimizer updates f32 master weights");
      tensor g = p.grad();
      GRCNN_CHECK(g.type() == w.type(), dtype_error, "sgd: gradient ", g.describe(), " of parameter ", p.name(),
                  " does not match its weight ", w.describe());
      if (!g.same_format(w)) g = w.memory_layout() == layout::opaque ? g.to_format(w.format()) : g.to_layout(w.memory_layout());
      const std::size_t n = w.bytes() / sizeof(float);
      float* wv = static_cast<float*>(w.raw());
      const float* gv = static_cast<const float*>(g.raw());
      const auto lr = static_cast<float>(o_.lr), wd = static_cast<float>(o_.weight_decay),
                 mom = static_cast<float>(o_.momentum), damp = static_cast<float>(1.0 - o_.dampening);
      if (mom == 0.0f) {
        for (std::size_t k = 0; k < n; ++k) wv[k] -= lr * (gv[k] + wd * wv[k]);
        continue;
      }
      tensor& buf = buffers_[i];
      const bool first = !buf.defined() || !buf.same_format(w);
      if (first) buf = tensor::empty_like(w);
      float* bv = static_cast<float*>(buf.raw());
      for (std::size_t k = 0; k < n; ++k) {
        const float d = gv[k] + wd * wv[k];
        bv[k] = first ? d : mom * bv[k] + damp * d;
        wv[k] -= lr * (o_.nesterov ? d + mom * bv[k] : bv[k]);
      }
    }
  }
  void zero_grad() {
    for (auto* p : params_) p->zero_grad();
  }
  const std::vector<tensor>& momentum_buffers() const { return buffers_; }

 private:
  std::vector<autograd::variable*> params_;
  sgd_options o_;
  std::vector<tensor> buffers_;
};

}  // namespace grcnn::train
