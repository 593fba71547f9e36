#pragma once
// The test table of the op set: one entry per op configuration, runnable on any backend. Gradient
// checks, backend conformance and PyTorch parity all iterate this one table (as ggml's
// test-backend-ops does), so a new op or shape is tested everywhere at once.
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

#include <grcnn/backends/default.hpp>
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
// A value written over a case's drawn data after the draw (NaN, +-Inf, an exact 0, a chosen label), at
// one element in logical row-major order of input `slot` (of buffer `slot` when `buffer`).
// tests/torch/make_op_fixtures.py places the same values at the same elements.
struct special_value {
  int slot;
  std::int64_t index;
  double value;
  bool buffer = false;
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
  bool on_cuda = true;  // false: an op the CUDA backend refuses by design (named where the case is made)
#ifdef GRCNN_TEST_CUDA
  run_fn cuda, cuda_tf32;  // the same case on the CUDA backend (f32, and tensor cores in tf32)
#endif
  // Non-finite values placed in the drawn data: NaN/Inf propagation is compared with NaN positions
  // exact (GRCNN_CHECK_MATCH); finite differences skip these cases.
  std::vector<special_value> specials;
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

// A group of two ranks whose other rank holds exactly this rank's data (sync batch norm cases).
struct twin_group final : ops::batch_norm_group {
  static twin_group& instance() {
    static twin_group g;
    return g;
  }
  int rank() const override { return 0; }
  int world_size() const override { return 2; }
  void sum(std::span<double> v) override {
    for (auto& e : v) e *= 2;
  }
  void all_gather(std::span<const double> mine, std::span<double> all) override {
    std::copy(mine.begin(), mine.end(), all.begin());
    std::copy(mine.begin(), mine.end(), all.begin() + static_cast<std::ptrdiff_t>(mine.size()));
  }
};

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
  // The synchronised batch norm against a twin rank holding the same batch (twin_group): statistics and
  // gradient sums over both, i.e. the plain batch norm of [x; x] read on its first half (PyTorch's fixture
  // is exactly that). No CUDA kernels yet (the CUDA backend refuses it by name).
  for (auto [name, x, relu] : {std::tuple<const char*, shape, bool>{"sync_bn_twin", {3, 4, 5, 5}, false},
                               {"sync_bn_twin_relu", {2, 6, 3, 4}, true},
                               {"sync_bn_twin_2d", {1, 5}, false}}) {
    bn(name, x, {.fuse_relu = relu, .group = &twin_group::instance()});
    cases.back().on_cuda = false;
  }

  // Two batch norms of one input (a GRCL iteration's gate and bottleneck BNs): one set of statistics,
  // both running statistics updated, both gradients into x (the result ya + yb * yb uses both outputs).
  // uses: 0 both outputs (ya + yb * yb), 1 the first only (ya * ya), 2 the second only (yb): an output
  // nothing uses sends no gradient, and its parameters' gradients are zero.
  auto paired_bn = [&](std::string name, shape x, ops::batch_norm_options o, int uses = 0) {
    const shape c{x[1]};
    cases.push_back(make_case(name, {{x, A::activation}, {c, A::param}, {c, A::param}, {c, A::param}, {c, A::param}},
                              {{c, buffer_kind::running_mean}, {c, buffer_kind::running_var},
                               {c, buffer_kind::running_mean}, {c, buffer_kind::running_var}},
                              [o, uses](auto tag, std::vector<variable>& v, std::vector<tensor>& b) {
                                using B = GRCNN_BACKEND_OF(tag);
                                auto [ya, yb] = ops::paired_batch_norm<B>(v[0], {v[1], v[2], b[0], b[1]}, {v[3], v[4], b[2], b[3]}, o);
                                if (uses == 1) return ops::mul<B>(ya, ya);
                                if (uses == 2) return yb;
                                return ops::add<B>(ya, ops::mul<B>(yb, yb));
                              }));
  };
  paired_bn("paired_bn_train", {3, 4, 5, 5}, {});
  paired_bn("paired_bn_train_relu", {2, 6, 3, 4}, {.fuse_relu = true});
  paired_bn("paired_bn_train_relu_c16", {2, 16, 3, 4}, {.fuse_relu = true});
  // The CUDA kernels' packed paths, as the bn_*_c16/c48 cases: whole packs within a plane (16 pixels),
  // and a part-empty second column block of the channels-last row kernels (48 channels).
  paired_bn("paired_bn_train_c16_planes", {2, 16, 4, 4}, {});
  paired_bn("paired_bn_train_relu_c48", {2, 48, 3, 5}, {.fuse_relu = true});
  paired_bn("paired_bn_train_relu_first_only", {2, 16, 3, 4}, {.fuse_relu = true}, 1);
  paired_bn("paired_bn_train_second_only", {2, 16, 4, 4}, {}, 2);
  paired_bn("paired_bn_eval_relu", {2, 4, 3, 3}, {.training = false, .fuse_relu = true});

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

