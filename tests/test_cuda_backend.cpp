// The CUDA backend against the reference backend (every case of the op table, f32 and tf32, plain and
// channels-last), gradient accumulation, steady-state device memory, and whole-network training steps
// against oneDNN. Without a GPU the program prints the reason and exits 77 (ctest: skipped).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>

#include <grcnn/backends/cuda/cuda.hpp>
#include <grcnn/train/cuda_updates.hpp>
#include <grcnn/backends/cuda/device.hpp>
#include <grcnn/io/state_dict.hpp>
#include <grcnn/models/grcnn.hpp>
#include <grcnn/train/adamw.hpp>
#include <grcnn/train/sgd.hpp>

#include "support/run_case.hpp"

using namespace grcnn;
using namespace grcnn::testing;

namespace {

case_data to_device(const case_data& d, device where) {
  case_data r;
  for (const auto& t : d.inputs) r.inputs.push_back(t.to_device(where));
  for (const auto& t : d.buffers) r.buffers.push_back(t.to_device(where));
  return r;
}
case_result to_host(case_result r) {
  r.output = r.output.to_device(cpu_device);
  for (auto& g : r.grads) g = g.to_device(cpu_device);
  for (auto& b : r.buffers) b = b.to_device(cpu_device);
  return r;
}

// ||a - b|| / ||b|| over all elements.
double relative_l2(const tensor& a, const tensor& b) {
  REQUIRE(a.defined());
  REQUIRE(b.defined());
  REQUIRE(a.dims() == b.dims());
  const auto va = a.values<double>(), vb = b.values<double>();
  double num = 0, den = 1e-300;
  for (std::size_t i = 0; i < va.size(); ++i) {
    num += (va[i] - vb[i]) * (va[i] - vb[i]);
    den += vb[i] * vb[i];
  }
  return std::sqrt(num / den);
}

// The op table on CUDA against reference<f64> in one of three modes: f32 (within 1e-5), tf32 (its
// matrix ops within 5e-3) and bf16 storage (mixed precision: the same cases on bf16 values, within
// oneDNN's bf16 tolerances of test_conformance). In bf16, losses stay f32 (their cases are f32-only), as
// does softmax on the GPU: refused with a reason, checked here. The cast kernels run in the f32 pass
// (cast_bf16_roundtrip); in bf16 that case is the identity.
enum class mode { f32, tf32, bf16 };
// only_prefix: run the cases whose name starts so; label: added to the section names (a second pass).
void check_cases(mode m, const std::string& only_prefix = "", const std::string& label = "") {
  const bool tf32 = m == mode::tf32, bf16 = m == mode::bf16;
  const dtype t = bf16 ? dtype::bf16 : dtype::f32;
  unsigned seed = tf32 ? 9000 : bf16 ? 11000 : 7000;
  for (const op_case& c : op_cases()) {
    if (bf16 && !c.bf16) continue;
    if (!c.on_cuda) continue;  // refused by the CUDA backend by design (op_cases.hpp says why)
    if (c.name.rfind(only_prefix, 0) != 0) continue;
    for (layout l : {layout::plain, layout::nhwc}) {
      if (l == layout::nhwc && !has_image_input(c)) continue;
      DYNAMIC_SECTION(c.name << (tf32 ? " tf32 " : bf16 ? " bf16 " : " f32 ") << name_of(l) << label) {
        const case_data base = make_case_data(c, ++seed);
        const case_data host = convert_case_data(c, base, t, l);
        const case_data dev = to_device(host, cuda_device);
        const case_data ref = convert_case_data(c, host, dtype::f64, layout::plain);
        const tensor probe = forward_only(c.reference, ref.inputs, ref.buffers);
        std::mt19937 rng(seed * 7919u + 1u);
        const tensor r_host = uniform(probe.dims(), rng, -1, 1, t, probe.rank() == 4 ? l : layout::plain);

        // Pre-filled gradients: backward must add into them, on the device as on the reference.
        std::vector<tensor> prefill_dev, prefill_ref;
        for (std::size_t i = 0; i < host.inputs.size(); ++i) {
          if (!c.inputs[i].differentiable) {
            prefill_dev.emplace_back();
            prefill_ref.emplace_back();
            continue;
          }
          const tensor& in = host.inputs[i];
          const tensor p = uniform(in.dims(), rng, -1, 1, in.type(), in.memory_layout());
          prefill_dev.push_back(p.to_device(cuda_device));
          prefill_ref.push_back(p.to_dtype(dtype::f64).to_layout(layout::plain));
        }
        const run_fn& run = tf32 ? c.cuda_tf32 : c.cuda;
        const bool f32_only = c.name.rfind("softmax", 0) == 0 || c.name.rfind("log_softmax", 0) == 0;
        if (bf16 && f32_only) {
          CHECK_THROWS_WITH(run_case(c, run, dev, r_host.to_device(cuda_device), prefill_dev), Catch::Contains("f32 only"));
          continue;
        }
        const case_result got = to_host(run_case(c, run, dev, r_host.to_device(cuda_device), prefill_dev));
        const case_result want = run_case(c, c.reference, ref, r_host.to_dtype(dtype::f64).to_layout(layout::plain), prefill_ref);

        const bool conv = c.name.rfind("conv", 0) == 0, matrix_op = conv || c.name.rfind("linear", 0) == 0;
        const double tol = bf16 ? 2e-2 : tf32 && matrix_op ? 5e-3 : 1e-5, tol_grad = bf16 ? 3e-2 : tol;
        // NaN/Inf cases: cuDNN's algorithms (FFT, Winograd, blocked implicit GEMM) may spread a NaN over
        // a tile, and the packed channels-last batch statistics (Welford) turn a channel's infinity into a
        // NaN mean where the reference's sum keeps +-Inf (PyTorch's CUDA Welford does the same).
        const auto rule = conv ? nonfinite_rule::may_spread : nonfinite_rule::exact;
        if (got.output.rank() == 4) CHECK(got.output.memory_layout() == l);
        GRCNN_CHECK_MATCH_RULE("output", got.output, want.output, tol, rule);
        for (std::size_t i = 0; i < got.grads.size(); ++i)
          if (want.grads[i].defined())
            GRCNN_CHECK_MATCH_RULE("gradient of input " + std::to_string(i), got.grads[i], want.grads[i], tol_grad, rule);
        for (std::size_t i = 0; i < got.buffers.size(); ++i)
          GRCNN_CHECK_MATCH_RULE("buffer " + std::to_string(i) + " after the call", got.buffers[i], want.buffers[i], 1e-5,
                                 nonfinite_rule::inf_may_be_nan);
      }
    }
  }
}

}  // namespace

