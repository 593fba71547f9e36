#pragma once
// The image operations of AugMix (Hendrycks et al. 2019) on 8-bit RGB images, written to give the
// same bytes as the PIL calls of the original augmentations.py (Pillow 9): ImageOps.autocontrast,
// equalize, posterize, solarize, Image.rotate and Image.transform(AFFINE) with bilinear resampling.
// Geometry follows PIL's generic transform: each output pixel centre (x + 0.5, y + 0.5) is mapped by
// the affine matrix; a source point outside the image gives black; bilinear weights use the clamped
// neighbours, and the result is truncated to 8 bits as PIL's filter does. Tested byte for byte against
// python3-pil (tests/torch/make_augmix_fixtures.py).
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "grcnn/core/error.hpp"
#include "grcnn/data/image.hpp"

namespace grcnn::data::augmix {

namespace detail {
// Applies one 256-entry lookup table per channel.
inline rgb_image apply_lut(const rgb_image& in, const std::array<std::array<std::uint8_t, 256>, 3>& lut) {
  rgb_image out = in;
  for (std::size_t i = 0; i < out.pixels.size(); ++i) out.pixels[i] = lut[i % 3][in.pixels[i]];
  return out;
}
inline std::array<std::array<std::size_t, 256>, 3> histograms(const rgb_image& in) {
  std::array<std::array<std::size_t, 256>, 3> h{};
  for (std::size_t i = 0; i < in.pixels.size(); ++i) h[i % 3][in.pixels[i]]++;
  return h;
}
inline void check_image(const rgb_image& in, const char* op) {
  GRCNN_CHECK(in.width > 0 && in.height > 0 &&
                  in.pixels.size() == static_cast<std::size_t>(in.width) * static_cast<std::size_t>(in.height) * 3,
              shape_error, "augmix ", op, ": malformed image ", in.width, "x", in.height, " with ", in.pixels.size(),
              " bytes");
}
}  // namespace detail

// ImageOps.autocontrast(img) (cutoff 0): each channel stretched so its lowest value maps to 0 and its
// highest to 255; a constant channel is left alone.
inline rgb_image autocontrast(const rgb_image& in) {
  detail::check_image(in, "autocontrast");
  const auto h = detail::histograms(in);
  std::array<std::array<std::uint8_t, 256>, 3> lut{};
  for (int c = 0; c < 3; ++c) {
    int lo = 0, hi = 255;
    while (lo < 256 && h[c][static_cast<std::size_t>(lo)] == 0) ++lo;
    while (hi >= 0 && h[c][static_cast<std::size_t>(hi)] == 0) --hi;
    for (int i = 0; i < 256; ++i) {
      if (hi <= lo) {
        lut[c][i] = static_cast<std::uint8_t>(i);
        continue;
      }
      const double scale = 255.0 / (hi - lo), offset = -lo * scale;
      int v = static_cast<int>(i * scale + offset);  // Python int(): truncation towards zero
      lut[c][i] = static_cast<std::uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
    }
  }
  return detail::apply_lut(in, lut);
}

// ImageOps.equalize(img): PIL's histogram equalisation per channel (step from all but the last
// non-empty bin, lut[i] = (step / 2 + count below i) / step).
inline rgb_image equalize(const rgb_image& in) {
  detail::check_image(in, "equalize");
  const auto h = detail::histograms(in);
  std::array<std::array<std::uint8_t, 256>, 3> lut{};
  for (int c = 0; c < 3; ++c) {
    std::size_t total = 0, last = 0, nonzero = 0;
    for (std::size_t v : h[c])
      if (v) {
        total += v;
        last = v;
        ++nonzero;
      }
    const std::size_t step = nonzero <= 1 ? 0 : (total - last) / 255;
    std::size_t n = step / 2;
    for (int i = 0; i < 256; ++i) {
      if (step == 0) {
        lut[c][i] = static_cast<std::uint8_t>(i);
        continue;
      }
      const std::size_t v = n / step;
      lut[c][i] = static_cast<std::uint8_t>(v > 255 ? 255 : v);
      n += h[c][static_cast<std::size_t>(i)];
    }
  }
  return detail::apply_lut(in, lut);
}

// ImageOps.posterize(img, bits): keeps the `bits` most significant bits of every sample.
inline rgb_image posterize(const rgb_image& in, int bits) {
  detail::check_image(in, "posterize");
  GRCNN_CHECK(bits >= 0 && bits <= 8, error, "augmix posterize: bits ", bits, " outside [0, 8]");
  const auto mask = static_cast<std::uint8_t>(~((1u << (8 - bits)) - 1u) & 0xffu);
  std::array<std::array<std::uint8_t, 256>, 3> lut{};
  for (auto& l : lut)
    for (int i = 0; i < 256; ++i) l[i] = static_cast<std::uint8_t>(i & mask);
  return detail::apply_lut(in, lut);
}

// ImageOps.solarize(img, threshold): samples at or above the threshold are inverted.
inline rgb_image solarize(const rgb_image& in, int threshold) {
  detail::check_image(in, "solarize");
  std::array<std::array<std::uint8_t, 256>, 3> lut{};
  for (auto& l : lut)
    for (int i = 0; i < 256; ++i) l[i] = static_cast<std::uint8_t>(i < threshold ? i : 255 - i);
  return detail::apply_lut(in, lut);
}

// Image.transform(size, AFFINE, (a, b, c, d, e, f), BILINEAR): output (x, y) samples the input at
// (a x' + b y' + c, d x' + e y' + f) with x' = x + 0.5, y' = y + 0.5; outside the image: black.
inline rgb_image affine_bilinear(const rgb_image& in, const std::array<double, 6>& m) {
  detail::check_image(in, "affine");
  const int W = in.width, H = in.height;
  rgb_image out{W, H, std::vector<std::uint8_t>(in.pixels.size(), 0)};
  auto clip_x = [W](int x) { return x < 0 ? 0 : x < W ? x : W - 1; };
  auto clip_y = [H](int y) { return y < 0 ? 0 : y < H ? y : H - 1; };
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      double xin = m[0] * (x + 0.5) + m[1] * (y + 0.5) + m[2];
      double yin = m[3] * (x + 0.5) + m[4] * (y + 0.5) + m[5];
      if (xin < 0.0 || xin >= W || yin < 0.0 || yin >= H) continue;
      xin -= 0.5;
      yin -= 0.5;
      const int xf = static_cast<int>(std::floor(xin)), yf = static_cast<int>(std::floor(yin));
      const double dx = xin - xf, dy = yin - yf;
      const int x0 = clip_x(xf), x1 = clip_x(xf + 1), r0 = clip_y(yf);
      const bool second_row = yf + 1 >= 0 && yf + 1 < H;
      for (int c = 0; c < 3; ++c) {
        const double a0 = in.at(r0, x0, c), a1 = in.at(r0, x1, c);
        const double v1 = a0 + (a1 - a0) * dx;
        double v2 = v1;
        if (second_row) {
          const double b0 = in.at(yf + 1, x0, c), b1 = in.at(yf + 1, x1, c);
          v2 = b0 + (b1 - b0) * dx;
        }
        const double v = v1 + (v2 - v1) * dy;
        out.pixels[(static_cast<std::size_t>(y) * W + x) * 3 + c] =
            static_cast<std::uint8_t>(v <= 0 ? 0 : v < 255 ? static_cast<int>(v) : 255);
      }
    }
  return out;
}

