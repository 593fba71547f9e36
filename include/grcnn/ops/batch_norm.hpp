#pragma once
#include "grcnn/ops/detail.hpp"

namespace grcnn::ops {

struct batch_norm_options {
  bool training = true;   // batch statistics and running-stat update; else running statistics
  double momentum = 0.1;  // PyTorch's: running = (1 - momentum) * running + momentum * batch
  double eps = 1e-5;
  bool fuse_relu = false; // y = relu(bn(x)) in one kernel
};

inline batch_norm_problem make_batch_norm_problem(const tensor& x, const tensor& gamma, const tensor& beta,
                                                  const tensor& running_mean, const tensor& running_var,
                                                  const batch_norm_options& o) {
  constexpr std::string_view op = "batch_norm";
  detail::expect_activation(op, "input", x);
  GRCNN_CHECK(x.rank() == 4 || x.rank() == 2, shape_error, op, ": input must be [N, C, H, W] or [N, C], got ",
              x.describe());
  const grcnn::shape c{x.dim(1)};
  const dtype pt = x.type() == dtype::f64 ? dtype::f64 : dtype::f32;
  for (auto [what, t] : {std::pair<std::string_view, const tensor*>{"weight", &gamma}, {"bias", &beta},
                         {"running_mean", &running_mean}, {"running_var", &running_var}}) {
    detail::expect_dims(op, what, *t, c);
    detail::expect_dtype(op, what, *t, pt);
  }
  GRCNN_CHECK(!o.training || x.numel() / x.dim(1) > 1, shape_error, op,
              ": training needs more than one value per channel, got ", x.describe());
  batch_norm_problem pr;
  pr.x = tensor_desc::of(x);
  pr.param_type = pt;
  pr.eps = o.eps;
  pr.momentum = o.momentum;
  pr.training = o.training;
  pr.fuse_relu = o.fuse_relu;
  return pr;
}

// Batch normalisation (optionally fused with ReLU). In training mode the running statistics are
// updated in place; gamma/beta/statistics are f32 (f64 for f64 inputs), whatever the input dtype.
template <class B = backends::default_backend>
variable batch_norm(const variable& x, const variable& gamma, const variable& beta, tensor& running_mean,
                    tensor& running_var, const batch_norm_options& o = {}) {
  const batch_norm_problem pr =
      make_batch_norm_problem(x.value(), gamma.value(), beta.value(), running_mean, running_var, o);
  return backends::dispatch<B, batch_norm_op>::run(pr, [&]<class K>(std::type_identity<K>) {
    std::unique_ptr<autograd::payload> state;
    const bool rec = autograd::should_record({&x, &gamma, &beta});
    variable y = variable::result(
        K::forward(pr, x.value(), gamma.value(), beta.value(), running_mean, running_var, state), rec);
    if (rec) {
      std::vector<tensor> saved{x.value(), pr.fuse_relu ? y.value() : tensor(), gamma.value()};
      autograd::record_op(batch_norm_op::name, {&x, &gamma, &beta}, {&y}, std::move(saved), std::move(state),
                          [pr](autograd::node& n, grad_inputs og, grad_slots ig) {
                            K::backward(pr, n.state.get(), detail::as_layout(og[0], pr.x.memory_layout), n.saved[0],
                                        n.saved[1], n.saved[2], detail::slot(n, ig, 0), detail::slot(n, ig, 1),
                                        detail::slot(n, ig, 2));
                          },
                          1u);  // a kernel may add dx into x's gradient so far (x feeds several ops in a GRCL)
    }
    return y;
  });
}

}  // namespace grcnn::ops