TEST_CASE("CUDA matches the reference backend on every op (f32)", "[cuda]") { check_cases(mode::f32); }
TEST_CASE("CUDA matches the reference backend on every op (tf32 within its tolerance)", "[cuda]") { check_cases(mode::tf32); }
TEST_CASE("CUDA matches the reference backend on every op (bf16 storage)", "[cuda]") { check_cases(mode::bf16); }

// The cases above let each convolution take the faster of cuDNN's two APIs; here each API alone runs every
// convolution case (a graph plan that cuDNN accepts but computes wrongly would otherwise hide behind a
// faster legacy algorithm, or the other way round).
TEST_CASE("every convolution case matches the reference through either cuDNN API alone", "[cuda]") {
  struct restore {  // the other tests keep the default setting, whatever fails here
    grcnn::cuda::conv_api before = grcnn::cuda::current_conv_api();
    ~restore() { grcnn::cuda::set_conv_api(before); }
  } guard;
  for (const auto api : {grcnn::cuda::conv_api::legacy, grcnn::cuda::conv_api::graph}) {
    grcnn::cuda::set_conv_api(api);  // a graph-only search either picks a graph plan or throws
    for (const mode m : {mode::f32, mode::tf32, mode::bf16})
      check_cases(m, "conv", std::string(", ") + grcnn::cuda::name_of(api) + " API");
  }
  CHECK_THROWS_WITH(grcnn::cuda::parse_conv_api("cudnn8", "GRCNN_CUDNN_API"),
                    Catch::Contains("GRCNN_CUDNN_API") && Catch::Contains("cudnn8"));
}

// Channels-last bf16 convolutions with fewer than 8 input channels (the 7x7 stem's 3, conv1x1_odd's 5) run
// plain or on inputs zero-padded to 8 channels, whichever is faster: each form alone must match.
TEST_CASE("narrow bf16 convolutions match the reference with and without channel padding", "[cuda]") {
  struct restore {
    grcnn::cuda::channel_padding before = grcnn::cuda::current_channel_padding();
    ~restore() { grcnn::cuda::set_channel_padding(before); }
  } guard;
  using grcnn::cuda::channel_padding;
  for (const auto& [mode_, label] : {std::pair{channel_padding::always, ", padded"}, {channel_padding::never, ", plain"}}) {
    grcnn::cuda::set_channel_padding(mode_);
    check_cases(mode::bf16, "conv", label);
  }
}

// The packed kernels (16-byte accesses) against the scalar path they fall back to when an operand is off
// 16-byte alignment: the same values one element into a longer buffer must give the same bits.
// Equal bits as far as a value widened to double shows them: the same number with the same sign (so +0
// and -0 differ), or NaN on both sides.
bool same_value(double a, double b) {
  return (a == b && std::signbit(a) == std::signbit(b)) || (std::isnan(a) && std::isnan(b));
}