// Image.rotate(degrees, resample=BILINEAR): counter-clockwise about the centre, same size, black fill.
inline rgb_image rotate(const rgb_image& in, double degrees) {
  detail::check_image(in, "rotate");
  const double angle = std::fmod(std::fmod(degrees, 360.0) + 360.0, 360.0);
  if (angle == 0.0) return in;
  // PIL rounds the matrix entries to 15 decimals (cos 90 is then exactly 0).
  auto r15 = [](double v) { return std::nearbyint(v * 1e15) / 1e15; };
  const double t = -angle * std::numbers::pi / 180.0;
  std::array<double, 6> m{r15(std::cos(t)), r15(std::sin(t)), 0.0, r15(-std::sin(t)), r15(std::cos(t)), 0.0};
  const double cx = in.width / 2.0, cy = in.height / 2.0;
  m[2] = m[0] * -cx + m[1] * -cy + cx;
  m[5] = m[3] * -cx + m[4] * -cy + cy;
  return affine_bilinear(in, m);
}

inline rgb_image shear_x(const rgb_image& in, double s) { return affine_bilinear(in, {1, s, 0, 0, 1, 0}); }
inline rgb_image shear_y(const rgb_image& in, double s) { return affine_bilinear(in, {1, 0, 0, s, 1, 0}); }
inline rgb_image translate_x(const rgb_image& in, double px) { return affine_bilinear(in, {1, 0, px, 0, 1, 0}); }
inline rgb_image translate_y(const rgb_image& in, double px) { return affine_bilinear(in, {1, 0, 0, 0, 1, px}); }

}  // namespace grcnn::data::augmix
