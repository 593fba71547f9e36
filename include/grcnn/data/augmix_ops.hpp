#pragma once
// The image operations of AugMix (Hendrycks et al. 2019) on 8-bit RGB images, written to give the
// same bytes as the PIL calls of the original augmentations.py (Pillow 9): ImageOps.autocontrast,
// equalize, posterize, solarize, Image.rotate and Image.transform(AFFINE) with bilinear resampling.
// Geometry follows PIL's generic transform: each output pixel centre (x + 0.5, y + 0.5) is mapped by
// the affine matrix; a source point outside the image gives black; bilinear weights use the clamped
// neighbours, and the result is truncated to 8 bits as PIL's filter does. Tested byte for byte against
// python3-pil (tests/torch/make_data_fixtures.py). The four "all ops" enhancements (color, contrast,
// brightness, sharpness) are PIL's ImageEnhance: Image.blend(degenerate, image, factor) in float,
// truncated inside [0, 1] and clipped outside, with PIL's degenerate images (L = (19595 R + 38470 G +
// 7471 B + 0x8000) >> 16; the rounded mean of L; black; the SMOOTH 3x3 filter, rounded, border copied).
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

// Image.blend(degenerate, image, factor) for 8-bit images, as libImaging's ImagingBlend computes it.
inline rgb_image blend_like_pil(const rgb_image& degenerate, const rgb_image& image, double factor) {
  const auto alpha = static_cast<float>(factor);
  rgb_image out = image;
  const bool inside = alpha >= 0.0f && alpha <= 1.0f;
  for (std::size_t i = 0; i < out.pixels.size(); ++i) {
    const int a = degenerate.pixels[i], b = image.pixels[i];
    const float v = static_cast<float>(a) + alpha * static_cast<float>(b - a);
    out.pixels[i] = inside ? static_cast<std::uint8_t>(v) : (v <= 0.0f ? 0 : v >= 255.0f ? 255 : static_cast<std::uint8_t>(v));
  }
  return out;
}
// PIL's convert("L") of an RGB pixel.
inline std::uint8_t luma_like_pil(const std::uint8_t* rgb) {
  return static_cast<std::uint8_t>((rgb[0] * 19595u + rgb[1] * 38470u + rgb[2] * 7471u + 0x8000u) >> 16);
}

// ImageEnhance.Color: blend with the image's gray version.
inline rgb_image color(const rgb_image& in, double factor) {
  detail::check_image(in, "color");
  rgb_image gray = in;
  for (std::size_t i = 0; i < in.pixels.size(); i += 3) gray.pixels[i] = gray.pixels[i + 1] = gray.pixels[i + 2] = luma_like_pil(&in.pixels[i]);
  return blend_like_pil(gray, in, factor);
}
// ImageEnhance.Contrast: blend with a flat image at the rounded mean gray level.
inline rgb_image contrast(const rgb_image& in, double factor) {
  detail::check_image(in, "contrast");
  double sum = 0;
  for (std::size_t i = 0; i < in.pixels.size(); i += 3) sum += luma_like_pil(&in.pixels[i]);
  const auto mean = static_cast<std::uint8_t>(static_cast<int>(sum / static_cast<double>(in.pixels.size() / 3) + 0.5));
  rgb_image flat = in;
  std::fill(flat.pixels.begin(), flat.pixels.end(), mean);
  return blend_like_pil(flat, in, factor);
}
// ImageEnhance.Brightness: blend with black.
inline rgb_image brightness(const rgb_image& in, double factor) {
  detail::check_image(in, "brightness");
  rgb_image black = in;
  std::fill(black.pixels.begin(), black.pixels.end(), std::uint8_t{0});
  return blend_like_pil(black, in, factor);
}
// ImageFilter.SMOOTH (3x3 kernel [1 1 1; 1 5 1; 1 1 1] / 13) as libImaging's 3x3 filter: float sums in its
// order (row below, row, row above), rounded and clipped; the outermost rows and columns copied.
inline rgb_image smooth_like_pil(const rgb_image& in) {
  rgb_image out = in;
  if (in.width < 3 || in.height < 3) return out;
  const float k_side = 1.0f / 13.0f, k_centre = 5.0f / 13.0f;
  const std::array<float, 9> k{k_side, k_side, k_side, k_side, k_centre, k_side, k_side, k_side, k_side};
  auto px = [&](int y, int x, int c) { return static_cast<float>(in.at(y, x, c)); };
  for (int y = 1; y < in.height - 1; ++y)
    for (int x = 1; x < in.width - 1; ++x)
      for (int c = 0; c < 3; ++c) {
        float ss = 0.0f;
        ss += px(y + 1, x - 1, c) * k[0] + px(y + 1, x, c) * k[1] + px(y + 1, x + 1, c) * k[2];
        ss += px(y, x - 1, c) * k[3] + px(y, x, c) * k[4] + px(y, x + 1, c) * k[5];
        ss += px(y - 1, x - 1, c) * k[6] + px(y - 1, x, c) * k[7] + px(y - 1, x + 1, c) * k[8];
        out.pixels[(static_cast<std::size_t>(y) * in.width + x) * 3 + c] =
            ss <= 0.0f ? 0 : ss >= 255.0f ? 255 : static_cast<std::uint8_t>(ss + 0.5f);
      }
  return out;
}
// ImageEnhance.Sharpness: blend with the smoothed image.
inline rgb_image sharpness(const rgb_image& in, double factor) {
  detail::check_image(in, "sharpness");
  return blend_like_pil(smooth_like_pil(in), in, factor);
}

}  // namespace grcnn::data::augmix
