#pragma once
// Presenting a stimulus to a model as Brain-Score does (VISION benchmark_helpers/screen.py and
// model_helpers/activations/pytorch.py): a stimulus spanning stimulus_degrees of visual angle is shown to
// a model that sees model_degrees. With ratio = model / stimulus degrees, ratio > 1 pastes the image at
// the centre of a round(ratio * size) canvas of PIL's 'gray' (128, 128, 128); ratio < 1 centre-crops to
// round(ratio * size); ratio 1 leaves it alone (numpy rounding: halves to even). The model then sees the
// result resized to 224 x 224 (bilinear as PIL, aspect not kept) and ImageNet-normalised.
// Deviation: Brain-Score saves the placed image under its original name, so a JPEG stimulus is
// re-encoded (quality 75) before the model reads it; we keep the decoded pixels (PNG stimuli, as HvM's,
// are unaffected).
#include <cmath>
#include <cstdint>

#include "grcnn/core/error.hpp"
#include "grcnn/data/image.hpp"
#include "grcnn/data/transforms.hpp"

namespace grcnn::data {

struct screen_options {
  double stimulus_degrees = 8;  // the benchmark's (MajajHong 8, FreemanZiemba 4, SanghaviMurty 5)
  double model_degrees = 8;     // the model's field of view (Brain-Score's default commitment: 8)
  int input_size = 224;         // the model's input (Resize((224, 224)))
};

inline constexpr std::uint8_t screen_gray = 128;

namespace screen_detail {
inline int round_half_even(double v) { return static_cast<int>(std::nearbyint(v)); }
}  // namespace screen_detail

// The image as it appears in the model's field of view (before resizing to the model's input). A large
// ratio makes a large canvas (a 256-pixel stimulus of 0.01 degrees in an 8-degree view: 204800 x 204800),
// held to `lim`.
inline rgb_image place_on_screen(const rgb_image& img, double stimulus_degrees, double model_degrees,
                                 const image_limits& lim = default_image_limits()) {
  using screen_detail::round_half_even;
  GRCNN_CHECK(stimulus_degrees > 0 && model_degrees > 0 && std::isfinite(stimulus_degrees) && std::isfinite(model_degrees),
              error, "place_on_screen: degrees must be positive, got stimulus ", stimulus_degrees, " and model ",
              model_degrees);
  GRCNN_CHECK(img.width > 0 && img.height > 0, shape_error, "place_on_screen: empty image");
  if (stimulus_degrees == model_degrees) return img;
  const double ratio = model_degrees / stimulus_degrees;
  if (ratio > 1)
    check_image_size(std::nearbyint(ratio * img.width), std::nearbyint(ratio * img.height), lim,
                     detail::concat("place_on_screen: a ", img.width, " x ", img.height, " stimulus of ", stimulus_degrees,
                                    " degrees in a ", model_degrees, "-degree view becomes"));
  const int w = round_half_even(ratio * img.width), h = round_half_even(ratio * img.height);
  GRCNN_CHECK(w > 0 && h > 0, error, "place_on_screen: a ", img.width, "x", img.height, " stimulus of ", stimulus_degrees,
              " degrees vanishes in a ", model_degrees, "-degree view");
  if (ratio >= 1) {
    rgb_image canvas;
    canvas.width = w, canvas.height = h;
    canvas.pixels.assign(static_cast<std::size_t>(w) * h * 3, screen_gray);
    const int left = round_half_even((w - img.width) / 2.0), top = round_half_even((h - img.height) / 2.0);
    for (int y = 0; y < img.height; ++y)
      std::copy_n(img.pixels.begin() + static_cast<std::ptrdiff_t>(y) * img.width * 3, img.width * 3,
                  canvas.pixels.begin() + (static_cast<std::ptrdiff_t>(y + top) * w + left) * 3);
    return canvas;
  }
  const int left = round_half_even((img.width - w) / 2.0), top = round_half_even((img.height - h) / 2.0);
  return crop(img, {top, left, h, w});
}

// The model's view of a stimulus: placed on screen, then resized to input_size x input_size.
inline rgb_image present_stimulus(const rgb_image& img, const screen_options& o = {},
                                  const image_limits& lim = default_image_limits()) {
  return resize_bilinear(place_on_screen(img, o.stimulus_degrees, o.model_degrees, lim), o.input_size, o.input_size, lim);
}

}  // namespace grcnn::data