// C is a whole number of packs channels-last; the row kernels of batch norm see a thread's rows one at a
// time (few rows) or several at once (many), and a column block with columns past the last pack.
template <class S>
void check_packed_against_scalar(dtype t, std::int64_t N, std::int64_t C, std::int64_t H, std::int64_t W) {
  const std::int64_t n = N * C * H * W;
  INFO("shape " << N << "x" << C << "x" << H << "x" << W);
  std::mt19937 rng(static_cast<unsigned>((t == dtype::f32 ? 41 : 43) + n));
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  // Operand i: n values in an aligned buffer, and the same values at offset 1 of an n+1 buffer.
  struct operand {
    tensor aligned, shifted;
    S* a() const { return static_cast<S*>(aligned.raw()); }
    S* s() const { return static_cast<S*>(shifted.raw()) + 1; }
  };
  auto make = [&](bool random) {
    std::vector<float> v(n), w(n + 1, 0.f);
    for (std::int64_t i = 0; i < n; ++i) w[i + 1] = v[i] = random ? u(rng) : 0.f;
    return operand{tensor::from_values(shape{n}, v, t).to_device(cuda_device),
                   tensor::from_values(shape{n + 1}, w, t).to_device(cuda_device)};
  };
  auto same = [&](const char* what, const operand& o) {
    const auto a = o.aligned.to_device(cpu_device).template values<double>();
    const auto b = o.shifted.to_device(cpu_device).template values<double>();
    std::int64_t differ = 0;
    for (std::int64_t i = 0; i < n; ++i) differ += !same_value(a[i], b[i + 1]);
    INFO(what << " (" << name_of(t) << "): " << differ << " of " << n << " values differ");
    CHECK(differ == 0);
  };
  const operand x = make(true), a = make(true), b = make(true), y = make(true), dout = make(true);
  const operand out = make(false), dgate = make(false), dy = make(false), dy_only = make(false);
  const operand dx_sum = make(true);  // a gradient so far, which batch norm's backward adds into
  grcnn::cuda::gated_update_forward<S>(x.a(), a.a(), b.a(), y.a(), out.a(), n);
  grcnn::cuda::gated_update_forward<S>(x.s(), a.s(), b.s(), y.s(), out.s(), n);
  same("gated update", out);
  grcnn::cuda::gated_update_backward<S>(dout.a(), a.a(), b.a(), y.a(), dgate.a(), dy.a(), n);
  grcnn::cuda::gated_update_backward<S>(dout.s(), a.s(), b.s(), y.s(), dgate.s(), dy.s(), n);
  same("gate gradient", dgate);
  same("gated update's y gradient", dy);
  grcnn::cuda::gated_update_backward<S>(dout.a(), a.a(), b.a(), y.a(), nullptr, dy_only.a(), n);
  grcnn::cuda::gated_update_backward<S>(dout.s(), a.s(), b.s(), y.s(), nullptr, dy_only.s(), n);
  same("y gradient without the gate's", dy_only);
  CHECK(dy_only.aligned.to_device(cpu_device).template values<double>() ==
        dy.aligned.to_device(cpu_device).template values<double>());  // the one-output form gives the same bits
  grcnn::cuda::relu_backward<S>(dout.a(), x.a(), out.a(), n);
  grcnn::cuda::relu_backward<S>(dout.s(), x.s(), out.s(), n);
  same("relu backward", out);

  // Batch norm in eval mode (no reductions in the values compared): normalise with ReLU and dx.
  grcnn::cuda::batch_norm_args args;
  args.x = {N, C, H, W, H * W * C, 1, W * C, C};  // channels-last
  args.relu = true;
  std::vector<float> g(C), be(C), rm(C), rv(C);
  for (std::int64_t c = 0; c < C; ++c)
    g[c] = u(rng), be[c] = u(rng), rm[c] = u(rng), rv[c] = 0.25f + 0.25f * std::abs(u(rng) * u(rng));
  rv[C - 1] = -1.f;  // a negative variance: NaN on both paths
  auto dev_f32 = [](const std::vector<float>& v) {
    return tensor::from_values(shape{static_cast<std::int64_t>(v.size())}, v, dtype::f32).to_device(cuda_device);
  };
  const tensor gamma = dev_f32(g), beta = dev_f32(be), mean = dev_f32(rm), var = dev_f32(rv);
  tensor sm = dev_f32(std::vector<float>(C)), si = dev_f32(std::vector<float>(C)), dg = dev_f32(std::vector<float>(C)),
         db = dev_f32(std::vector<float>(C));
  const auto* G = static_cast<const float*>(gamma.raw());
  for (bool shifted : {false, true}) {
    auto p = [&](const operand& o) { return shifted ? o.s() : o.a(); };
    grcnn::cuda::batch_norm_forward_inference<S>(args, p(x), G, static_cast<const float*>(beta.raw()),
                                                 static_cast<const float*>(mean.raw()),
                                                 static_cast<const float*>(var.raw()), p(out),
                                                 static_cast<float*>(sm.raw()), static_cast<float*>(si.raw()));
    for (bool add : {false, true})  // then once more added into what dx holds
      grcnn::cuda::batch_norm_backward<S>(args, false, p(add ? a : dout), p(x), G, static_cast<const float*>(beta.raw()),
                                          static_cast<const float*>(sm.raw()), static_cast<const float*>(si.raw()),
                                          p(add ? dx_sum : dy), add, static_cast<float*>(dg.raw()),
                                          static_cast<float*>(db.raw()));
  }
  same("batch norm (eval, ReLU)", out);
  same("batch norm input gradient (eval, ReLU)", dy);
  same("batch norm input gradient added into a gradient", dx_sum);
  // The backward recomputes the ReLU's mask from x; it must be the stored output's: in eval mode
  // dx = (dy * gamma) * invstd where the output is positive and 0 * gamma * invstd elsewhere, bit for bit.
  const auto y_host = out.aligned.to_device(cpu_device).template values<float>();
  const auto dy_host = dout.aligned.to_device(cpu_device).template values<float>();
  const auto invstd = si.to_device(cpu_device).values<float>();
  std::vector<float> want(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t c = i % C;  // channels-last
    const float g0 = y_host[i] > 0.f ? dy_host[i] : 0.f;
    want[i] = (g0 * g[c]) * invstd[c];
  }
  const auto want_t = tensor::from_values(shape{n}, want, t).values<double>();
  const auto got_dx = dy.aligned.to_device(cpu_device).template values<double>();
  std::int64_t differ = 0;
  for (std::int64_t i = 0; i < n; ++i) differ += !same_value(got_dx[i], want_t[i]);
  INFO("batch norm input gradient against the output's ReLU mask (" << name_of(t) << "): " << differ << " of " << n
                                                                     << " values differ");
  CHECK(differ == 0);
}

