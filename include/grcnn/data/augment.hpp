#pragma once
// Random and geometric image transforms with torchvision's semantics (draws come from the caller's
// generator, so a loader can make every batch reproducible): RandomResizedCrop, RandomHorizontalFlip,
// RandomCrop with zero padding, plus the composition of steps into a pipeline.
#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "grcnn/data/transforms.hpp"

namespace grcnn::data {

using augment_rng = std::mt19937_64;

// torchvision's RandomResizedCrop.get_params: up to 10 tries of an area fraction ~ U(scale) and a
// log-uniform aspect ratio, sides rounded half to even; otherwise a centre crop clamped to the ratios.
inline crop_box random_resized_crop_box(int width, int height, augment_rng& rng, double scale_min = 0.08,
                                        double scale_max = 1.0, double ratio_min = 3.0 / 4.0, double ratio_max = 4.0 / 3.0) {
  GRCNN_CHECK(scale_min > 0 && scale_min <= scale_max && ratio_min > 0 && ratio_min <= ratio_max, error,
              "random_resized_crop: needs 0 < scale_min <= scale_max and 0 < ratio_min <= ratio_max");
  const double area = static_cast<double>(width) * height;
  std::uniform_real_distribution<double> scale(scale_min, scale_max), log_ratio(std::log(ratio_min), std::log(ratio_max));
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * scale(rng), ratio = std::exp(log_ratio(rng));
    const int w = static_cast<int>(std::nearbyint(std::sqrt(target * ratio)));
    const int h = static_cast<int>(std::nearbyint(std::sqrt(target / ratio)));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const int top = std::uniform_int_distribution<int>(0, height - h)(rng);
      const int left = std::uniform_int_distribution<int>(0, width - w)(rng);
      return {top, left, h, w};
    }
  }
  const double in_ratio = static_cast<double>(width) / height;
  int w = width, h = height;
  if (in_ratio < ratio_min)
    h = static_cast<int>(std::nearbyint(w / ratio_min));
  else if (in_ratio > ratio_max)
    w = static_cast<int>(std::nearbyint(h * ratio_max));
  return {(height - h) / 2, (width - w) / 2, h, w};
}

inline rgb_image hflip(const rgb_image& in) {
  rgb_image out{in.width, in.height, std::vector<std::uint8_t>(in.pixels.size())};
  for (int y = 0; y < in.height; ++y)
    for (int x = 0; x < in.width; ++x)
      for (int c = 0; c < 3; ++c)
        out.pixels[(static_cast<std::size_t>(y) * in.width + x) * 3 + c] = in.at(y, in.width - 1 - x, c);
  return out;
}

// Zero padding on every side (torchvision's Pad with fill 0); the padded image is held to `lim`.
inline rgb_image pad(const rgb_image& in, int p, const image_limits& lim = default_image_limits()) {
  GRCNN_CHECK(p >= 0, error, "pad: negative padding ", p);
  check_image_size(in.width + 2.0 * p, in.height + 2.0 * p, lim,
                   "pad: a " + std::to_string(in.width) + " x " + std::to_string(in.height) + " image padded by " +
                       std::to_string(p) + " becomes");
  rgb_image out;
  out.width = in.width + 2 * p;
  out.height = in.height + 2 * p;
  out.pixels.assign(static_cast<std::size_t>(out.width) * out.height * 3, 0);
  for (int y = 0; y < in.height; ++y)
    std::copy_n(in.pixels.data() + static_cast<std::size_t>(y) * in.width * 3, static_cast<std::size_t>(in.width) * 3,
                out.pixels.data() + (static_cast<std::size_t>(y + p) * out.width + p) * 3);
  return out;
}

// One step of a pipeline: an image in, an image out, random draws from the batch's generator.
using transform_step = std::function<rgb_image(rgb_image, augment_rng&)>;

inline transform_step random_resized_crop(int size, double scale_min = 0.08, double scale_max = 1.0,
                                          double ratio_min = 3.0 / 4.0, double ratio_max = 4.0 / 3.0) {
  return [=](rgb_image img, augment_rng& rng) {
    const crop_box b = random_resized_crop_box(img.width, img.height, rng, scale_min, scale_max, ratio_min, ratio_max);
    return resize_bilinear(crop(img, b), size, size);
  };
}
inline transform_step random_horizontal_flip(double p = 0.5) {
  return [p](rgb_image img, augment_rng& rng) { return std::bernoulli_distribution(p)(rng) ? hflip(img) : img; };
}
// torchvision's RandomCrop(size, padding): zero-pad, then a uniform size x size window.
inline transform_step random_crop(int size, int padding) {
  return [=](rgb_image img, augment_rng& rng) {
    if (padding > 0) img = pad(img, padding);
    GRCNN_CHECK(img.width >= size && img.height >= size, shape_error, "random_crop: a ", img.width, "x", img.height,
                " image (after padding ", padding, ") is smaller than the crop ", size);
    const int top = std::uniform_int_distribution<int>(0, img.height - size)(rng);
    const int left = std::uniform_int_distribution<int>(0, img.width - size)(rng);
    return crop(img, {top, left, size, size});
  };
}
// torchvision's Pad(p, fill=0) as a pipeline step (Fashion-MNIST's 28 pixels to 32 with p = 2).
inline transform_step zero_pad(int p) {
  return [p](rgb_image img, augment_rng&) { return pad(img, p); };
}
inline transform_step resize_then_center_crop(int resize, int size) {
  return [=](rgb_image img, augment_rng&) { return center_crop(resize_shorter_side(img, resize), size, size); };
}

// An extra view of a sample for multi-view training (AugMix, texture/noise blending): from the image the
// steps produced, the view's normalised pixels (HWC order, same size), drawing from the batch's generator.
using view_fn = std::function<std::vector<float>(const rgb_image&, augment_rng&, const std::array<float, 3>& mean,
                                                 const std::array<float, 3>& stddev)>;

// Steps applied in order, then ToTensor + Normalize with the pipeline's mean and std. With extra views,
// a batch of n samples holds (1 + views) * n images: the clean view first, then each extra view's n.
struct pipeline {
  std::vector<transform_step> steps;
  std::array<float, 3> mean = imagenet_mean, stddev = imagenet_std;
  std::vector<view_fn> views;

  rgb_image apply(rgb_image img, augment_rng& rng) const {
    for (const auto& s : steps) img = s(std::move(img), rng);
    return img;
  }
};

}  // namespace grcnn::data
