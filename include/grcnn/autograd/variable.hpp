#pragma once
// A variable is a tensor value plus a shared gradient cell. The tape holds cells, never values,
// so recording an op keeps alive only what that op explicitly saves for its backward.
#include <memory>
#include <string>

#include "grcnn/core/tensor.hpp"

namespace grcnn::autograd {

struct grad_cell {
  tensor grad;               // undefined until a gradient arrives
  bool requires_grad = false;
  bool leaf = true;          // parameters and inputs; non-leaf gradients are freed once consumed
  std::string name;
};

class variable {
 public:
  variable() = default;
  explicit variable(tensor value, bool requires_grad = false, std::string name = {})
      : value_(std::move(value)), cell_(std::make_shared<grad_cell>()) {
    cell_->requires_grad = requires_grad;
    cell_->name = std::move(name);
  }

  bool defined() const { return value_.defined(); }
  const tensor& value() const { return value_; }
  tensor& value() { return value_; }
  const tensor& grad() const { return cell_->grad; }
  void set_grad(tensor g) { cell_->grad = std::move(g); }
  void zero_grad() { cell_->grad = tensor(); }  // PyTorch's set_to_none: the next backward writes, not adds
  bool requires_grad() const { return cell_ && cell_->requires_grad; }
  void set_requires_grad(bool r) { cell_->requires_grad = r; }
  const std::string& name() const { return cell_->name; }
  const std::shared_ptr<grad_cell>& cell() const { return cell_; }
  const grcnn::shape& dims() const { return value_.dims(); }

  // Used by ops: a result variable whose cell is a non-leaf when it joins the graph.
  static variable result(tensor value, bool requires_grad) {
    variable v(std::move(value), requires_grad);
    v.cell_->leaf = !requires_grad;
    return v;
  }

 private:
  tensor value_;
  std::shared_ptr<grad_cell> cell_;
};

}  // namespace grcnn::autograd