// Batch statistics of a channels-last f32 tensor whose channels sit far from zero (mean ~300, spread 1):
// the one-read (Welford/Chan) statistics against float64 sums on the host, for the packed layout and
// for the two-pass path (the same values one element off alignment). The shapes reach several row
// groups, 32 pack columns per block with two column blocks, and threads without rows; a NaN must reach
// its channel's statistics on both paths.
void check_batch_statistics(std::int64_t N, std::int64_t C, std::int64_t H, std::int64_t W, bool with_nan) {
  const std::int64_t n = N * C * H * W, rows = N * H * W, nan_channel = 3;
  std::mt19937 rng(static_cast<unsigned>(47 + n));
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(n), w(n + 1, 0.f);
  for (std::int64_t i = 0; i < n; ++i) v[i] = 300.f + static_cast<float>(i % C % 7) + u(rng);
  if (with_nan) v[(rows / 2) * C + nan_channel] = std::numeric_limits<float>::quiet_NaN();
  for (std::int64_t i = 0; i < n; ++i) w[i + 1] = v[i];
  std::vector<double> mean(C, 0.0), var(C, 0.0);
  for (std::int64_t i = 0; i < n; ++i) mean[i % C] += v[i];
  for (auto& m : mean) m /= static_cast<double>(rows);
  for (std::int64_t i = 0; i < n; ++i) var[i % C] += (v[i] - mean[i % C]) * (v[i] - mean[i % C]);
  for (auto& q : var) q /= static_cast<double>(rows);
  grcnn::cuda::batch_norm_args args;
  args.x = {N, C, H, W, H * W * C, 1, W * C, C};
  args.momentum = 1.0;  // the running statistics become the batch's (variance unbiased)
  for (bool shifted : {false, true}) {
    const tensor x = tensor::from_values(shape{shifted ? n + 1 : n}, shifted ? w : v).to_device(cuda_device);
    const tensor y = tensor::empty(shape{n + 1}, dtype::f32, layout::plain, cuda_device);
    auto dev = [&](float f) { return tensor::from_values(shape{C}, std::vector<float>(C, f)).to_device(cuda_device); };
    tensor gamma = dev(1.f), beta = dev(0.f), rm = dev(0.f), rv = dev(1.f), sm = dev(0.f), si = dev(0.f);
    grcnn::cuda::batch_norm_forward_training<float>(
        args, static_cast<const float*>(x.raw()) + (shifted ? 1 : 0), static_cast<const float*>(gamma.raw()),
        static_cast<const float*>(beta.raw()), static_cast<float*>(rm.raw()), static_cast<float*>(rv.raw()),
        static_cast<float*>(y.raw()) + (shifted ? 1 : 0), static_cast<float*>(sm.raw()), static_cast<float*>(si.raw()));
    const auto got_mean = sm.to_device(cpu_device).values<double>(), got_invstd = si.to_device(cpu_device).values<double>(),
               got_rv = rv.to_device(cpu_device).values<double>();
    for (std::int64_t c = 0; c < C; ++c) {
      INFO((shifted ? "two-pass" : "one-read") << " statistics of [" << N << ", " << C << ", " << H << ", " << W
                                               << "], channel " << c);
      if (with_nan && c == nan_channel) {
        CHECK(std::isnan(got_mean[c]));
        CHECK(std::isnan(got_invstd[c]));
        CHECK(std::isnan(got_rv[c]));
        continue;
      }
      const double invstd = 1.0 / std::sqrt(var[c] + 1e-5);
      CHECK(std::abs(got_mean[c] - mean[c]) <= 1e-6 * mean[c]);
      CHECK(std::abs(got_invstd[c] - invstd) <= 2e-6 * invstd);
      CHECK(std::abs(got_rv[c] - var[c] * rows / (rows - 1)) <= 2e-6 * var[c]);
    }
  }
}

TEST_CASE("batch statistics stay accurate for channels far from zero, in one read or two", "[cuda]") {
  check_batch_statistics(32, 16, 8, 8, false);  // several row groups
  check_batch_statistics(2, 256, 3, 5, false);  // 32 pack columns per block, two column blocks
  check_batch_statistics(1, 16, 1, 3, false);   // most threads without a row
  check_batch_statistics(3, 48, 5, 7, false);   // 12 pack columns: the second column block is half empty
  check_batch_statistics(4, 16, 9, 7, true);    // a NaN
}

TEST_CASE("packed CUDA kernels give the bits of the scalar path they fall back to", "[cuda]") {
  for (const auto& [N, C, H, W] : {std::array<std::int64_t, 4>{2, 16, 3, 5}, std::array<std::int64_t, 4>{4, 48, 9, 10}}) {
    check_packed_against_scalar<float>(dtype::f32, N, C, H, W);
    check_packed_against_scalar<bf16>(dtype::bf16, N, C, H, W);
  }
}

TEST_CASE("device tensors round-trip, fill, accumulate and refuse host-only use with a clear error", "[cuda]") {
  std::mt19937 rng(3);
  const tensor h = uniform({2, 3, 4, 5}, rng, -1, 1, dtype::f32, layout::nhwc);
  const tensor d = h.to_device(cuda_device);
  CHECK(d.where() == cuda_device);
  CHECK(relative_error(d.to_device(cpu_device), h) == 0.0);
  CHECK(relative_error(d.to_layout(layout::plain), h) == 0.0);
  tensor acc = d.clone();
  add_inplace(acc, d);
  CHECK(relative_error(acc, h.to_dtype(dtype::f64)) > 0.0);
  const auto a = acc.values<double>(), b = h.values<double>();
  double err = 0;
  for (std::size_t i = 0; i < a.size(); ++i) err = std::max(err, std::abs(a[i] - 2 * b[i]));
  CHECK(err == 0.0);
  tensor z = tensor::full({7}, 2.5, dtype::f32, layout::plain, cuda_device);
  CHECK(z.values<double>() == std::vector<double>(7, 2.5));
  z.fill(0.0);
  CHECK(z.values<double>() == std::vector<double>(7, 0.0));

  autograd::variable host_x(h);
  try {
    (void)ops::relu<backends::cuda>(host_x);
    FAIL("a host input reached a CUDA kernel");
  } catch (const backend_error& e) {
    CHECK(std::string(e.what()).find("is on cpu") != std::string::npos);
  }
  autograd::variable f64(h.to_dtype(dtype::f64).to_device(cuda_device));
  CHECK_THROWS_WITH(ops::relu<backends::cuda>(f64), Catch::Contains("cuda computes in f32 or bf16"));
}

