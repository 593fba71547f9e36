#pragma once
#include "grcnn/ops/batch_norm_group.hpp"
#include "grcnn/ops/detail.hpp"

namespace grcnn::ops {

struct batch_norm_options {
  bool training = true;   // batch statistics and running-stat update; else running statistics
  double momentum = 0.1;  // PyTorch's: running = (1 - momentum) * running + momentum * batch
  double eps = 1e-5;
  bool fuse_relu = false; // y = relu(bn(x)) in one kernel
  // Training statistics over the batches of every rank of this group (PyTorch's SyncBatchNorm); a group
  // of one, or evaluation, is the plain batch norm (as PyTorch's SyncBatchNorm does without peers).
  batch_norm_group* group = nullptr;
  bool synchronised() const { return training && group && group->world_size() > 1; }
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
  // (Synchronised: the check is on the values of all ranks, after they are merged.)
  GRCNN_CHECK(!o.training || o.synchronised() || x.numel() / x.dim(1) > 1, shape_error, op,
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

namespace detail {

// The synchronised form, as PyTorch's SyncBatchNorm: this rank's statistics, merged over the group
// (batch_norm_group.hpp); normalised with the merged ones; in backward the sums of dy and dy * (x - mean)
// over every rank give dx, while the weight and bias gradients stay this rank's own (the data-parallel
// wrapper averages them like every other parameter gradient).
struct sync_batch_norm_state : autograd::payload {
  std::vector<double> mean, invstd;
  double count = 0;
  batch_norm_group* group = nullptr;
};

template <class B>
variable synchronised_batch_norm(const batch_norm_problem& pr, const variable& x, const variable& gamma,
                                 const variable& beta, tensor& running_mean, tensor& running_var,
                                 batch_norm_group& group) {
  return backends::dispatch<B, sync_batch_norm_op>::run(pr, [&]<class K>(std::type_identity<K>) {
    const std::int64_t C = pr.x.dims[1];
    std::vector<double> mean, var;
    K::batch_statistics(pr, x.value(), mean, var);
    const merged_batch_statistics m =
        merge_batch_statistics(group, mean, var, C > 0 ? x.value().numel() / C : 0);
    auto s = std::make_unique<sync_batch_norm_state>();
    s->mean = m.mean;
    s->count = m.count;
    s->group = &group;
    s->invstd.resize(m.var.size());
    for (std::size_t c = 0; c < m.var.size(); ++c) s->invstd[c] = 1.0 / std::sqrt(m.var[c] + pr.eps);
    {  // running statistics: PyTorch's momentum, the unbiased variance over all ranks' values
      const double mom = pr.momentum, unbias = m.count / (m.count - 1);
      std::vector<double> rm = running_mean.values<double>(), rv = running_var.values<double>();
      for (std::size_t c = 0; c < rm.size(); ++c) {
        rm[c] = (1 - mom) * rm[c] + mom * m.mean[c];
        rv[c] = (1 - mom) * rv[c] + mom * m.var[c] * unbias;
      }
      running_mean.assign(std::span<const double>(rm));
      running_var.assign(std::span<const double>(rv));
    }
    const bool rec = autograd::should_record({&x, &gamma, &beta});
    variable y = variable::result(K::normalize(pr, x.value(), gamma.value(), beta.value(), s->mean, s->invstd), rec);
    if (rec) {
      std::vector<tensor> saved{x.value(), pr.fuse_relu ? y.value() : tensor(), gamma.value()};
      autograd::record_op(
          sync_batch_norm_op::name, {&x, &gamma, &beta}, {&y}, std::move(saved), std::move(s),
          [pr](autograd::node& n, grad_inputs og, grad_slots ig) {
            const auto& st = *static_cast<const sync_batch_norm_state*>(n.state.get());
            const tensor dy = as_layout(og[0], pr.x.memory_layout);
            const std::size_t C = st.mean.size();
            std::vector<double> sums(2 * C);  // sum_dy, then sum_dy_xmu
            K::gradient_sums(pr, dy, n.saved[0], n.saved[1], st.mean, std::span<double>(sums).first(C),
                             std::span<double>(sums).last(C));
            const dtype pt = pr.param_type;
            if (tensor* db = slot(n, ig, 2)) *db = tensor::from_values(grcnn::shape{pr.x.dims[1]}, std::vector<double>(sums.begin(), sums.begin() + static_cast<std::ptrdiff_t>(C)), pt);
            if (tensor* dg = slot(n, ig, 1)) {
              std::vector<double> v(C);
              for (std::size_t c = 0; c < C; ++c) v[c] = sums[C + c] * st.invstd[c];
              *dg = tensor::from_values(grcnn::shape{pr.x.dims[1]}, v, pt);
            }
            if (tensor* dx = slot(n, ig, 0)) {  // every rank reaches this point: the same graph everywhere
              st.group->sum(sums);
              std::vector<double> mean_dy(C), mean_dy_xmu(C);
              for (std::size_t c = 0; c < C; ++c) mean_dy[c] = sums[c] / st.count, mean_dy_xmu[c] = sums[C + c] / st.count;
              *dx = K::input_gradient(pr, dy, n.saved[0], n.saved[1], n.saved[2], st.mean, st.invstd, mean_dy,
                                      mean_dy_xmu);
            }
          });
    }
    return y;
  });
}

}  // namespace detail

// Batch normalisation (optionally fused with ReLU). In training mode the running statistics are
// updated in place; gamma/beta/statistics are f32 (f64 for f64 inputs), whatever the input dtype.
template <class B = backends::default_backend>
variable batch_norm(const variable& x, const variable& gamma, const variable& beta, tensor& running_mean,
                    tensor& running_var, const batch_norm_options& o = {}) {
  const batch_norm_problem pr =
      make_batch_norm_problem(x.value(), gamma.value(), beta.value(), running_mean, running_var, o);
  if (o.synchronised()) return detail::synchronised_batch_norm<B>(pr, x, gamma, beta, running_mean, running_var, *o.group);
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

// One batch norm's parameters and running statistics.
struct batch_norm_parameters {
  const variable& gamma;
  const variable& beta;
  tensor& running_mean;
  tensor& running_var;
};

// Two batch norms of the same input x (a GRCL iteration's gate BN iter_g_t.0 and bottleneck BN iter_t.0,
// paired by the graph): in training the batch statistics are computed once and both running statistics
// updated with them, each output gets its own affine map (and fused ReLU); the backward gives x one
// gradient, from both, in the backend's fewest passes (the reference folds the two into one pass over x;
// oneDNN runs its two backward primitives and adds; CUDA reduces each and writes dx in one pass). Equal to two batch_norm calls (tested: f64 to the
// last bits on the reference, f32/bf16 within rounding on the CPU), which is what runs in evaluation
// (separate running statistics), synchronised across ranks, or on a backend without the kernel.
template <class B = backends::default_backend>
std::pair<variable, variable> paired_batch_norm(const variable& x, const batch_norm_parameters& a,
                                                const batch_norm_parameters& b, const batch_norm_options& o = {}) {
  const batch_norm_problem pr =
      make_batch_norm_problem(x.value(), a.gamma.value(), a.beta.value(), a.running_mean, a.running_var, o);
  make_batch_norm_problem(x.value(), b.gamma.value(), b.beta.value(), b.running_mean, b.running_var, o);  // checks b
  using K = backends::kernel_of<B, paired_batch_norm_op>;  // its own, or its declared fallback's
  if (!o.training || o.synchronised() || !K::can_implement(pr)) {
    variable ya = batch_norm<B>(x, a.gamma, a.beta, a.running_mean, a.running_var, o);
    return {std::move(ya), batch_norm<B>(x, b.gamma, b.beta, b.running_mean, b.running_var, o)};
  }
  std::unique_ptr<autograd::payload> state;
  auto y = K::forward(pr, x.value(), a.gamma.value(), a.beta.value(), b.gamma.value(), b.beta.value(), a.running_mean,
                      a.running_var, b.running_mean, b.running_var, state);
  const bool rec = autograd::should_record({&x, &a.gamma, &a.beta, &b.gamma, &b.beta});
  variable ya = variable::result(std::move(y[0]), rec), yb = variable::result(std::move(y[1]), rec);
  if (rec) {
    std::vector<tensor> saved{x.value(), pr.fuse_relu ? ya.value() : tensor(), pr.fuse_relu ? yb.value() : tensor(),
                              a.gamma.value(), b.gamma.value()};
    autograd::record_op(paired_batch_norm_op::name, {&x, &a.gamma, &a.beta, &b.gamma, &b.beta}, {&ya, &yb},
                        std::move(saved), std::move(state), [pr](autograd::node& n, grad_inputs og, grad_slots ig) {
                          const tensor dya = og[0].defined() ? detail::as_layout(og[0], pr.x.memory_layout) : tensor();
                          const tensor dyb = og[1].defined() ? detail::as_layout(og[1], pr.x.memory_layout) : tensor();
                          K::backward(pr, n.state.get(), dya, dyb, n.saved[0], n.saved[1], n.saved[2], n.saved[3],
                                      n.saved[4], detail::slot(n, ig, 0), detail::slot(n, ig, 1), detail::slot(n, ig, 2),
                                      detail::slot(n, ig, 3), detail::slot(n, ig, 4));
                        },
                        1u);  // a kernel may add dx into x's gradient so far (CUDA's does)
  }
  return {std::move(ya), std::move(yb)};
}

}  // namespace grcnn::ops
