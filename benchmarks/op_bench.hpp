#pragma once
// Shared by bench_ops and bench_backends: one op of grcnn55's distinct conv, BN+ReLU and gate shapes
// (benchmarks/grcnn55_ops.json) timed on a backend B, forward alone and forward+backward (median over
// reps after warm-up calls), with its inputs where B computes (its device, activation order and dtype).
// Include the backends' headers first (default.hpp, cuda/cuda.hpp).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <grcnn/ops.hpp>

namespace grcnn::bench {

inline tensor random_tensor(const shape& s, std::mt19937& rng, layout l = layout::plain, dtype t = dtype::f32) {
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> v(static_cast<std::size_t>(s.numel()));
  for (auto& e : v) e = d(rng);
  return tensor::from_values(s, v, t, l);
}

inline shape to_shape(const nlohmann::json& j) {
  shape s;
  for (auto& d : j) s.push_back(d.get<std::int64_t>());
  return s;
}

// Waits for B's device (a no-op on the host): timings of a device backend end when its work does.
template <class B>
void synchronize() {
  if constexpr (backends::backend_traits<B>::where.kind != device_kind::cpu)
    runtime_for(backends::backend_traits<B>::where).synchronize();
}

// Median milliseconds of f over `reps` calls after `warmup` untimed ones (plans are created there).
template <class B, class F>
double median_ms(int reps, F&& f, int warmup = 1) {
  for (int i = 0; i < warmup; ++i) f();
  synchronize<B>();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto a = std::chrono::steady_clock::now();
    f();
    synchronize<B>();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct op_setup {
  dtype act = dtype::f32;      // activations, conv weights and biases; BN parameters f32 (as torch's autocast) or f64
  layout order = layout::nhwc;  // the activations' order
  std::int64_t batch = 0;      // 0: the spec's batch, else this one
  int reps = 5;
  int warmup = 1;
};

struct op_time {
  double fwd_ms = 0, fwd_bwd_ms = 0;
  shape x;  // the input shape timed
};

// One entry of the spec's "ops" list ("op": conv, bn_relu or gate) on backend B.
template <class B>
op_time time_op(const nlohmann::json& op, const op_setup& s, std::mt19937& rng) {
  constexpr device where = backends::backend_traits<B>::where;
  using autograd::variable;
  auto make = [&](const shape& sh, layout l, dtype t) { return random_tensor(sh, rng, l, t).to_device(where); };
  shape xs = to_shape(op["x"]);
  if (s.batch > 0) xs[0] = s.batch;
  variable x(make(xs, s.order, s.act), true);
  op_time r{.x = xs};
  if (op["op"] == "conv") {
    const auto p = ops::conv2d_params::square(op["stride"], op["pad"], 1, op["groups"]);
    const tensor w_plain = make(to_shape(op["w"]), layout::plain, s.act);
    const auto pr = ops::make_conv2d_problem(x.value(), w_plain, nullptr, p);
    variable w(backends::weight_layout<B>::conv(pr, w_plain), true);
    variable b = op["bias"].get<bool>() ? variable(make({w_plain.dim(0)}, layout::plain, s.act), true) : variable();
    const tensor seed = make(pr.y.dims, s.order, s.act);
    r.fwd_ms = median_ms<B>(s.reps, [&] {
      autograd::no_grad_guard ng;
      (void)ops::conv2d<B>(x, w, b, p);
    }, s.warmup);
    r.fwd_bwd_ms = median_ms<B>(s.reps, [&] {
      autograd::backward(ops::conv2d<B>(x, w, b, p), seed);
      x.zero_grad();
      w.zero_grad();
      if (b.defined()) b.zero_grad();
    }, s.warmup);
  } else if (op["op"] == "gate") {  // a GRCL's gated update x + sigmoid(a + b) * y
    variable a(make(xs, s.order, s.act), true), b(make(xs, s.order, s.act), true), y(make(xs, s.order, s.act), true);
    const tensor seed = make(xs, s.order, s.act);
    r.fwd_ms = median_ms<B>(s.reps, [&] {
      autograd::no_grad_guard ng;
      (void)ops::gated_update<B>(x, a, b, y);
    }, s.warmup);
    r.fwd_bwd_ms = median_ms<B>(s.reps, [&] {
      autograd::backward(ops::gated_update<B>(x, a, b, y), seed);
      for (variable* v : {&x, &a, &b, &y}) v->zero_grad();
    }, s.warmup);
  } else {  // bn_relu: training-mode batch norm with the ReLU fused
    const std::int64_t c = xs[1];
    const dtype pt = s.act == dtype::f64 ? dtype::f64 : dtype::f32;  // f32 beside 16-bit activations
    variable g(tensor::full({c}, 1.0, pt).to_device(where), true), bt(tensor::zeros({c}, pt).to_device(where), true);
    tensor rm = tensor::zeros({c}, pt).to_device(where), rv = tensor::full({c}, 1.0, pt).to_device(where);
    const tensor seed = make(xs, s.order, s.act);
    r.fwd_ms = median_ms<B>(s.reps, [&] {
      autograd::no_grad_guard ng;
      (void)ops::batch_norm<B>(x, g, bt, rm, rv, {.fuse_relu = true});
    }, s.warmup);
    r.fwd_bwd_ms = median_ms<B>(s.reps, [&] {
      autograd::backward(ops::batch_norm<B>(x, g, bt, rm, rv, {.fuse_relu = true}), seed);
      x.zero_grad();
      g.zero_grad();
      bt.zero_grad();
    }, s.warmup);
  }
  return r;
}

}  // namespace grcnn::bench