namespace {

struct step_result {
  double loss = 0;
  std::vector<std::string> names;  // per parameter (its first state_dict name)
  std::vector<tensor> grads;    // per parameter, plain, host; undefined where none arrived
  std::vector<tensor> buffers;  // running statistics, host
};

template <class Net>
step_result train_step(Net& net, const tensor& x, const tensor& labels, device where) {
  net.train();
  net.zero_grad();
  autograd::variable in(x.to_device(where));
  const autograd::variable loss = ops::cross_entropy<typename Net::backend>(net.forward(in), labels);
  autograd::backward(loss);
  step_result r;
  r.loss = loss.value().item();
  std::map<const void*, std::string> names;
  for (const auto& e : net.state())
    if (e.is_parameter()) names.emplace(e.parameter->cell().get(), e.name);
  for (auto* p : net.parameters()) {
    r.grads.push_back(p->grad().to_device(cpu_device).to_layout(layout::plain));
    r.names.push_back(names[p->cell().get()]);
  }
  for (auto& e : net.state())
    if (!e.is_parameter() && e.value().type() != dtype::i64) r.buffers.push_back(e.value().to_device(cpu_device));
  return r;
}

// Per parameter: relative L2 error of `got` against `want` (both undefined: skipped), sorted; the
// three largest are printed with their names.
std::vector<double> gradient_errors(const step_result& got, const step_result& want, const char* what) {
  REQUIRE(got.grads.size() == want.grads.size());
  std::vector<std::pair<double, std::string>> named;
  for (std::size_t i = 0; i < got.grads.size(); ++i) {
    INFO("parameter " << want.names[i]);
    REQUIRE(got.grads[i].defined() == want.grads[i].defined());
    if (got.grads[i].defined()) named.emplace_back(relative_l2(got.grads[i], want.grads[i]), want.names[i]);
  }
  std::sort(named.begin(), named.end());
  std::printf("  %s, largest gradient errors:", what);
  for (std::size_t k = named.size() > 3 ? named.size() - 3 : 0; k < named.size(); ++k)
    std::printf(" %s %.3g;", named[k].second.c_str(), named[k].first);
  std::printf("\n");
  std::vector<double> errs;
  for (const auto& [e, n] : named) errs.push_back(e);
  return errs;
}

// One training step of the same weights and batch on CUDA (f32), oneDNN (f32) and the reference
// backend in f64. In f32 a deep ReLU network's gradients are only as exact as the ReLU masks, which
// rounding flips near zero (PyTorch's own f32 gradients differ from f64 by percents, see docs/models.md):
// CUDA must be as close to f64 as oneDNN is (within 3x), and the loss and BN statistics tight.
template <template <class> class Model>
void compare_training_step(int batch, int size, int classes) {
  Model<backends::onednn> cpu(classes, 11);
  Model<backends::cuda> gpu(classes, 99);  // other weights, overwritten below
  Model<backends::reference<double>> exact(classes, 99);
  io::load_state_dict(gpu.state(), io::state_dict(cpu.state()));
  io::load_state_dict(exact.state(), io::state_dict(cpu.state()));
  exact.to_dtype(dtype::f64);
  gpu.to_device(cuda_device);
  std::mt19937 rng(17);
  const tensor x = uniform({batch, 3, size, size}, rng, -1, 1, dtype::f32, layout::nhwc);
  std::vector<std::int64_t> y(static_cast<std::size_t>(batch));
  for (auto& l : y) l = static_cast<std::int64_t>(rng() % static_cast<unsigned>(classes));
  const tensor labels = tensor::from_values(shape{batch}, y);

  const step_result ref = train_step(exact, x.to_dtype(dtype::f64).to_layout(layout::plain), labels, cpu_device);
  const step_result dnn = train_step(cpu, x, labels, cpu_device);
  const step_result got = train_step(gpu, x, labels, cuda_device);
  const auto e_gpu = gradient_errors(got, ref, "cuda vs f64"), e_dnn = gradient_errors(dnn, ref, "onednn vs f64"),
             e_pair = gradient_errors(got, dnn, "cuda vs onednn");
  auto median = [](const std::vector<double>& v) { return v[v.size() / 2]; };
  std::printf("training step, %zu parameter gradients, relative L2 against f64: cuda median %.3g max %.3g; onednn "
              "median %.3g max %.3g; cuda vs onednn median %.3g max %.3g\n",
              e_gpu.size(), median(e_gpu), e_gpu.back(), median(e_dnn), e_dnn.back(), median(e_pair), e_pair.back());
  std::printf("  loss f64 %.10f, cuda %.10f, onednn %.10f\n", ref.loss, got.loss, dnn.loss);
  CHECK(std::abs(got.loss - ref.loss) <= 1e-5 * std::max(1.0, std::abs(ref.loss)));
  CHECK(median(e_gpu) <= 3 * median(e_dnn) + 1e-5);
  CHECK(e_gpu.back() <= 3 * e_dnn.back() + 1e-5);
  double bn = 0, bn_dnn = 0;
  for (std::size_t i = 0; i < got.buffers.size(); ++i) {
    bn = std::max(bn, relative_error(got.buffers[i], ref.buffers[i]));
    bn_dnn = std::max(bn_dnn, relative_error(dnn.buffers[i], ref.buffers[i]));
  }
  std::printf("  BN running statistics against f64: cuda %.3g, onednn %.3g (max relative error, %zu buffers)\n", bn,
              bn_dnn, got.buffers.size());
  CHECK(bn <= 1e-4);
}

}  // namespace

