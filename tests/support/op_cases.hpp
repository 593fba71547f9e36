#pragma once
// The test table of the op set: one entry per op configuration, runnable on any backend. Gradient
// checks, backend conformance and PyTorch parity all iterate this one table (as ggml's
// test-backend-ops does), so a new op or shape is tested everywhere at once.
#include <functional>
#include <random>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include <grcnn/ops.hpp>
#ifdef GRCNN_TEST_CUDA
#include <grcnn/backends/cuda/cuda.hpp>
#endif

#include "support/random.hpp"

namespace grcnn::testing {

using autograd::variable;

enum class input_kind {
  activation,   // follows the case's layout (rank 4) and dtype
  weight,       // plain, the case's dtype
  param,        // BN gamma/beta: f32 (f64 on the reference)
  log_probs,    // rows of log-probabilities, the case's dtype
  probs,        // rows of probabilities, the case's dtype
};
// groups: a column -> group map; noise: a noise map (uniform in [-2, 2], the op's eps)
enum class buffer_kind { running_mean, running_var, labels, probs, groups, noise };

struct input_spec {
  shape dims;
  input_kind kind = input_kind::activation;
  bool differentiable = true;
};
struct buffer_spec {
  shape dims;
  buffer_kind kind;
  std::int64_t classes = 0;  // for labels; the group count for groups
};

using run_fn = std::function<variable(std::vector<variable>&, std::vector<tensor>&)>;

struct op_case {
  std::string name;
  std::vector<input_spec> inputs;
  std::vector<buffer_spec> buffers;
  run_fn reference, onednn;
  bool bf16 = true;  // oneDNN runs it in bf16 (losses stay f32)
  // false for a rounding cast: piecewise constant, so finite differences see 0 where its (straight-
  // through) gradient is 1; that gradient is checked against PyTorch and the reference instead. Also
  // false for large cases whose math a small case already checks by finite differences.
  bool finite_differences = true;
#ifdef GRCNN_TEST_CUDA
  run_fn cuda, cuda_tf32;  // the same case on the CUDA backend (f32, and tensor cores in tf32)
#endif
};

template <class F>
op_case make_case(std::string name, std::vector<input_spec> in, std::vector<buffer_spec> buf, F f, bool bf16 = true) {
  op_case c{std::move(name), std::move(in), std::move(buf), {}, {}, bf16};
  c.reference = [f](std::vector<variable>& v, std::vector<tensor>& b) {
    return f(std::type_identity<backends::reference<double>>{}, v, b);
  };
  c.onednn = [f](std::vector<variable>& v, std::vector<tensor>& b) {
    return f(std::type_identity<backends::onednn>{}, v, b);
  };
#ifdef GRCNN_TEST_CUDA
  c.cuda = [f](std::vector<variable>& v, std::vector<tensor>& b) {
    return f(std::type_identity<backends::cuda>{}, v, b);
  };
  c.cuda_tf32 = [f](std::vector<variable>& v, std::vector<tensor>& b) {
    return f(std::type_identity<backends::cuda_tf32>{}, v, b);
  };
#endif
  return c;
}

#define GRCNN_BACKEND_OF(tag) typename std::remove_cvref_t<decltype(tag)>::type

inline std::vector<op_case> op_cases() {
  using A = input_kind;
  std::vector<op_case> cases;
  auto conv = [&](std::string name, shape x, shape w, bool bias, ops::conv2d_params p) {
    std::vector<input_spec> in{{x, A::activation}, {w, A::weight}};
    if (bias) in.push_back({shape{w[0]}, A::weight});
    cases.push_back(make_case(name, in, {}, [p](auto tag, std::vector<variable>& v, std::vector<tensor>&) {
      using B = GRCNN_BACKEND_OF(tag);
      return ops::conv2d<B>(v[0], v[1], v.size() > 2 ? v[2] : variable(), p);
    }));
  };
  conv("conv3x3_bias", {2, 3, 7, 6}, {4, 3, 3, 3}, true, ops::conv2d_params::square(1, 1));
  conv("conv3x3_stride2", {1, 4, 9, 9}, {6, 4, 3, 3}, false, ops::conv2d_params::square(2, 1));
  conv("conv3x3_dilated", {2, 3, 8, 8}, {5, 3, 3, 3}, false, ops::conv2d_params::square(1, 2, 2));
  conv("conv7x7_stem", {1, 3, 11, 11}, {4, 3, 7, 7}, false, ops::conv2d_params::square(2, 3));
  conv("conv3x3_groups32", {1, 64, 5, 5}, {64, 2, 3, 3}, false, ops::conv2d_params::square(1, 1, 1, 32));
  conv("conv1x1_groups32_bias", {2, 64, 3, 3}, {128, 2, 1, 1}, true, ops::conv2d_params::square(1, 0, 1, 32));
  conv("conv1x1_odd", {3, 5, 3, 5}, {7, 5, 1, 1}, false, ops::conv2d_params::square(1, 0));

  auto bn = [&](std::string name, shape x, ops::batch_norm_options o) {
    const shape c{x[1]};
    cases.push_back(make_case(name, {{x, A::activation}, {c, A::param}, {c, A::param}},
                              {{c, buffer_kind::running_mean}, {c, buffer_kind::running_var}},
                              [o](auto tag, std::vector<variable>& v, std::vector<tensor>& b) {
                                using B = GRCNN_BACKEND_OF(tag);
                                return ops::batch_norm<B>(v[0], v[1], v[2], b[0], b[1], o);
                              }));
  };
  bn("bn_train", {3, 4, 5, 5}, {});
  bn("bn_train_relu", {2, 6, 3, 4}, {.fuse_relu = true});
  bn("bn_eval", {2, 4, 3, 3}, {.training = false});
  bn("bn_eval_relu", {2, 4, 3, 3}, {.training = false, .fuse_relu = true});
  bn("bn_2d", {6, 5}, {});
  bn("bn_batch1", {1, 3, 4, 4}, {});
  // 16 channels and 12 or 16 pixels: the CUDA kernels' packed paths (8 bf16 or 4 f32 channels of a pixel
  // channels-last; whole packs within a plane in NCHW).
  bn("bn_train_relu_c16", {2, 16, 3, 4}, {.fuse_relu = true});
  bn("bn_eval_relu_c16", {2, 16, 4, 4}, {.training = false, .fuse_relu = true});
  // 48 channels: 6 bf16 or 12 f32 packs, so the channels-last row kernels' second column block is part empty.
  bn("bn_train_relu_c48", {2, 48, 3, 5}, {.fuse_relu = true});

  auto unary = [&](std::string name, shape x, auto fn) {
    cases.push_back(make_case(name, {{x, A::activation}}, {}, [fn](auto tag, std::vector<variable>& v, std::vector<tensor>&) {
      return fn(tag, v[0]);
    }));
  };
  unary("relu", {2, 3, 4, 5}, [](auto tag, const variable& x) { return ops::relu<GRCNN_BACKEND_OF(tag)>(x); });
  unary("sigmoid", {2, 3, 4, 5}, [](auto tag, const variable& x) { return ops::sigmoid<GRCNN_BACKEND_OF(tag)>(x); });
  unary("max_pool3x3_s2_p1", {2, 3, 9, 8},
        [](auto tag, const variable& x) { return ops::max_pool2d<GRCNN_BACKEND_OF(tag)>(x, 3, 2, 1); });
  unary("max_pool3x3_s2_p1_b1", {1, 2, 7, 7},
        [](auto tag, const variable& x) { return ops::max_pool2d<GRCNN_BACKEND_OF(tag)>(x, 3, 2, 1); });
  unary("avg_pool2x2_s2", {2, 3, 8, 6},
        [](auto tag, const variable& x) { return ops::avg_pool2d<GRCNN_BACKEND_OF(tag)>(x, 2, 2); });
  unary("avg_pool3x3_s3_odd", {1, 2, 7, 10},
        [](auto tag, const variable& x) { return ops::avg_pool2d<GRCNN_BACKEND_OF(tag)>(x, 3, 3); });
  unary("global_avg_pool", {2, 5, 4, 3},
        [](auto tag, const variable& x) { return ops::global_avg_pool<GRCNN_BACKEND_OF(tag)>(x); });
  // 16 channels: the CUDA pooling's packed channels-last path (whole packs of 8 bf16 or 4 f32 channels);
  // overlapping windows, so the backward sums several outputs per input.
  unary("max_pool3x3_s2_p1_c16", {2, 16, 9, 8},
        [](auto tag, const variable& x) { return ops::max_pool2d<GRCNN_BACKEND_OF(tag)>(x, 3, 2, 1); });
  unary("avg_pool3x3_s2_p1_c16", {2, 16, 7, 7},
        [](auto tag, const variable& x) { return ops::avg_pool2d<GRCNN_BACKEND_OF(tag)>(x, 3, 2, 1); });

  cases.push_back(make_case("add", {{{2, 3, 4, 5}, A::activation}, {{2, 3, 4, 5}, A::activation}}, {},
                            [](auto tag, std::vector<variable>& v, std::vector<tensor>&) {
                              return ops::add<GRCNN_BACKEND_OF(tag)>(v[0], v[1]);
                            }));
  cases.push_back(make_case("mul", {{{2, 3, 4, 5}, A::activation}, {{2, 3, 4, 5}, A::activation}}, {},
                            [](auto tag, std::vector<variable>& v, std::vector<tensor>&) {
                              return ops::mul<GRCNN_BACKEND_OF(tag)>(v[0], v[1]);
                            }));
  const shape g{2, 8, 3, 3};
  cases.push_back(make_case("gated_update", {{g, A::activation}, {g, A::activation}, {g, A::activation}, {g, A::activation}},
                            {}, [](auto tag, std::vector<variable>& v, std::vector<tensor>&) {
                              return ops::gated_update<GRCNN_BACKEND_OF(tag)>(v[0], v[1], v[2], v[3]);
                            }));
  // Over one 4,096-element chunk of the CPU kernels (a tail included), and with only the gate or only
  // y differentiable: the backward then computes one of its two gradients. The math is the small case's
  // (finite differences there); these check the CPU loops' chunking and branches against the reference.
  const shape gl{1, 3, 41, 37};
  const auto gate = [](auto tag, std::vector<variable>& v, std::vector<tensor>&) {
    return ops::gated_update<GRCNN_BACKEND_OF(tag)>(v[0], v[1], v[2], v[3]);
  };
  for (auto [name, gate_diff, y_diff] : {std::tuple{"gated_update_long", true, true},
                                         std::tuple{"gated_update_gate_only", true, false},
                                         std::tuple{"gated_update_y_only", false, true}}) {
    op_case c = make_case(name, {{gl, A::activation}, {gl, A::activation, gate_diff}, {gl, A::activation, gate_diff},
                                 {gl, A::activation, y_diff}}, {}, gate);
    c.finite_differences = false;
    cases.push_back(std::move(c));
  }
  cases.push_back(make_case("linear", {{{3, 10}, A::activation}, {{4, 10}, A::weight}, {{4}, A::weight}}, {},
                            [](auto tag, std::vector<variable>& v, std::vector<tensor>&) {
                              return ops::linear<GRCNN_BACKEND_OF(tag)>(v[0], v[1], v[2]);
                            }));
  cases.push_back(make_case("linear_nobias", {{{1, 6}, A::activation}, {{5, 6}, A::weight}}, {},
                            [](auto tag, std::vector<variable>& v, std::vector<tensor>&) {
                              return ops::linear<GRCNN_BACKEND_OF(tag)>(v[0], v[1]);
                            }));
  unary("softmax", {3, 7}, [](auto tag, const variable& x) { return ops::softmax<GRCNN_BACKEND_OF(tag)>(x); });
  unary("log_softmax", {3, 7}, [](auto tag, const variable& x) { return ops::log_softmax<GRCNN_BACKEND_OF(tag)>(x); });

  auto ce = [&](std::string name, bool soft, double smoothing) {
    const shape l{4, 5};
    std::vector<buffer_spec> b{soft ? buffer_spec{l, buffer_kind::probs} : buffer_spec{{4}, buffer_kind::labels, 5}};
    cases.push_back(make_case(name, {{l, A::activation}}, b,
                              [smoothing](auto tag, std::vector<variable>& v, std::vector<tensor>& b) {
                                return ops::cross_entropy<GRCNN_BACKEND_OF(tag)>(v[0], b[0], {smoothing});
                              },
                              false));
  };
  ce("cross_entropy", false, 0.0);
  ce("cross_entropy_smoothing", false, 0.1);
  ce("cross_entropy_soft", true, 0.0);
  ce("cross_entropy_soft_smoothing", true, 0.2);
  cases.push_back(make_case("kl_div", {{{4, 6}, A::log_probs}, {{4, 6}, A::probs}}, {},
                            [](auto tag, std::vector<variable>& v, std::vector<tensor>&) {
                              return ops::kl_div<GRCNN_BACKEND_OF(tag)>(v[0], v[1]);
                            },
                            false));
  // AugMix's consistency loss; the saturated case scales the logits by 32 so that mixture entries fall
  // below the 1e-7 clamp (whose gradient is then zero).
  auto js = [&](std::string name, shape l, int views, int doublings) {
    cases.push_back(make_case(name, {{l, A::activation}}, {},
                              [views, doublings](auto tag, std::vector<variable>& v, std::vector<tensor>&) {
                                using B = GRCNN_BACKEND_OF(tag);
                                variable x = v[0];
                                for (int i = 0; i < doublings; ++i) x = ops::add<B>(x, x);
                                return ops::jensen_shannon<B>(x, views);
                              },
                              false));
  };
  js("jensen_shannon", {6, 5}, 3, 0);
  js("jensen_shannon_two_views", {4, 7}, 2, 0);
  js("jensen_shannon_saturated", {6, 9}, 3, 5);
  cases.push_back(make_case("group_logsumexp", {{{3, 7}, A::activation}}, {{{7}, buffer_kind::groups, 3}},
                            [](auto tag, std::vector<variable>& v, std::vector<tensor>& b) {
                              return ops::group_logsumexp<GRCNN_BACKEND_OF(tag)>(v[0], b[0], 3);
                            },
                            false));
  auto sk = [&](std::string name, shape b, int M) {
    std::vector<input_spec> in(static_cast<std::size_t>(M), input_spec{b, A::activation});
    in.push_back({shape{b[0], M * b[1]}, A::activation});
    cases.push_back(make_case(name, in, {}, [](auto tag, std::vector<variable>& v, std::vector<tensor>&) {
      const std::vector<variable> branches(v.begin(), v.end() - 1);
      return ops::sk_select<GRCNN_BACKEND_OF(tag)>(branches, v.back());
    }));
  };
  sk("sk_select_m2", {2, 6, 3, 4}, 2);
  sk("sk_select_m3_b1", {1, 4, 2, 3}, 3);
  // VOneBlock response: q0 [N, C, H, W], q1 [N, C - S, H, W], and the noise map where the mode has one.
  auto vone = [&](std::string name, shape q0, int simple, ops::vone_math::noise_mode mode, double k_exc) {
    const shape q1{q0[0], q0[1] - simple, q0[2], q0[3]};
    std::vector<buffer_spec> b;
    if (mode != ops::vone_math::noise_none) b.push_back({q0, buffer_kind::noise});
    cases.push_back(make_case(name, {{q0, A::activation}, {q1, A::activation}}, b,
                              [=](auto tag, std::vector<variable>& v, std::vector<tensor>& bufs) {
                                const ops::vone_response_options o{.simple_channels = simple, .k_exc = k_exc, .noise = mode};
                                return ops::vone_response<GRCNN_BACKEND_OF(tag)>(v[0], v[1], bufs.empty() ? tensor() : bufs[0], o);
                              }));
  };
  vone("vone_response", {2, 6, 3, 4}, 3, ops::vone_math::noise_none, 25.0);
  vone("vone_response_neuronal", {2, 6, 3, 4}, 3, ops::vone_math::noise_neuronal, 25.0);
  vone("vone_response_gaussian", {2, 5, 2, 3}, 2, ops::vone_math::noise_gaussian, 2.0);
  vone("vone_response_complex_only", {1, 4, 2, 3}, 0, ops::vone_math::noise_neuronal, 3.0);
  // Mixed precision's seam: x rounded to bf16 and widened back (both directions of ops::cast, and the
  // gradient cast back twice). Identity in bf16.
  unary("cast_bf16_roundtrip", {2, 3, 4, 5}, [](auto tag, const variable& x) {
    using B = GRCNN_BACKEND_OF(tag);
    return ops::cast<B>(ops::cast<B>(x, dtype::bf16), x.value().type());
  });
  cases.back().finite_differences = false;
  return cases;
}

// Whether a case has an image-shaped activation (then it is also run channels-last).
inline bool has_image_input(const op_case& c) {
  for (const auto& s : c.inputs)
    if (s.kind == input_kind::activation && s.dims.rank() == 4) return true;
  return false;
}

// Column k in group k % groups, the last column in none (-1) when there are more columns than groups.
inline tensor group_map(std::int64_t columns, std::int64_t groups) {
  std::vector<std::int64_t> g(static_cast<std::size_t>(columns));
  for (std::int64_t k = 0; k < columns; ++k) g[static_cast<std::size_t>(k)] = k % groups;
  if (columns > groups) g.back() = -1;
  return tensor::from_values(shape{columns}, g);
}

// Inputs of a case in f64, plain layout (the reference's form), drawn from `seed`.
struct case_data {
  std::vector<tensor> inputs, buffers;
};
inline case_data make_case_data(const op_case& c, unsigned seed) {
  std::mt19937 rng(seed);
  case_data d;
  for (const auto& s : c.inputs) {
    switch (s.kind) {
      case input_kind::log_probs: {
        auto p = probabilities(s.dims[0], s.dims[1], rng).values<double>();
        for (auto& e : p) e = std::log(e);
        d.inputs.push_back(tensor::from_values(s.dims, p));
        break;
      }
      case input_kind::probs: d.inputs.push_back(probabilities(s.dims[0], s.dims[1], rng)); break;
      case input_kind::param: d.inputs.push_back(uniform(s.dims, rng, 0.5, 1.5)); break;
      default: d.inputs.push_back(uniform(s.dims, rng)); break;
    }
  }
  for (const auto& b : c.buffers) {
    switch (b.kind) {
      case buffer_kind::running_mean: d.buffers.push_back(uniform(b.dims, rng, -0.5, 0.5)); break;
      case buffer_kind::running_var: d.buffers.push_back(uniform(b.dims, rng, 0.5, 2.0)); break;
      case buffer_kind::labels: d.buffers.push_back(labels(b.dims[0], b.classes, rng)); break;
      case buffer_kind::probs: d.buffers.push_back(probabilities(b.dims[0], b.dims[1], rng)); break;
      case buffer_kind::groups: d.buffers.push_back(group_map(b.dims[0], b.classes)); break;
      case buffer_kind::noise: d.buffers.push_back(uniform(b.dims, rng, -2.0, 2.0)); break;
    }
  }
  return d;
}

// Converts f64 case data to what a production backend takes: activations in `t`/`l`, BN parameters
// and statistics in f32, labels unchanged.
inline case_data convert_case_data(const op_case& c, const case_data& d, dtype t, layout l) {
  case_data r;
  for (std::size_t i = 0; i < d.inputs.size(); ++i) {
    const auto kind = c.inputs[i].kind;
    tensor v = d.inputs[i].to_dtype(kind == input_kind::param && t != dtype::f64 ? dtype::f32 : t);
    if (kind == input_kind::activation && v.rank() == 4) v = v.to_layout(l);
    r.inputs.push_back(v.clone());
  }
  for (std::size_t i = 0; i < d.buffers.size(); ++i) {
    const tensor& b = d.buffers[i];
    switch (c.buffers[i].kind) {
      case buffer_kind::labels:
      case buffer_kind::groups: r.buffers.push_back(b.clone()); break;
      case buffer_kind::probs: r.buffers.push_back(b.to_dtype(t).clone()); break;
      default: r.buffers.push_back(b.to_dtype(t == dtype::f64 ? dtype::f64 : dtype::f32).clone()); break;
    }
  }
  return r;
}

}  // namespace grcnn::testing
