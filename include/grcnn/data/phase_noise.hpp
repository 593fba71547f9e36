#pragma once
// Phase randomisation of images (the texture/noise fine-tuning's noise): keep the Fourier amplitude
// spectrum, replace the phase. Modes:
//   uniform, permute  the authors' package (phase.randomise): an n-dimensional FFT of the H x W x 3
//                     array as-is (so also along the colour axis); the new phase is i.i.d. U(-pi, pi)
//                     (uniform) or the phase array with its rows (axis 0) shuffled (permute); the image
//                     is round(|inverse FFT|), since the new phase is not Hermitian. Deviation: values
//                     above 255 are clipped (numpy's uint8 cast wraps them).
//   per_channel       the standard method (Portilla-Simoncelli / Freeman et al. noise): a 2-D FFT per
//                     colour channel, so each channel keeps its own amplitude spectrum, and one
//                     Hermitian-symmetric random phase added to every channel's spectrum, so the inverse
//                     is real and the channels' cross-spectra, hence their means, variances and colour
//                     correlations, are kept (up to the final rounding and clipping): a grey image stays
//                     grey. The name says what is per channel: the FFT and the amplitude, not the phase.
// The FFT is Eigen's (unsupported/Eigen/FFT, kissfft), applied along each axis in turn.
#include <algorithm>
#include <cmath>
#include <complex>
#include <numbers>
#include <numeric>
#include <array>
#include <random>
#include <string_view>
#include <unsupported/Eigen/FFT>
#include <vector>

#include "grcnn/data/image.hpp"