TEST_CASE("page-locked host tensors upload without waiting, and a freed block is reused only after its copy", "[cuda]") {
  std::mt19937 rng(5);
  const tensor ref = uniform({32, 3, 64, 64}, rng, -1, 1, dtype::f32, layout::nhwc);
  const auto values = ref.values<float>();
  std::vector<tensor> uploaded;
  // Keep the stream busy first (device copies of 4 GiB, milliseconds on any GPU), so the uploads below
  // are still queued while the host frees their blocks and allocates and fills the next ones.
  tensor big = tensor::zeros({std::int64_t(1) << 28}, dtype::f32).to_device(cuda_device);
  std::vector<tensor> busy;
  for (int i = 0; i < 4; ++i) busy.push_back(big.clone());
  for (int i = 0; i < 6; ++i) {
    // Each block is freed right after its upload is enqueued; the next allocation of the same size must
    // not hand it out (and let the host overwrite it) before that copy has run.
    tensor pin = tensor::empty_pinned(ref.dims(), dtype::f32, layout::nhwc, cuda_device);
    REQUIRE(pin.pinned());
    REQUIRE(pin.on_host());
    float* p = pin.data<float>();  // physical (channels-last) order; values are in logical order
    for (std::size_t k = 0; k < values.size(); ++k) p[pin.physical_index(k)] = values[k] * static_cast<float>(i + 1);
    uploaded.push_back(pin.to_device(cuda_device));
  }
  for (int i = 0; i < 6; ++i) {
    const auto got = uploaded[static_cast<std::size_t>(i)].values<float>();
    std::size_t wrong = 0;
    for (std::size_t k = 0; k < values.size(); ++k) wrong += got[k] != values[k] * static_cast<float>(i + 1);
    INFO("upload " << i);
    CHECK(wrong == 0);
  }
}

TEST_CASE("normal draws on the GPU are the host's draws (f32, bf16, f64; plain and channels-last)", "[cuda]") {
  const normal_key key{.seed = 77, .stream = 5};
  for (layout l : {layout::plain, layout::nhwc}) {
    const tensor host = standard_normal({3, 37, 9, 31}, key, dtype::f32, l);  // groups straddle channels
    const tensor dev = standard_normal({3, 37, 9, 31}, key, dtype::f32, l, cuda_device);
    REQUIRE(dev.where() == cuda_device);
    REQUIRE(dev.memory_layout() == l);
    // The same float arithmetic; the device contracts into FMAs where the host may not.
    CHECK(relative_error(dev, host) < 1e-6);
    const tensor b = standard_normal({3, 37, 9, 31}, key, dtype::bf16, l, cuda_device);
    CHECK(relative_error(b, host) < 4e-3);
    const tensor d = standard_normal({3, 37, 9, 31}, key, dtype::f64, l, cuda_device);
    CHECK(relative_error(d, host) < 1e-6);
  }
  CHECK_THROWS_WITH(standard_normal({2, 3}, key, dtype::f16, layout::plain, cuda_device),
                    Catch::Contains("f16 is not supported on the device"));
}

TEST_CASE("grcnn_small: a training step on CUDA is as exact as oneDNN's", "[cuda][model]") {
  compare_training_step<models::grcnn_small>(16, 32, 10);
}

TEST_CASE("grcnn55: a training step on CUDA is as exact as oneDNN's (loss, gradients, BN statistics)",
          "[cuda][model][full]") {
  compare_training_step<models::grcnn55>(2, 224, 1000);  // the AvgPool2d(7) head wants 224
}