  // NaN and +-Inf: every op propagates them as PyTorch does (the same elements NaN, the same infinities),
  // forward and backward. New cases go last (seeds and fixture inputs of the cases above stay put).
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  // Marks the last case added as a NaN/Inf case: values written over its drawn data.
  auto specials = [&](std::vector<special_value> s) {
    cases.back().specials = std::move(s);
    cases.back().finite_differences = false;
  };
  // x: a NaN, +Inf, -Inf, another NaN and an exact 0 (ReLU keeps NaN; its gradient passes where y is NaN).
  const std::vector<special_value> unary_specials{{0, 7, nan}, {0, 20, inf}, {0, 33, -inf}, {0, 90, nan}, {0, 91, 0.0}};
  unary("relu_nonfinite", {2, 3, 4, 5}, [](auto tag, const variable& x) { return ops::relu<GRCNN_BACKEND_OF(tag)>(x); });
  specials(unary_specials);
  unary("sigmoid_nonfinite", {2, 3, 4, 5}, [](auto tag, const variable& x) { return ops::sigmoid<GRCNN_BACKEND_OF(tag)>(x); });
  specials(unary_specials);
  // Batch norm [2, 4, 3, 3]: a NaN in channel 0 and +Inf in channel 2 (batch statistics NaN there), beta
  // NaN in channel 3; channel 1 stays finite. The fused ReLU passes the gradient where its output is NaN.
  const std::vector<special_value> bn_train_specials{{0, 4, nan}, {0, 54, inf}, {2, 3, nan}};
  bn("bn_train_nonfinite", {2, 4, 3, 3}, {});
  specials(bn_train_specials);
  bn("bn_train_relu_nonfinite", {2, 4, 3, 3}, {.fuse_relu = true});
  specials(bn_train_specials);
  // Eval: NaN, +Inf, -Inf in x (element-wise effects), gamma NaN in channel 1, running_var +Inf in channel 2
  // (invstd 0: that channel is beta, except 0 * Inf = NaN where x is +Inf).
  const std::vector<special_value> bn_eval_specials{{0, 4, nan}, {0, 54, inf}, {0, 30, -inf}, {1, 1, nan}, {1, 2, inf, true}};
  bn("bn_eval_nonfinite", {2, 4, 3, 3}, {.training = false});
  specials(bn_eval_specials);
  bn("bn_eval_relu_nonfinite", {2, 4, 3, 3}, {.training = false, .fuse_relu = true});
  specials(bn_eval_specials);
  // The CUDA kernels' packed paths (16 channels).
  bn("bn_train_relu_c16_nonfinite", {2, 16, 3, 4}, {.fuse_relu = true});
  specials({{0, 41, nan}, {0, 300, -inf}, {1, 12, nan}});
  bn("bn_eval_relu_c16_nonfinite", {2, 16, 4, 4}, {.training = false, .fuse_relu = true});
  specials({{0, 53, nan}, {0, 407, inf}, {0, 160, -inf}, {1, 12, nan}});
  // Max pooling [1, 2, 7, 7], 3x3 stride 2 pad 1: a NaN wins its windows (the last NaN of a window in
  // row-major order: (0,0) and (1,1) both NaN), its gradient goes to that NaN; a NaN shared by four
  // windows; +Inf in windows with and without that NaN; a corner window all -Inf (the output is -Inf, the
  // gradient goes to the window's first element); a -Inf among finite values loses.
  unary("max_pool3x3_s2_p1_nonfinite", {1, 2, 7, 7},
        [](auto tag, const variable& x) { return ops::max_pool2d<GRCNN_BACKEND_OF(tag)>(x, 3, 2, 1); });
  specials({{0, 0, nan}, {0, 8, nan}, {0, 24, nan}, {0, 40, inf}, {0, 49, -inf}, {0, 50, -inf}, {0, 56, -inf},
            {0, 57, -inf}, {0, 97, -inf}});
  unary("max_pool3x3_s2_p1_c16_nonfinite", {2, 16, 9, 8},
        [](auto tag, const variable& x) { return ops::max_pool2d<GRCNN_BACKEND_OF(tag)>(x, 3, 2, 1); });
  specials({{0, 387, nan}, {0, 1908, inf}, {0, 1899, nan}, {0, 100, -inf}});
  // Average pooling: NaN and Inf enter their windows' sums; +Inf and -Inf in one window give NaN.
  unary("avg_pool3x3_s3_nonfinite", {1, 2, 7, 10},
        [](auto tag, const variable& x) { return ops::avg_pool2d<GRCNN_BACKEND_OF(tag)>(x, 3, 3); });
  specials({{0, 11, nan}, {0, 14, inf}, {0, 25, -inf}, {0, 117, inf}});
  unary("avg_pool3x3_s2_p1_c16_nonfinite", {2, 16, 7, 7},
        [](auto tag, const variable& x) { return ops::avg_pool2d<GRCNN_BACKEND_OF(tag)>(x, 3, 2, 1); });
  specials({{0, 106, nan}, {0, 1151, inf}});
  unary("global_avg_pool_nonfinite", {2, 5, 4, 3},
        [](auto tag, const variable& x) { return ops::global_avg_pool<GRCNN_BACKEND_OF(tag)>(x); });
  specials({{0, 5, nan}, {0, 13, inf}, {0, 14, -inf}, {0, 87, inf}});
  // add/mul: NaN, Inf + -Inf, 0 * Inf.
  cases.push_back(make_case("add_nonfinite", {{{2, 3, 4, 5}, A::activation}, {{2, 3, 4, 5}, A::activation}}, {},
                            [](auto tag, std::vector<variable>& v, std::vector<tensor>&) {
                              return ops::add<GRCNN_BACKEND_OF(tag)>(v[0], v[1]);
                            }));
  specials({{0, 3, nan}, {0, 10, inf}, {1, 10, -inf}, {1, 20, inf}});
  cases.push_back(make_case("mul_nonfinite", {{{2, 3, 4, 5}, A::activation}, {{2, 3, 4, 5}, A::activation}}, {},
                            [](auto tag, std::vector<variable>& v, std::vector<tensor>&) {
                              return ops::mul<GRCNN_BACKEND_OF(tag)>(v[0], v[1]);
                            }));
  specials({{0, 3, nan}, {0, 10, 0.0}, {1, 10, inf}, {1, 20, -inf}});
  // The gate x + sigmoid(a + b) * y with inputs (x, a, b, y): sigmoid(+Inf) = 1 and sigmoid(-Inf) = 0
  // exactly (so 0 * Inf = NaN where y is Inf), Inf - Inf, NaN in each input.
  const std::vector<special_value> gate_specials{{1, 1, inf},  {1, 2, -inf}, {1, 3, inf}, {2, 3, -inf}, {1, 4, nan},
                                                 {1, 5, -inf}, {3, 5, inf},  {0, 6, nan}, {3, 7, nan},  {0, 8, inf},
                                                 {1, 9, inf},  {3, 9, inf}};
  cases.push_back(make_case("gated_update_nonfinite", {{g, A::activation}, {g, A::activation}, {g, A::activation}, {g, A::activation}},
                            {}, gate));
  specials(gate_specials);
  // The same in the CPU loops' second chunk and scalar tail.
  {
    std::vector<special_value> s = gate_specials;
    for (const auto& e : gate_specials) s.push_back({e.slot, e.index + 4096 + 17, e.value});
    s.push_back({1, 4550, -inf});
    s.push_back({3, 4550, inf});
    cases.push_back(make_case("gated_update_long_nonfinite",
                              {{gl, A::activation}, {gl, A::activation}, {gl, A::activation}, {gl, A::activation}}, {}, gate));
    specials(s);
  }
  // Convolution: NaN and +Inf in x (+Inf in a corner), a NaN weight at the centre tap, an infinite bias.
  // A non-finite weight at a tap that falls on padding reaches those outputs in our kernels (padding
  // counts as zeros: 0 * NaN), as in PyTorch's bf16 CPU convolution and cuDNN; PyTorch's f32 CPU
  // convolution skips padded taps there. That footprint is left implementation-defined, so the case
  // puts its NaN weight where no padding meets it.
  conv("conv3x3_bias_nonfinite", {2, 3, 7, 6}, {4, 3, 3, 3}, true, ops::conv2d_params::square(1, 1));
  specials({{0, 62, nan}, {0, 126, inf}, {1, 31, nan}, {2, 2, inf}});
  cases.push_back(make_case("linear_nonfinite", {{{3, 10}, A::activation}, {{4, 10}, A::weight}, {{4}, A::weight}}, {},
                            [](auto tag, std::vector<variable>& v, std::vector<tensor>&) {
                              return ops::linear<GRCNN_BACKEND_OF(tag)>(v[0], v[1], v[2]);
                            }));
  specials({{0, 5, nan}, {1, 12, inf}, {2, 3, nan}});
  // Rows: a NaN, +Inf (the row NaN), -Inf (probability 0), finite, all -Inf (NaN).
  const std::vector<special_value> row_specials{{0, 2, nan},   {0, 10, inf},  {0, 18, -inf}, {0, 28, -inf}, {0, 29, -inf},
                                                {0, 30, -inf}, {0, 31, -inf}, {0, 32, -inf}, {0, 33, -inf}, {0, 34, -inf}};
  unary("softmax_nonfinite", {5, 7}, [](auto tag, const variable& x) { return ops::softmax<GRCNN_BACKEND_OF(tag)>(x); });
  specials(row_specials);
  unary("log_softmax_nonfinite", {5, 7}, [](auto tag, const variable& x) { return ops::log_softmax<GRCNN_BACKEND_OF(tag)>(x); });
  specials(row_specials);
  // Cross-entropy with labels fixed (1, 2, 0, 4): a -Inf logit off the label leaves the hard loss finite
  // (and gives +Inf with label smoothing); NaN and +Inf logits make it NaN (their rows' gradients too).
  const std::vector<special_value> labels{{0, 0, 1, true}, {0, 1, 2, true}, {0, 2, 0, true}, {0, 3, 4, true}};
  auto with_labels = [&](std::vector<special_value> s) {
    s.insert(s.end(), labels.begin(), labels.end());
    return s;
  };
  ce("cross_entropy_neginf", false, 0.0);
  specials(with_labels({{0, 3, -inf}, {0, 11, -inf}}));
  ce("cross_entropy_smoothing_neginf", false, 0.1);
  specials(with_labels({{0, 3, -inf}, {0, 11, -inf}}));
  ce("cross_entropy_nonfinite", false, 0.0);
  specials(with_labels({{0, 5, nan}, {0, 12, inf}}));
  // A soft target 0 where the logit is -Inf: 0 * -Inf makes the loss NaN; the gradient stays finite.
  ce("cross_entropy_soft_neginf", true, 0.0);
  specials({{0, 3, -inf}, {0, 3, 0.0, true}});
  // KL divergence (input log-probabilities, target probabilities): NaN input, NaN target, -Inf input
  // where the target is 0 (0 * -Inf: NaN, as PyTorch's xlogy(t, t) - t * x).
  cases.push_back(make_case("kl_div_nonfinite", {{{4, 6}, A::log_probs}, {{4, 6}, A::probs}}, {},
                            [](auto tag, std::vector<variable>& v, std::vector<tensor>&) {
                              return ops::kl_div<GRCNN_BACKEND_OF(tag)>(v[0], v[1]);
                            },
                            false));
  specials({{0, 2, nan}, {1, 13, nan}, {0, 20, -inf}, {1, 20, 0.0}});
  // A -Inf input where the target is positive: the loss is +Inf.
  cases.push_back(make_case("kl_div_neginf", {{{4, 6}, A::log_probs}, {{4, 6}, A::probs}}, {},
                            [](auto tag, std::vector<variable>& v, std::vector<tensor>&) {
                              return ops::kl_div<GRCNN_BACKEND_OF(tag)>(v[0], v[1]);
                            },
                            false));
  specials({{0, 9, -inf}});
  // Jensen-Shannon over 3 views of 2 samples: a NaN logit in view 0 of sample 1 makes the loss NaN and
  // every view's sample-1 gradient NaN; sample 0's stay finite.
  js("jensen_shannon_nonfinite", {6, 5}, 3, 0);
  specials({{0, 7, nan}});
  // A -Inf logit: its probability is exactly 0, which adds nothing to the loss and makes its row's gradient
  // NaN (PyTorch's xlogy derivative at 0 is 0 / 0). PyTorch computes in f32, so its probabilities reach 0
  // from logits 104 below the row's maximum; ours (double) from 745 below.
  js("jensen_shannon_neginf", {6, 5}, 3, 0);
  specials({{0, 11, -inf}});
  // Grouped log-sum-exp (column k in group k % 3, column 6 in none): +Inf in a group gives +Inf, a group
  // all -Inf gives -Inf (PyTorch's logsumexp), a NaN gives NaN, a NaN outside every group nothing.
  cases.push_back(make_case("group_logsumexp_nonfinite", {{{3, 7}, A::activation}}, {{{7}, buffer_kind::groups, 3}},
                            [](auto tag, std::vector<variable>& v, std::vector<tensor>& b) {
                              return ops::group_logsumexp<GRCNN_BACKEND_OF(tag)>(v[0], b[0], 3);
                            },
                            false));
  specials({{0, 1, inf}, {0, 7, -inf}, {0, 10, -inf}, {0, 16, nan}, {0, 20, nan}});
  // Selective-kernel fusion (branches [2, 6, 3, 4], logits [2, 12]): NaN and +Inf in branches, NaN and +Inf
  // logits (their (sample, channel) attention NaN), a -Inf logit (attention 0, times an infinite branch: NaN).
  sk("sk_select_m2_nonfinite", {2, 6, 3, 4}, 2);
  specials({{0, 17, nan}, {1, 120, inf}, {2, 2, nan}, {2, 18, inf}, {2, 9, -inf}, {1, 36, inf}});
  // VOne: NaN, -Inf and +Inf in simple channels, NaN in a complex one, +Inf in q1, a NaN noise draw.
  const std::vector<special_value> vone_specials{{0, 1, nan}, {0, 14, -inf}, {0, 27, inf}, {0, 40, nan}, {1, 53, inf}};
  vone("vone_response_nonfinite", {2, 6, 3, 4}, 3, ops::vone_math::noise_none, 25.0);
  specials(vone_specials);
  vone("vone_response_neuronal_nonfinite", {2, 6, 3, 4}, 3, ops::vone_math::noise_neuronal, 25.0);
  {
    std::vector<special_value> s = vone_specials;
    s.push_back({0, 100, nan, true});
    specials(s);
  }
  vone("vone_response_gaussian_nonfinite", {2, 5, 2, 3}, 2, ops::vone_math::noise_gaussian, 2.0);
  specials({{0, 1, nan}, {0, 7, inf}, {1, 20, nan}, {0, 40, -inf, true}});
  // bf16 keeps NaN and the infinities; 3.4e38 rounds to +Inf.
  unary("cast_bf16_roundtrip_nonfinite", {2, 3, 4, 5}, [](auto tag, const variable& x) {
    using B = GRCNN_BACKEND_OF(tag);
    return ops::cast<B>(ops::cast<B>(x, dtype::bf16), x.value().type());
  });
  specials({{0, 3, nan}, {0, 4, inf}, {0, 5, -inf}, {0, 6, 3.4e38}, {0, 7, -3.39e38}});
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
  for (const special_value& s : c.specials) {
    tensor& t = s.buffer ? d.buffers.at(static_cast<std::size_t>(s.slot)) : d.inputs.at(static_cast<std::size_t>(s.slot));
    auto v = t.values<double>();
    v.at(static_cast<std::size_t>(s.index)) = s.value;
    t.assign(v);
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

// How non-finite values must correspond. exact: NaN meets NaN, +Inf +Inf, -Inf -Inf, finite finite.
// may_spread: where a kernel's NaN footprint is implementation-defined (blocked bf16 convolutions compute
// some outputs with zero weights over neighbouring inputs, 0 * NaN = NaN, as PyTorch's bf16 CPU
// convolution does; cuDNN's FFT and Winograd algorithms spread a NaN over a tile), `got` may hold NaN
// where `want` is finite or infinite, but every NaN of `want` must be NaN and every infinity the same
// infinity or NaN: nothing non-finite is lost. inf_may_be_nan: as exact, except that an infinity may
// come out NaN (a Welford mean meets Inf - Inf where a plain sum stays infinite).
enum class nonfinite_rule { exact, may_spread, inf_may_be_nan };

// Non-finite values of `got` against `want`, element by element in logical order, under `rule`.
// Returns "" when they agree, else the count of disagreeing elements and the first few.
inline std::string nonfinite_mismatch(const tensor& got, const tensor& want, nonfinite_rule rule = nonfinite_rule::exact) {
  const auto g = got.values<double>(), w = want.values<double>();
  if (g.size() != w.size()) return "sizes differ";
  auto kind = [](double v) { return std::isnan(v) ? "NaN" : std::isinf(v) ? (v > 0 ? "+Inf" : "-Inf") : "finite"; };
  std::ostringstream os;
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (std::string_view(kind(g[i])) == kind(w[i])) continue;
    if (rule == nonfinite_rule::may_spread && std::isnan(g[i])) continue;
    if (rule == nonfinite_rule::inf_may_be_nan && std::isnan(g[i]) && std::isinf(w[i])) continue;
    if (++wrong <= 5) os << " [" << i << "]: got " << g[i] << ", want " << w[i] << ";";
  }
  if (wrong == 0) return "";
  return std::to_string(wrong) + " elements differ in NaN/Inf:" + os.str();
}

// relative_error's measure (max |got - want| / max |want|) over the elements finite in both.
inline double finite_relative_error(const tensor& got, const tensor& want, double floor = 1e-30) {
  const auto g = got.values<double>(), w = want.values<double>();
  double diff = 0, mag = floor;
  for (std::size_t i = 0; i < g.size() && i < w.size(); ++i) {
    if (!std::isfinite(w[i]) || !std::isfinite(g[i])) continue;  // nonfinite_mismatch judges these
    diff = std::max(diff, std::abs(g[i] - w[i]));
    mag = std::max(mag, std::abs(w[i]));
  }
  return diff / mag;
}

// A Catch2 check that `got` holds NaN and +-Inf where `want` does (under `rule`) and matches its finite
// values within a relative error.
#define GRCNN_CHECK_MATCH_RULE(what, got, want, tol, rule)                                               \
  do {                                                                                                  \
    INFO((what) << ": got " << (got).describe() << ", want " << (want).describe());                    \
    REQUIRE((got).dims() == (want).dims());                                                             \
    const std::string grcnn_nonfinite_ = ::grcnn::testing::nonfinite_mismatch((got), (want), (rule));   \
    INFO("non-finite values: " << (grcnn_nonfinite_.empty() ? "match" : grcnn_nonfinite_));             \
    CHECK(grcnn_nonfinite_.empty());                                                                    \
    const double grcnn_err_ = ::grcnn::testing::finite_relative_error((got), (want));                   \
    INFO("relative error over finite elements " << grcnn_err_ << " (tolerance " << (tol) << ")");       \
    CHECK(grcnn_err_ <= (tol));                                                                         \
  } while (0)
#define GRCNN_CHECK_MATCH(what, got, want, tol) \
  GRCNN_CHECK_MATCH_RULE(what, got, want, tol, ::grcnn::testing::nonfinite_rule::exact)

}  // namespace grcnn::testing