namespace grcnn::data::phase {

enum class mode { uniform, permute, per_channel };

inline mode parse_mode(std::string_view s) {
  if (s == "uniform") return mode::uniform;
  if (s == "permute") return mode::permute;
  if (s == "per-channel" || s == "per_channel") return mode::per_channel;
  throw error("phase noise: unknown mode '" + std::string(s) + "' (uniform | permute | per-channel)");
}

using field = std::vector<std::complex<double>>;  // row-major [H][W][C]

// In-place DFT along one axis of an [n0][n1][n2] array (numpy's conventions: the inverse divides by n).
inline void fft_axis(field& a, const std::array<int, 3>& n, int axis, bool inverse, Eigen::FFT<double>& fft) {
  const std::array<std::size_t, 3> stride{static_cast<std::size_t>(n[1]) * n[2], static_cast<std::size_t>(n[2]), 1};
  const int len = n[static_cast<std::size_t>(axis)];
  if (len == 1) return;
  std::vector<std::complex<double>> line(static_cast<std::size_t>(len)), out(static_cast<std::size_t>(len));
  const int o1 = axis == 0 ? 1 : 0, o2 = axis == 2 ? 1 : 2;
  for (int i = 0; i < n[static_cast<std::size_t>(o1)]; ++i)
    for (int j = 0; j < n[static_cast<std::size_t>(o2)]; ++j) {
      const std::size_t base = static_cast<std::size_t>(i) * stride[static_cast<std::size_t>(o1)] +
                               static_cast<std::size_t>(j) * stride[static_cast<std::size_t>(o2)];
      const std::size_t s = stride[static_cast<std::size_t>(axis)];
      for (int k = 0; k < len; ++k) line[static_cast<std::size_t>(k)] = a[base + static_cast<std::size_t>(k) * s];
      if (inverse)
        fft.inv(out, line);
      else
        fft.fwd(out, line);
      for (int k = 0; k < len; ++k) a[base + static_cast<std::size_t>(k) * s] = out[static_cast<std::size_t>(k)];
    }
}
// The DFT over the given axes (numpy's fftn / ifftn over them).
inline void fftn(field& a, const std::array<int, 3>& n, std::initializer_list<int> axes, bool inverse) {
  Eigen::FFT<double> fft;
  for (int ax : axes) fft_axis(a, n, ax, inverse, fft);
}

inline field to_field(const rgb_image& img) {
  field f(img.pixels.size());
  for (std::size_t i = 0; i < f.size(); ++i) f[i] = static_cast<double>(img.pixels[i]);
  return f;
}
inline std::uint8_t to_byte(double v) { return static_cast<std::uint8_t>(std::clamp(std::nearbyint(v), 0.0, 255.0)); }

// The authors' algorithm for a given new phase (H*W*3 values, row-major): the complex image
// inverse-FFT(|FFT(img)| * exp(i * phase)) before the modulus (its spectrum's amplitude is the image's).
inline field field_with_phase(const rgb_image& img, const std::vector<double>& new_phase) {
  GRCNN_CHECK(new_phase.size() == img.pixels.size(), shape_error, "phase noise: ", new_phase.size(),
              " phase values for a ", img.width, "x", img.height, "x3 image");
  const std::array<int, 3> n{img.height, img.width, 3};
  field f = to_field(img);
  fftn(f, n, {0, 1, 2}, false);
  for (std::size_t i = 0; i < f.size(); ++i) f[i] = std::polar(std::abs(f[i]), new_phase[i]);
  fftn(f, n, {0, 1, 2}, true);
  return f;
}
inline rgb_image image_with_phase(const rgb_image& img, const std::vector<double>& new_phase) {
  const field f = field_with_phase(img, new_phase);
  rgb_image out = img;
  for (std::size_t i = 0; i < f.size(); ++i) out.pixels[i] = to_byte(std::abs(f[i]));
  return out;
}

// The phase (angle of the 3-D FFT) of an image, row-major H*W*3.
inline std::vector<double> phase_of(const rgb_image& img) {
  const std::array<int, 3> n{img.height, img.width, 3};
  field f = to_field(img);
  fftn(f, n, {0, 1, 2}, false);
  std::vector<double> p(f.size());
  for (std::size_t i = 0; i < f.size(); ++i) p[i] = std::arg(f[i]);
  return p;
}

// Per channel: adds one Hermitian-symmetric random phase (phi(-k) = -phi(k), 0 where k = -k) to every
// channel's 2-D spectrum; the inverse is real. Returns the real field before rounding.
template <class Rng>
field per_channel_field(const rgb_image& img, Rng& rng) {
  const int H = img.height, W = img.width;
  const std::array<int, 3> n{H, W, 3};
  field f = to_field(img);
  fftn(f, n, {0, 1}, false);
  std::uniform_real_distribution<double> u(-std::numbers::pi, std::numbers::pi);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const int my = (H - y) % H, mx = (W - x) % W;  // the mirrored frequency
      const std::size_t i = static_cast<std::size_t>(y) * W + x, j = static_cast<std::size_t>(my) * W + mx;
      if (j < i) continue;   // set together with its mirror
      if (i == j) continue;  // self-mirrored: the phase must stay 0 or pi
      const std::complex<double> r = std::polar(1.0, u(rng));
      for (std::size_t c = 0; c < 3; ++c) {  // the same phase for every channel: their cross-spectra stay
        f[i * 3 + c] *= r;
        f[j * 3 + c] *= std::conj(r);
      }
    }
  fftn(f, n, {0, 1}, true);
  return f;
}

// A phase-randomised image in the given mode, drawing from `rng`.
template <class Rng>
rgb_image randomise(const rgb_image& img, mode m, Rng& rng) {
  GRCNN_CHECK(img.width > 0 && img.height > 0 && img.pixels.size() == static_cast<std::size_t>(img.width) * img.height * 3,
              shape_error, "phase noise: malformed ", img.width, "x", img.height, " image");
  if (m == mode::per_channel) {
    const field f = per_channel_field(img, rng);
    rgb_image out = img;
    for (std::size_t i = 0; i < f.size(); ++i) out.pixels[i] = to_byte(f[i].real());
    return out;
  }
  std::vector<double> ph(img.pixels.size());
  if (m == mode::uniform) {
    std::uniform_real_distribution<double> u(-std::numbers::pi, std::numbers::pi);
    for (auto& v : ph) v = u(rng);
  } else {  // permute: the rows (axis 0) of the image's own phase array, shuffled
    const std::vector<double> own = phase_of(img);
    std::vector<int> rows(static_cast<std::size_t>(img.height));
    std::iota(rows.begin(), rows.end(), 0);
    std::shuffle(rows.begin(), rows.end(), rng);
    const std::size_t row = static_cast<std::size_t>(img.width) * 3;
    for (int y = 0; y < img.height; ++y)
      std::copy_n(own.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(rows[static_cast<std::size_t>(y)]) * row),
                  row, ph.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(y) * row));
  }
  return image_with_phase(img, ph);
}

}  // namespace grcnn::data::phase