// bf16 mixed precision on the GPU: the fp32 truth (oneDNN), CUDA's bf16 step and the ideal bf16 emulation
// (reference backend: every op in double, its output rounded once to bf16; test_precision.cpp). bf16
// gradients differ from fp32 by tens of percent in relative L2 (PyTorch's autocast's do too:
// test_model_parity), so CUDA must be as accurate as the emulation.
TEST_CASE("grcnn_small: a bf16 mixed-precision step on CUDA is as accurate as the ideal bf16", "[cuda][model]") {
  models::grcnn_small<backends::onednn> truth(10, 7);
  models::grcnn_small<backends::cuda> gpu(10, 99);
  models::grcnn_small<backends::reference<double>> ideal(10, 99);
  io::load_state_dict(gpu.state(), io::state_dict(truth.state()));
  io::load_state_dict(ideal.state(), io::state_dict(truth.state()));
  gpu.to_device(cuda_device);
  gpu.set_precision(nn::precision::bf16_mixed);
  ideal.set_precision(nn::precision::bf16_mixed);
  std::mt19937 rng(5);
  const tensor x = uniform({8, 3, 32, 32}, rng, -1.5, 1.5, dtype::f32, layout::nhwc);
  std::vector<std::int64_t> y(8);
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = static_cast<std::int64_t>((3 * i + 1) % 10);
  const tensor labels = tensor::from_values(shape{8}, y);
  const step_result fp32 = train_step(truth, x, labels, cpu_device);
  const step_result got = train_step(gpu, x, labels, cuda_device);
  const step_result emulated = train_step(ideal, x.to_layout(layout::plain), labels, cpu_device);
  auto global = [&](const step_result& a) {
    double num = 0, den = 0;
    for (std::size_t i = 0; i < a.grads.size(); ++i) {
      if (!a.grads[i].defined()) continue;
      CHECK(a.grads[i].type() == dtype::f32);  // gradients of the f32 masters
      const auto va = a.grads[i].values<double>(), vb = fp32.grads[i].values<double>();
      for (std::size_t k = 0; k < va.size(); ++k) num += (va[k] - vb[k]) * (va[k] - vb[k]), den += vb[k] * vb[k];
    }
    return std::sqrt(num / den);
  };
  const double e_gpu = global(got), e_ideal = global(emulated);
  const auto med_gpu = gradient_errors(got, fp32, "cuda bf16 vs fp32"), med_ideal = gradient_errors(emulated, fp32, "ideal bf16 vs fp32");
  std::printf("bf16 step, gradients against fp32 (global relative L2): cuda %.3g, ideal bf16 %.3g; medians %.3g, %.3g; "
              "loss fp32 %.6f cuda %.6f ideal %.6f\n",
              e_gpu, e_ideal, med_gpu[med_gpu.size() / 2], med_ideal[med_ideal.size() / 2], fp32.loss, got.loss, emulated.loss);
  CHECK(std::abs(got.loss - fp32.loss) <= 1e-2 * std::abs(fp32.loss));
  CHECK(e_gpu <= 1.5 * e_ideal);
  CHECK(med_gpu[med_gpu.size() / 2] <= 1.5 * med_ideal[med_ideal.size() / 2]);
  double bn = 0;
  for (std::size_t i = 0; i < got.buffers.size(); ++i) {
    CHECK(got.buffers[i].type() == dtype::f32);
    bn = std::max(bn, relative_error(got.buffers[i], fp32.buffers[i]));
  }
  CHECK(bn < 3e-2);
}

// Convolution searches are shared across batch sizes within a power-of-two bucket: a batch of another
// size in a searched bucket (an epoch's last, partial batch) rebuilds the bucket's choices for all three
// directions without a search, a batch in a new bucket searches; every batch matches the reference.
TEST_CASE("convolutions of a new batch size reuse their bucket's search", "[cuda]") {
  std::mt19937 rng(33);
  const ops::conv2d_params p = ops::conv2d_params::square(1, 1);
  // 16 -> 24 channels over 11 x 13: a problem no other test uses, so its first batch searches.
  const tensor w64 = uniform({24, 16, 3, 3}, rng, -0.2, 0.2);
  for (const dtype t : {dtype::f32, dtype::bf16}) {
    INFO((t == dtype::bf16 ? "bf16" : "f32"));
    const tensor w = w64.to_dtype(t);
    enum class expect { search, adopt, cached };
    struct batch {
      std::int64_t n;
      expect e;
    };
    for (const batch b : {batch{16, expect::search}, batch{12, expect::adopt}, batch{9, expect::adopt},
                          batch{16, expect::cached}, batch{24, expect::search}, batch{32, expect::adopt},
                          batch{8, expect::search}}) {
      INFO("batch " << b.n);
      const tensor x = uniform({b.n, 16, 11, 13}, rng, -1, 1, t, layout::nhwc);
      const tensor seed = uniform({b.n, 24, 11, 13}, rng, -1, 1, t, layout::nhwc);
      const auto before = grcnn::cuda::conv_stats();
      variable xd(x.to_device(cuda_device), true), wd(w.to_device(cuda_device), true);
      const variable yd = ops::conv2d<backends::cuda>(xd, wd, variable(), p);
      autograd::backward(yd, seed.to_device(cuda_device));
      const auto after = grcnn::cuda::conv_stats();
      // Three directions: forward, backward data, backward filter. An adoption that cuDNN cannot rebuild
      // for the new shape (another GPU or cuDNN release) falls back to a search, so an adopting batch
      // asks for at least one rebuild and no more than the three directions' searches besides (all
      // three rebuilt on the H100, cuDNN 9.19).
      const std::size_t searched = after.searches - before.searches, adopted = after.adoptions - before.adoptions;
      INFO(searched << " searches, " << adopted << " adoptions");
      switch (b.e) {
        case expect::search: CHECK((searched == 3 && adopted == 0)); break;
        case expect::adopt: CHECK((adopted >= 1 && adopted <= 3 && searched <= 3 && searched + adopted >= 3)); break;
        case expect::cached: CHECK((searched == 0 && adopted == 0)); break;
      }
      // The reference on the same (rounded) values in double.
      variable xr(x.to_dtype(dtype::f64).to_layout(layout::plain), true), wr(w.to_dtype(dtype::f64), true);
      const variable yr = ops::conv2d<backends::reference<double>>(xr, wr, variable(), p);
      autograd::backward(yr, seed.to_dtype(dtype::f64).to_layout(layout::plain));
      const double tol = t == dtype::bf16 ? 2e-2 : 1e-5;
      GRCNN_CHECK_CLOSE("output", yd.value().to_device(cpu_device).to_dtype(dtype::f64).to_layout(layout::plain),
                        yr.value(), tol);
      GRCNN_CHECK_CLOSE("dx", xd.grad().to_device(cpu_device).to_dtype(dtype::f64).to_layout(layout::plain), xr.grad(),
                        tol);
      GRCNN_CHECK_CLOSE("dw", wd.grad().to_device(cpu_device).to_dtype(dtype::f64).to_layout(layout::plain), wr.grad(),
                        tol);
    }
  }
}

