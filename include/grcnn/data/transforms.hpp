#pragma once
// Image transforms with PIL's / torchvision's exact semantics: bilinear resize as PIL's resample
// (antialiasing triangle filter stretched by the scale factor, 22-bit fixed-point coefficients,
// horizontal pass then vertical), torchvision's Resize(shorter side) and CenterCrop geometry, and
// ToTensor + Normalize into a float tensor. Every image made from a computed size is checked against
// image_limits (limits.hpp) before it is allocated: the output of a resize and its intermediate.
#include <algorithm>
#include <array>
#include <cmath>

#include "grcnn/core/tensor.hpp"
#include "grcnn/data/image.hpp"

namespace grcnn::data {

namespace resize_detail {
constexpr int precision_bits = 32 - 8 - 2;

struct coefficients {
  int ksize = 0;
  std::vector<int> bounds;  // per output: first input index, count
  std::vector<std::int32_t> k;  // fixed point, ksize per output
};

// PIL's precompute_coeffs + normalize_coeffs_8bpc for the bilinear (triangle, support 1) filter.
inline coefficients precompute(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;
  coefficients c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(static_cast<std::size_t>(out_size) * 2);
  c.k.assign(static_cast<std::size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(static_cast<std::size_t>(c.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double arg = std::abs((x + xmin - center + 0.5) * ss);
      w[static_cast<std::size_t>(x)] = arg < 1.0 ? 1.0 - arg : 0.0;
      ww += w[static_cast<std::size_t>(x)];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[static_cast<std::size_t>(x)] / ww : w[static_cast<std::size_t>(x)];
      c.k[static_cast<std::size_t>(xx) * c.ksize + x] =
          static_cast<std::int32_t>(v < 0 ? -0.5 + v * (1 << precision_bits) : 0.5 + v * (1 << precision_bits));
    }
    c.bounds[static_cast<std::size_t>(xx) * 2] = xmin;
    c.bounds[static_cast<std::size_t>(xx) * 2 + 1] = xmax;
  }
  return c;
}
inline std::uint8_t clip8(std::int64_t v) {
  if (v >= (std::int64_t{1} << precision_bits << 8)) return 255;
  if (v <= 0) return 0;
  return static_cast<std::uint8_t>(v >> precision_bits);
}
}  // namespace resize_detail

// PIL's Image.resize((width, height), Image.BILINEAR) on an RGB image. Like PIL it resizes rows first,
// through a width x (source rows used) intermediate, which can be far larger than both images (1 x 65500
// to 65500 x 1 passes through 65500 x 65500): both are held to `lim`.
inline rgb_image resize_bilinear(const rgb_image& in, int width, int height, const image_limits& lim = default_image_limits()) {
  using namespace resize_detail;
  GRCNN_CHECK(width > 0 && height > 0, shape_error, "resize: target ", width, "x", height, " is empty");
  GRCNN_CHECK(in.width > 0 && in.height > 0 &&
                  in.pixels.size() == static_cast<std::size_t>(in.width) * static_cast<std::size_t>(in.height) * 3,
              shape_error, "resize: malformed ", in.width, "x", in.height, " source image (", in.pixels.size(), " bytes)");
  check_image_size(width, height, lim,
                   "resize: a " + std::to_string(in.width) + " x " + std::to_string(in.height) + " image resized to");
  if (width != in.width && height != in.height)  // the intermediate holds at most every source row
    check_image_size(width, in.height, lim,
                     "resize: " + std::to_string(in.width) + " x " + std::to_string(in.height) + " to " +
                         std::to_string(width) + " x " + std::to_string(height) + " passes through");
  const bool need_h = width != in.width, need_v = height != in.height;
  const coefficients ch = precompute(in.width, width), cv = precompute(in.height, height);
  // Rows of the source the vertical pass uses.
  const int y_first = cv.bounds[0];
  const int y_last = cv.bounds[static_cast<std::size_t>(height) * 2 - 2] + cv.bounds[static_cast<std::size_t>(height) * 2 - 1];
  rgb_image cur = in;
  int y_offset = 0;
  if (need_h) {
    rgb_image tmp;
    tmp.width = width;
    tmp.height = need_v ? y_last - y_first : in.height;
    y_offset = need_v ? y_first : 0;
    tmp.pixels.resize(static_cast<std::size_t>(tmp.width) * tmp.height * 3);
    for (int yy = 0; yy < tmp.height; ++yy)
      for (int xx = 0; xx < width; ++xx) {
        const int xmin = ch.bounds[static_cast<std::size_t>(xx) * 2], xmax = ch.bounds[static_cast<std::size_t>(xx) * 2 + 1];
        const std::int32_t* k = ch.k.data() + static_cast<std::size_t>(xx) * ch.ksize;
        for (int c = 0; c < 3; ++c) {
          std::int64_t s = std::int64_t{1} << (precision_bits - 1);
          for (int x = 0; x < xmax; ++x) s += static_cast<std::int64_t>(in.at(yy + y_offset, x + xmin, c)) * k[x];
          tmp.pixels[(static_cast<std::size_t>(yy) * width + xx) * 3 + c] = clip8(s);
        }
      }
    cur = std::move(tmp);
  }
  if (!need_v) return cur;
  rgb_image out;
  out.width = width;
  out.height = height;
  out.pixels.resize(static_cast<std::size_t>(width) * height * 3);
  const int shift = need_h ? y_first : 0;
  for (int yy = 0; yy < height; ++yy) {
    const int ymin = cv.bounds[static_cast<std::size_t>(yy) * 2] - shift, ymax = cv.bounds[static_cast<std::size_t>(yy) * 2 + 1];
    const std::int32_t* k = cv.k.data() + static_cast<std::size_t>(yy) * cv.ksize;
    for (int xx = 0; xx < width; ++xx)
      for (int c = 0; c < 3; ++c) {
        std::int64_t s = std::int64_t{1} << (precision_bits - 1);
        for (int y = 0; y < ymax; ++y) s += static_cast<std::int64_t>(cur.at(y + ymin, xx, c)) * k[y];
        out.pixels[(static_cast<std::size_t>(yy) * width + xx) * 3 + c] = clip8(s);
      }
  }
  return out;
}

// torchvision's Resize(size) for an int size: the shorter side becomes `size`, the longer one
// int(size * long / short). A thin strip makes a huge output (65535 x 1 to 16776960 x 256): refused by `lim`.
inline rgb_image resize_shorter_side(const rgb_image& in, int size, const image_limits& lim = default_image_limits()) {
  GRCNN_CHECK(size > 0 && in.width > 0 && in.height > 0, shape_error, "resize: shorter side ", size, " for a ", in.width, "x",
              in.height, " image");
  const bool wide = in.width >= in.height;
  const int s = wide ? in.height : in.width, l = wide ? in.width : in.height;
  const double new_long_d = std::floor(static_cast<double>(size) * l / s);
  const std::string what =
      "resize: a " + std::to_string(in.width) + " x " + std::to_string(in.height) + " image resized to";
  if (wide)
    check_image_size(new_long_d, size, lim, what);
  else
    check_image_size(size, new_long_d, lim, what);
  const int new_long = static_cast<int>(new_long_d);
  return wide ? resize_bilinear(in, new_long, size, lim) : resize_bilinear(in, size, new_long, lim);
}

// A rectangle of an image: rows [top, top + height), columns [left, left + width).
struct crop_box {
  int top = 0, left = 0, height = 0, width = 0;
};

inline rgb_image crop(const rgb_image& in, const crop_box& b) {
  GRCNN_CHECK(b.top >= 0 && b.left >= 0 && b.height > 0 && b.width > 0 && b.top + b.height <= in.height &&
                  b.left + b.width <= in.width,
              shape_error, "crop: box ", b.width, "x", b.height, " at (", b.left, ", ", b.top, ") is outside a ", in.width,
              "x", in.height, " image");
  rgb_image out;
  out.width = b.width;
  out.height = b.height;
  out.pixels.resize(static_cast<std::size_t>(b.width) * b.height * 3);
  for (int y = 0; y < b.height; ++y)
    std::copy_n(in.pixels.data() + (static_cast<std::size_t>(y + b.top) * in.width + b.left) * 3,
                static_cast<std::size_t>(b.width) * 3, out.pixels.data() + static_cast<std::size_t>(y) * b.width * 3);
  return out;
}

// torchvision's CenterCrop: offsets int(round((dim - crop) / 2)) with Python's round (half to even);
// the image must be at least as large.
inline rgb_image center_crop(const rgb_image& in, int width, int height) {
  GRCNN_CHECK(in.width >= width && in.height >= height, shape_error, "center_crop: ", in.width, "x", in.height,
              " is smaller than the crop ", width, "x", height);
  const int top = static_cast<int>(std::nearbyint((in.height - height) / 2.0)),
            left = static_cast<int>(std::nearbyint((in.width - width) / 2.0));
  return crop(in, {top, left, height, width});
}

inline constexpr std::array<float, 3> imagenet_mean{0.485f, 0.456f, 0.406f};
inline constexpr std::array<float, 3> imagenet_std{0.229f, 0.224f, 0.225f};

// ToTensor (x / 255) then Normalize(mean, std), into sample n of an [N, 3, H, W] f32 tensor of any layout.
inline void write_normalized(const rgb_image& img, tensor& batch, std::int64_t n,
                             const std::array<float, 3>& mean = imagenet_mean, const std::array<float, 3>& stddev = imagenet_std) {
  GRCNN_CHECK(batch.rank() == 4 && batch.dim(1) == 3 && batch.dim(2) == img.height && batch.dim(3) == img.width &&
                  batch.type() == dtype::f32 && batch.memory_layout() != layout::opaque && n >= 0 && n < batch.dim(0),
              shape_error, "write_normalized: a ", img.width, "x", img.height, " image does not fit sample ", n, " of ",
              batch.describe());
  float* d = batch.data<float>();
  const std::size_t HW = static_cast<std::size_t>(img.width) * img.height;
  const std::size_t base = static_cast<std::size_t>(n) * 3 * HW;
  if (batch.memory_layout() == layout::nhwc) {  // the loader's layout: the image's own byte order
    for (std::size_t i = 0; i < 3 * HW; i += 3)
      for (std::size_t c = 0; c < 3; ++c) d[base + i + c] = (static_cast<float>(img.pixels[i + c]) / 255.0f - mean[c]) / stddev[c];
    return;
  }
  for (std::size_t i = 0; i < HW; ++i)
    for (int c = 0; c < 3; ++c) {
      const float v = (static_cast<float>(img.pixels[i * 3 + c]) / 255.0f - mean[static_cast<std::size_t>(c)]) / stddev[static_cast<std::size_t>(c)];
      const std::size_t logical = base + static_cast<std::size_t>(c) * HW + i;
      d[batch.physical_index(logical)] = v;
    }
}

// The standard ImageNet evaluation preprocessing: Resize(256), CenterCrop(224), ToTensor, Normalize.
inline rgb_image imagenet_eval_crop(const rgb_image& img, int resize = 256, int crop = 224,
                                    const image_limits& lim = default_image_limits()) {
  return center_crop(resize_shorter_side(img, resize, lim), crop, crop);
}

}  // namespace grcnn::data
