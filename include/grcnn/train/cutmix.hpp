#pragma once
// CutMix (Yun et al. 2019) exactly as clovaai/CutMix-PyTorch's train.py applies it: with probability p,
// lambda ~ Beta(beta, beta); a box of side floor(size * sqrt(1 - lambda)) centred on a uniform pixel and
// clipped to the image; the box's pixels (all channels) come from a partner given by one random
// permutation of the batch; lambda is recomputed from the clipped box, and the loss is
// lambda * CE(y_a) + (1 - lambda) * CE(y_b) (train::mixed_one_hot with the returned lambda/permutation).
#include <optional>

#include "grcnn/train/targets.hpp"

namespace grcnn::train {

// Rows [top, bottom) and columns [left, right) of an H x W image (the original's dims 2 and 3).
struct cutmix_box {
  int top = 0, bottom = 0, left = 0, right = 0;
  int area() const { return (bottom - top) * (right - left); }
};

// The original's rand_bbox for a given lambda and centre (cy in [0, H), cx in [0, W)): half-sides
// floor(side * sqrt(1 - lambda)) // 2 on each side of the centre, clipped.
inline cutmix_box cutmix_box_at(int height, int width, double lambda, int cy, int cx) {
  GRCNN_CHECK(height > 0 && width > 0 && lambda >= 0 && lambda <= 1 && cy >= 0 && cy < height && cx >= 0 && cx < width,
              error, "cutmix: box for lambda ", lambda, " at (", cy, ", ", cx, ") in a ", height, "x", width, " image");
  const double r = std::sqrt(1.0 - lambda);
  const int cut_h = static_cast<int>(height * r), cut_w = static_cast<int>(width * r);
  auto clip = [](int v, int hi) { return std::clamp(v, 0, hi); };
  return {clip(cy - cut_h / 2, height), clip(cy + cut_h / 2, height), clip(cx - cut_w / 2, width), clip(cx + cut_w / 2, width)};
}

struct cutmix_result {
  mixup_result mix;  // the recomputed lambda (share of the image's own pixels) and the partner permutation
  cutmix_box box;
};

// Applies CutMix to a batch in place with probability `prob`; nothing (and no change) otherwise. A
// multi-view batch ([views * n, ...], view-major) gets one draw for its n samples, pasted into every view,
// so the views of a sample stay aligned (AugMix's consistency loss compares them).
template <class Rng>
std::optional<cutmix_result> cutmix(tensor& images, double beta, double prob, Rng& rng, int views = 1) {
  GRCNN_CHECK(beta > 0 && prob >= 0 && prob <= 1, error, "cutmix: needs beta > 0 and a probability in [0, 1], got ", beta,
              " and ", prob);
  GRCNN_CHECK(images.rank() == 4 && images.type() == dtype::f32 &&
                  (images.memory_layout() == layout::nhwc || images.memory_layout() == layout::plain),
              shape_error, "cutmix: needs an f32 [N, C, H, W] batch (NCHW or NHWC), got ", images.describe());
  GRCNN_CHECK(views >= 1 && images.dim(0) % views == 0, shape_error, "cutmix: ", images.describe(), " is not ", views,
              " equal views");
  if (!(std::uniform_real_distribution<double>(0.0, 1.0)(rng) < prob)) return std::nullopt;
  const auto N = images.dim(0) / views, C = images.dim(1);
  const int H = static_cast<int>(images.dim(2)), W = static_cast<int>(images.dim(3));
  cutmix_result r;
  const double lambda = sample_beta(beta, beta, rng);
  r.mix.permutation.resize(static_cast<std::size_t>(N));
  std::iota(r.mix.permutation.begin(), r.mix.permutation.end(), 0);
  std::shuffle(r.mix.permutation.begin(), r.mix.permutation.end(), rng);
  const int cy = std::uniform_int_distribution<int>(0, H - 1)(rng), cx = std::uniform_int_distribution<int>(0, W - 1)(rng);
  r.box = cutmix_box_at(H, W, lambda, cy, cx);
  r.mix.lambda = 1.0 - static_cast<double>(r.box.area()) / (static_cast<double>(H) * W);
  if (r.box.area() == 0) return r;
  const tensor src = images.clone();
  const float* s = src.data<float>();
  float* d = images.data<float>();
  const bool nhwc = images.memory_layout() == layout::nhwc;
  for (std::int64_t vn = 0; vn < N * views; ++vn) {
    const std::int64_t view = vn / N, n = vn % N;
    const std::int64_t p = view * N + r.mix.permutation[static_cast<std::size_t>(n)];
    for (std::int64_t c = 0; c < C; ++c)
      for (int y = r.box.top; y < r.box.bottom; ++y)
        for (int x = r.box.left; x < r.box.right; ++x) {
          auto at = [&](std::int64_t img) {
            return nhwc ? ((img * H + y) * W + x) * C + c : ((img * C + c) * H + y) * W + x;
          };
          d[at(vn)] = s[at(p)];
        }
  }
  return r;
}

}  // namespace grcnn::train