TEST_CASE("a steady-state CUDA training step takes no new device memory from the driver", "[cuda]") {
  models::grcnn_small<backends::cuda> net(10, 5);
  net.to_device(cuda_device);
  train::sgd opt(net.parameters(), {.lr = 0.01, .weight_decay = 1e-4, .momentum = 0.9});
  std::mt19937 rng(8);
  const tensor x = uniform({32, 3, 32, 32}, rng, -1, 1, dtype::f32, layout::nhwc).to_device(cuda_device);
  std::vector<std::int64_t> y(32);
  for (auto& l : y) l = static_cast<std::int64_t>(rng() % 10u);
  const tensor labels = tensor::from_values(shape{32}, y).to_device(cuda_device);
  auto step = [&] {
    net.zero_grad();
    const autograd::variable loss = ops::cross_entropy<backends::cuda>(net.forward(autograd::variable(x)), labels);
    autograd::backward(loss);
    opt.step();
    return loss.value().item();
  };
  const double first = step();
  for (int i = 0; i < 3; ++i) step();
  auto& rt = runtime_for(cuda_device);
  const auto before = rt.memory_stats();
  const auto searches = grcnn::cuda::conv_stats().searches;
  double last = 0;
  for (int i = 0; i < 5; ++i) last = step();
  const auto after = rt.memory_stats();
  INFO("pool reserved " << after.pool_reserved << " bytes, peak in use " << after.peak_bytes_in_use);
  CHECK(after.system_allocations == before.system_allocations);
  CHECK(after.pool_reserved == before.pool_reserved);
  CHECK(grcnn::cuda::conv_stats().searches == searches);
  CHECK(std::isfinite(last));
  CHECK(last < first);  // nine SGD steps on one batch lower its loss
}

// The device updates are multi-tensor (one launch per 48 tensors): 53 tensors of 1 to 190 elements take
// two launches, and tensor 7 has no gradient on odd steps, so its AdamW step count lags the others'.
TEST_CASE("device SGD (Nesterov, dampening) and AdamW updates follow the host optimizers", "[cuda]") {
  constexpr int kTensors = 53, kSteps = 4, kSometimes = 7;
  std::mt19937 rng(21);
  std::vector<tensor> w0;
  std::vector<std::vector<tensor>> grads(kSteps);
  for (int t = 0; t < kTensors; ++t) {
    const std::int64_t n = 1 + (t * 37) % 190;
    w0.push_back(uniform({n}, rng, -1, 1, dtype::f32));
    for (auto& g : grads) g.push_back(uniform({n}, rng, -1, 1, dtype::f32));
  }
  auto trajectory = [&](device where, auto make) {
    std::vector<autograd::variable> ws;
    ws.reserve(kTensors);
    std::vector<autograd::variable*> params;
    for (const auto& w : w0) {
      ws.emplace_back(w.clone().to_device(where), true);  // a copy: to_device(cpu) would share w0's storage
      params.push_back(&ws.back());
    }
    auto opt = make(params);
    for (int k = 0; k < kSteps; ++k) {
      for (int t = 0; t < kTensors; ++t) {
        if (t == kSometimes && k % 2 == 1)
          ws[t].zero_grad();
        else
          ws[t].set_grad(grads[k][t].to_device(where));
      }
      opt.step();
    }
    std::vector<tensor> out;
    for (auto& w : ws) out.push_back(w.value().to_device(cpu_device));
    return out;
  };
  auto largest_error = [](const std::vector<tensor>& got, const std::vector<tensor>& want) {
    double e = 0;
    for (std::size_t t = 0; t < got.size(); ++t) e = std::max(e, relative_error(got[t], want[t]));
    return e;
  };
  auto nesterov = [](std::vector<autograd::variable*> p) {
    return train::sgd(std::move(p), {.lr = 0.1, .weight_decay = 1e-2, .momentum = 0.9, .nesterov = true});
  };
  auto damped = [](std::vector<autograd::variable*> p) {
    return train::sgd(std::move(p), {.lr = 0.05, .weight_decay = 1e-3, .momentum = 0.8, .dampening = 0.3});
  };
  auto plain = [](std::vector<autograd::variable*> p) {
    return train::sgd(std::move(p), {.lr = 0.05, .weight_decay = 1e-3});  // no momentum buffer
  };
  auto adam = [](std::vector<autograd::variable*> p) {
    return train::adamw(std::vector<train::param_group>{
        {.params = std::move(p), .lr = 1e-2, .weight_decay = 0.05, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8}});
  };
  CHECK(largest_error(trajectory(cuda_device, nesterov), trajectory(cpu_device, nesterov)) < 1e-6);
  CHECK(largest_error(trajectory(cuda_device, damped), trajectory(cpu_device, damped)) < 1e-6);
  CHECK(largest_error(trajectory(cuda_device, plain), trajectory(cpu_device, plain)) < 1e-6);
  CHECK(largest_error(trajectory(cuda_device, adam), trajectory(cpu_device, adam)) < 1e-6);
}

int main(int argc, char** argv) {
  const auto r = grcnn::cuda::probe();
  if (r.device_count == 0) {
    std::printf("SKIPPED: no usable GPU (%s)\n", r.reason.c_str());
    return 77;
  }
  std::printf("device 0: %s, sm_%d, cuDNN %zu\n", r.name.c_str(), r.compute_capability, r.cudnn_version);
  return Catch::Session().run(argc, argv);
}
