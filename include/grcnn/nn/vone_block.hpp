#pragma once
// The VOneBlock stem at run time, with VOneNet's module names: vone_block.simple_conv_q0.weight and
// vone_block.simple_conv_q1.weight (fixed Gabor banks, [C, 3, k, k]) and bottleneck.weight (1x1,
// trainable). Forward: q0 = conv(x, bank0), q1 = conv(x, bank1 of the complex channels), the
// response op (ops/vone.hpp), then the bottleneck.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "grcnn/core/random.hpp"
#include "grcnn/nn/gabor.hpp"
#include "grcnn/nn/layers.hpp"
#include "grcnn/nn/specs.hpp"

namespace grcnn::nn {

// The Gabor banks hold a few hundred denormal floats (the tails of the Gaussian envelopes, below
// 1.2e-38). x86 multiplies denormals through microcode assists, which made the host convolution of the
// banks 2.3 times slower; the copy convolved on the host has them flushed to zero (a difference below
// 1e-35 per output), while the bank itself keeps VOneNet's values. Returns `bank` itself when it is on a
// device, not f32, or has no denormal.
inline variable without_denormals(const variable& bank) {
  const tensor& w = bank.value();
  if (!w.on_host() || w.type() != dtype::f32 || w.memory_layout() == layout::opaque) return bank;
  const float* p = w.data<float>();
  const std::int64_t n = w.numel();
  bool any = false;
  for (std::int64_t i = 0; i < n; ++i) any |= p[i] != 0.0f && std::abs(p[i]) < std::numeric_limits<float>::min();
  if (!any) return bank;
  tensor flushed = w.clone();
  float* q = flushed.data<float>();
  for (std::int64_t i = 0; i < n; ++i)
    if (std::abs(q[i]) < std::numeric_limits<float>::min()) q[i] = 0.0f;
  return variable(flushed, false);
}

class vone_module {
 public:
  GRCNN_NOINLINE vone_module(const vone_options& o, initializer& rng) : o_(o) {
    const int C = o.channels();
    const auto p = gabor::sample_v1_parameters(
        {.features = C, .seed = o.gabor_seed, .sf_corr = o.sf_corr, .sf_max = o.sf_max, .sf_min = o.sf_min});
    // Each filter lives in one random input channel, drawn separately for the two banks (VOneNet uses
    // torch's global generator; ours is the network's seeded stream).
    auto channels = [&] {
      std::vector<int> c(static_cast<std::size_t>(C));
      std::uniform_int_distribution<int> d(0, 2);
      for (auto& v : c) v = d(rng.rng);
      return c;
    };
    const gabor::bank_options bo{.in_channels = 3, .kernel_size = o.kernel_size,
                                 .pixels_per_degree = o.image_size / o.visual_degrees};
    q0_ = variable(gabor::make_bank(p, channels(), bo), false);
    gabor::bank_options b1 = bo;
    b1.phase_offset = std::numbers::pi / 2;
    q1_ = variable(gabor::make_bank(p, channels(), b1), false);
    parameters_ = p;
    bottleneck_ = std::make_unique<conv2d_layer>(C, o.out_channels, 1, 1, 0, 1, 1, false, conv_init::kaiming_normal_fan_out, rng);
    noise_seed_ = rng.rng();
  }

  template <class B>
  GRCNN_NOINLINE variable forward(const node_inputs& in, const forward_context& ctx) {
    const variable& x = in[0];
    const auto conv = ops::conv2d_params::square(o_.stride, o_.kernel_size / 2);
    // Under mixed precision the fixed Gabor banks are cast to the activations' dtype like any weight.
    const dtype t = x.value().type();
    // (bf16 dot products treat denormals as zero: no flush needed there.)
    auto as_input = [&](const variable& w) {
      return runs_mixed(w.value().type(), t) ? ops::cast<B>(w, t) : without_denormals(w);
    };
    const variable q0 = ops::conv2d<B>(x, as_input(q0_), variable(), conv);
    variable q1;
    if (o_.complex_channels > 0) {
      // Only the complex cells use the quadrature bank; its simple rows are never convolved.
      const variable bank = ops::rows(q1_, o_.simple_channels, o_.channels());
      q1 = ops::conv2d<B>(x, as_input(bank), variable(), conv);
    }
    ctx.emit("vone_block", "simple_conv_q0", q0);
    const ops::vone_response_options ro{.simple_channels = o_.simple_channels, .k_exc = o_.k_exc,
                                        .noise = noise_mode(), .noise_scale = o_.noise_scale, .noise_level = o_.noise_level};
    const variable v = ops::vone_response<B>(q0, q1, ro.noise == ops::vone_math::noise_none ? tensor() : draw_noise(q0.value()), ro);
    ctx.emit("", "vone_block", v);
    const variable b = bottleneck_->forward<B>(v);
    ctx.emit("", "bottleneck", b);
    return b;
  }

