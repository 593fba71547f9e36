#pragma once
// AugMix's sampling and mixing (google-research/augmix, augment_and_mix): `width` chains of 1-3
// random operations each, chain weights w ~ Dirichlet(alpha), skip weight m ~ Beta(alpha, alpha), and
//   x_aug = (1 - m) * pre(x) + m * sum_i w_i * pre(chain_i(x))
// on normalised images (pre = ToTensor + Normalize), exactly the original's order of operations in f32.
// Magnitudes: level' ~ U(0.1, severity); int_param(l, max) = floor(l * max / 10), float_param = l * max / 10.
#include <array>
#include <random>
#include <string_view>
#include <vector>

#include "grcnn/data/augment.hpp"
#include "grcnn/data/augmix_ops.hpp"

namespace grcnn::data::augmix {

// The nine default operations, and the thirteen of --all-ops (adds the four enhancements, which the
// original leaves out by default because they overlap ImageNet-C's corruptions). Orders as the original's
// augmentations and augmentations_all lists.
enum class op_kind {
  autocontrast, equalize, posterize, rotate, solarize, shear_x, shear_y, translate_x, translate_y,
  color, contrast, brightness, sharpness
};
inline constexpr std::array<op_kind, 9> default_ops{op_kind::autocontrast, op_kind::equalize, op_kind::posterize,
                                                    op_kind::rotate,       op_kind::solarize, op_kind::shear_x,
                                                    op_kind::shear_y,      op_kind::translate_x, op_kind::translate_y};
inline constexpr std::array<op_kind, 13> all_ops{op_kind::autocontrast, op_kind::equalize,    op_kind::posterize,
                                                 op_kind::rotate,       op_kind::solarize,    op_kind::shear_x,
                                                 op_kind::shear_y,      op_kind::translate_x, op_kind::translate_y,
                                                 op_kind::color,        op_kind::contrast,    op_kind::brightness,
                                                 op_kind::sharpness};

constexpr std::string_view name_of(op_kind k) {
  constexpr std::array<std::string_view, 13> names{"autocontrast", "equalize", "posterize",   "rotate",
                                                   "solarize",     "shear_x",  "shear_y",     "translate_x",
                                                   "translate_y",  "color",    "contrast",    "brightness",
                                                   "sharpness"};
  return names[static_cast<std::size_t>(k)];
}

// One operation with its drawn magnitude: bits (posterize), threshold (solarize), degrees (rotate),
// shear factor, pixels (translate) or enhancement factor; unused for autocontrast and equalize.
struct op_step {
  op_kind kind = op_kind::autocontrast;
  double param = 0;
};

inline rgb_image apply(const rgb_image& img, const op_step& s) {
  switch (s.kind) {
    case op_kind::autocontrast: return autocontrast(img);
    case op_kind::equalize: return equalize(img);
    case op_kind::posterize: return posterize(img, static_cast<int>(s.param));
    case op_kind::rotate: return rotate(img, s.param);
    case op_kind::solarize: return solarize(img, static_cast<int>(s.param));
    case op_kind::shear_x: return shear_x(img, s.param);
    case op_kind::shear_y: return shear_y(img, s.param);
    case op_kind::translate_x: return translate_x(img, s.param);
    case op_kind::translate_y: return translate_y(img, s.param);
    case op_kind::color: return color(img, s.param);
    case op_kind::contrast: return contrast(img, s.param);
    case op_kind::brightness: return brightness(img, s.param);
    case op_kind::sharpness: return sharpness(img, s.param);
  }
  throw error("augmix: unknown operation");
}

struct options {
  int severity = 3;     // 1..10 (the original: 1 for ImageNet, 3 for CIFAR)
  int width = 3;        // chains
  int depth = -1;       // operations per chain; -1: uniform in {1, 2, 3}
  double alpha = 1.0;   // Dirichlet and Beta parameter (aug_prob_coeff)
  int image_size = 0;   // translate magnitude base (IMAGE_SIZE / 3); 0: the image's width
  bool all_ops = false; // draw from all thirteen operations (the original's --all-ops)
};

inline void check(const options& o) {
  GRCNN_CHECK(o.severity >= 1 && o.severity <= 10, error, "augmix: severity ", o.severity, " outside [1, 10]");
  GRCNN_CHECK(o.width >= 1, error, "augmix: width ", o.width, " must be at least 1");
  GRCNN_CHECK(o.depth == -1 || o.depth >= 1, error, "augmix: depth ", o.depth, " must be -1 (random 1-3) or >= 1");
  GRCNN_CHECK(o.alpha > 0, error, "augmix: alpha ", o.alpha, " must be positive");
}

// The magnitude of `kind` drawn as augmentations.py does (sign flips with probability 0.5).
template <class Rng>
op_step sample_step(op_kind kind, int severity, int image_size, Rng& rng) {
  std::uniform_real_distribution<double> level(0.1, static_cast<double>(severity)), coin(0.0, 1.0);
  auto int_param = [](double l, double max) { return static_cast<double>(static_cast<int>(l * max / 10)); };
  auto float_param = [](double l, double max) { return l * max / 10; };
  op_step s{kind, 0.0};
  switch (kind) {
    case op_kind::autocontrast:
    case op_kind::equalize: break;
    case op_kind::posterize: s.param = 4 - int_param(level(rng), 4); break;
    case op_kind::solarize: s.param = 256 - int_param(level(rng), 256); break;
    case op_kind::rotate: s.param = int_param(level(rng), 30); break;
    case op_kind::shear_x:
    case op_kind::shear_y: s.param = float_param(level(rng), 0.3); break;
    case op_kind::translate_x:
    case op_kind::translate_y: s.param = int_param(level(rng), image_size / 3.0); break;
    case op_kind::color:
    case op_kind::contrast:
    case op_kind::brightness:
    case op_kind::sharpness: s.param = float_param(level(rng), 1.8) + 0.1; break;
  }
  if (kind == op_kind::rotate || kind == op_kind::shear_x || kind == op_kind::shear_y || kind == op_kind::translate_x ||
      kind == op_kind::translate_y)
    if (coin(rng) > 0.5) s.param = -s.param;
  return s;
}

// Everything random about one AugMix image.
struct plan {
  std::vector<std::vector<op_step>> chains;
  std::vector<float> weights;  // Dirichlet(alpha), f32 as the original (np.float32)
  float m = 0;                 // Beta(alpha, alpha)
};

template <class Rng>
plan sample_plan(const options& o, int image_width, Rng& rng) {
  check(o);
  plan p;
  std::gamma_distribution<double> g(o.alpha, 1.0);
  std::vector<double> w(static_cast<std::size_t>(o.width));
  double sum = 0;
  for (auto& v : w) sum += (v = g(rng));
  for (double v : w) p.weights.push_back(static_cast<float>(v / sum));
  const double a = g(rng), b = g(rng);
  p.m = static_cast<float>(a / (a + b));
  std::uniform_int_distribution<int> depth(1, 3);
  std::uniform_int_distribution<std::size_t> pick(0, (o.all_ops ? all_ops.size() : default_ops.size()) - 1);
  const int size = o.image_size > 0 ? o.image_size : image_width;
  for (int i = 0; i < o.width; ++i) {
    const int d = o.depth > 0 ? o.depth : depth(rng);
    std::vector<op_step> chain;
    for (int k = 0; k < d; ++k) {
      const std::size_t i = pick(rng);
      chain.push_back(sample_step(o.all_ops ? all_ops[i] : default_ops[i], o.severity, size, rng));
    }
    p.chains.push_back(std::move(chain));
  }
  return p;
}

// pre(img) = (img / 255 - mean) / std per channel, f32, HWC order.
inline std::vector<float> normalized(const rgb_image& img, const std::array<float, 3>& mean, const std::array<float, 3>& stdev) {
  std::vector<float> out(img.pixels.size());
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = (static_cast<float>(img.pixels[i]) / 255.0f - mean[i % 3]) / stdev[i % 3];
  return out;
}

// The mixed, normalised image (HWC, f32) for a drawn plan.
inline std::vector<float> mix(const rgb_image& img, const plan& p, const std::array<float, 3>& mean,
                              const std::array<float, 3>& stdev) {
  GRCNN_CHECK(p.weights.size() == p.chains.size(), error, "augmix: ", p.weights.size(), " weights for ",
              p.chains.size(), " chains");
  std::vector<float> acc(img.pixels.size(), 0.0f);
  for (std::size_t i = 0; i < p.chains.size(); ++i) {
    rgb_image a = img;
    for (const op_step& s : p.chains[i]) a = apply(a, s);
    const std::vector<float> pre = normalized(a, mean, stdev);
    for (std::size_t k = 0; k < acc.size(); ++k) acc[k] += p.weights[i] * pre[k];
  }
  const std::vector<float> clean = normalized(img, mean, stdev);
  std::vector<float> out(acc.size());
  for (std::size_t k = 0; k < out.size(); ++k) out[k] = (1.0f - p.m) * clean[k] + p.m * acc[k];
  return out;
}

// AugMix as an extra loader view (data::pipeline::views): an independent plan per call. Two of these
// next to the clean view make the original's JSD batch (clean, augmix, augmix).
inline view_fn view(options o) {
  check(o);
  return [o](const rgb_image& img, augment_rng& rng, const std::array<float, 3>& mean, const std::array<float, 3>& stdev) {
    return mix(img, sample_plan(o, img.width, rng), mean, stdev);
  };
}

}  // namespace grcnn::data::augmix