  GRCNN_NOINLINE void collect(state_list& out) {
    out.push_back({"vone_block.simple_conv_q0.weight", &q0_, nullptr, false});
    out.push_back({"vone_block.simple_conv_q1.weight", &q1_, nullptr, false});
    bottleneck_->collect("bottleneck", out);
  }

  // Noise control. By default every forward draws fresh noise (in training and evaluation alike, as
  // VOneNet). fix_noise(seed) makes each sample's noise map a function of (seed, its index in the
  // batch), the same on every call, as VOneNet's fix_noise; release_noise() returns to fresh draws;
  // disable_noise() turns the stochastic stage off (the final ReLU stays, a no-op on its input).
  void fix_noise(std::uint64_t seed) { fixed_ = true, fixed_seed_ = seed, disabled_ = false; }
  void release_noise() { fixed_ = false, disabled_ = false; }
  void disable_noise() { disabled_ = true; }
  bool noise_fixed() const { return fixed_; }
  // The fresh draws made so far (each draw's stream number). Training checkpoints keep it, so a resumed
  // run continues the noise sequence where the interrupted one stood rather than repeating it.
  std::uint64_t noise_calls() const { return calls_; }
  void set_noise_calls(std::uint64_t calls) { calls_ = calls; }
  // Data-parallel training: rank r of W draws call c from stream (c - 1) * W + r + 1, so the ranks'
  // batches get different noise while the counter (and so a checkpoint) stays the same on every rank.
  // A world of one keeps stream c.
  void set_noise_rank(int rank, int world) {
    GRCNN_CHECK(world >= 1 && rank >= 0 && rank < world, error, "vone: noise rank ", rank, " of a world of ", world);
    rank_ = static_cast<std::uint64_t>(rank), world_ = static_cast<std::uint64_t>(world);
  }

  // The graph module's optional capabilities (nn/module.hpp): the noise counter travels with training
  // checkpoints, and each data-parallel replica draws from its own streams.
  void set_replica(int rank, int world) { set_noise_rank(rank, world); }
  static constexpr const char* run_state_key = "vone_noise_calls";
  void save_run_state(run_state& s) const { s[run_state_key] = std::to_string(calls_); }
  // Checkpoints from before the noise counter was kept (no key) restart the fresh-noise sequence.
  void load_run_state(const run_state& s, const std::string& where) {
    const auto it = s.find(run_state_key);
    if (it == s.end()) return;
    std::uint64_t calls = 0;
    const auto r = std::from_chars(it->second.data(), it->second.data() + it->second.size(), calls);
    GRCNN_CHECK(r.ec == std::errc() && r.ptr == it->second.data() + it->second.size(), io_error, "resume: '", where,
                "' has a malformed '", run_state_key, "': '", it->second, "'");
    calls_ = calls;
  }

  // The parameters sampled at construction (banks loaded from a state dict may come from others).
  const gabor::v1_parameters& gabor_parameters() const { return parameters_; }
  const vone_options& options() const { return o_; }

 private:
  ops::vone_math::noise_mode noise_mode() const {
    if (disabled_ || o_.noise == vone_noise::none) return ops::vone_math::noise_none;
    return o_.noise == vone_noise::neuronal ? ops::vone_math::noise_neuronal : ops::vone_math::noise_gaussian;
  }
  // Standard normal draws like q0 (its dtype, layout and device; core/random.hpp): stream 0 of the fixed
  // seed, or stream `call` (from 1) of the network's noise seed, so a sample's map is a function of
  // (seed, call, sample) fresh and (seed, sample) fixed, drawn where q0 lives.
  tensor draw_noise(const tensor& q0) {
    const normal_key key{.seed = fixed_ ? fixed_seed_ : noise_seed_, .stream = fixed_ ? 0 : (++calls_ - 1) * world_ + rank_ + 1};
    return standard_normal(q0.dims(), key, q0.type(), q0.memory_layout(), q0.where());
  }

  vone_options o_;
  variable q0_, q1_;
  gabor::v1_parameters parameters_;
  std::unique_ptr<conv2d_layer> bottleneck_;
  bool fixed_ = false, disabled_ = false;
  std::uint64_t fixed_seed_ = 0, noise_seed_ = 0, calls_ = 0, rank_ = 0, world_ = 1;
};

}  // namespace grcnn::nn
