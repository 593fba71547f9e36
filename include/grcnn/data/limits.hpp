#pragma once
// Bounds on the sizes the data layer accepts from files and computes from them, checked before anything
// is allocated: an image's declared pixels and sides (JPEG, PNG), every image a transform makes from a
// computed size (resize, pad, screen placement), a loader batch, and an array file held in memory (IDX,
// CIFAR). A refusal throws image_limit_error (an io_error, so a loader with skip_corrupt skips the sample)
// naming the file or the operation, the size, the limit and the flag the tools raise it with.
//
// Functions take an `image_limits` argument that defaults to the process-wide default_image_limits(),
// read at the call; a tool sets that once from its flags (set_default_image_limits) before any data is read.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "grcnn/core/error.hpp"

namespace grcnn::data {

struct image_limit_error : io_error {
  using io_error::io_error;
};

struct image_limits {
  // Pixels of one image, decoded or made by a transform. PIL's Image.MAX_IMAGE_PIXELS
  // (1024 * 1024 * 1024 // 4 // 3 = 89,478,485), the decompression-bomb threshold torchvision's loaders
  // inherit: at 3 bytes a pixel an image stays under 256 MiB. (PIL warns above it and refuses above twice
  // it; we refuse above it, and say how to raise it.) Flag: --max-image-pixels.
  std::int64_t max_pixels = 89'478'485;
  // Either side of an image. libjpeg's JPEG_MAX_DIMENSION, the longest side a JPEG can have; PNG (up to
  // 2^31 - 1) is held to the same. It bounds what grows with one side alone in an image thin enough to
  // pass max_pixels (libpng's row pointers: 8 bytes a row; a resize's coefficient tables; a resize of a
  // 65535 x 1 strip to a shorter side of 256 is 16.7M x 256). Flag: --max-image-side.
  std::int64_t max_side = 65'500;
  // One loader batch: its f32 tensor (all views) plus the decoded images it is built from. 8 GiB is
  // over ten times the largest batch a recipe here makes (256 x 3 views x 3 x 224 x 224 f32 = 0.46 GB)
  // and below a common host's memory. Flag: --max-batch-bytes.
  std::int64_t max_batch_bytes = std::int64_t{8} << 30;
  // An array file held in memory whole (IDX, CIFAR binaries). 2^34 bytes (16 GiB), the cap IDX had
  // before; the largest IDX dataset (EMNIST ByClass) is 0.64 GB, CIFAR's files are 31 MB. A file is
  // also bounded by its own size (a raw file holds no more than its bytes, a gzip stream no more than
  // 1032 times them). Flag: --max-array-bytes.
  std::int64_t max_array_bytes = std::int64_t{1} << 34;
};

namespace limits_detail {
inline std::mutex& mutex() {
  static std::mutex m;
  return m;
}
inline image_limits& current() {
  static image_limits l;
  return l;
}
inline void check(const image_limits& l) {
  GRCNN_CHECK(l.max_pixels > 0 && l.max_side > 0 && l.max_batch_bytes > 0 && l.max_array_bytes > 0, error,
              "image_limits: every limit must be positive (max_pixels ", l.max_pixels, ", max_side ", l.max_side,
              ", max_batch_bytes ", l.max_batch_bytes, ", max_array_bytes ", l.max_array_bytes, ")");
}

// 4290250000 -> "4.29e9"
inline std::string approx(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2e", v);
  std::string s(buf);
  const auto e = s.find('e');
  if (e == std::string::npos) return s;
  return s.substr(0, e) + "e" + std::to_string(std::atoi(s.c_str() + e + 1));
}
// 55834574848 -> "52.0 GiB", 3145728 -> "3.0 MiB", 245760 -> "245760 bytes"
inline std::string gib(double bytes) {
  char buf[48];
  if (bytes >= double(std::int64_t{1} << 30))
    std::snprintf(buf, sizeof buf, "%.1f GiB", bytes / double(std::int64_t{1} << 30));
  else if (bytes >= double(std::int64_t{1} << 20))
    std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / double(std::int64_t{1} << 20));
  else
    std::snprintf(buf, sizeof buf, "%.0f bytes", bytes);
  return buf;
}
}  // namespace limits_detail

// The process-wide limits (thread-safe; the loader's workers read them).
inline image_limits default_image_limits() {
  std::lock_guard lock(limits_detail::mutex());
  return limits_detail::current();
}
// Sets the process-wide limits (all must be positive); returns the previous ones.
inline image_limits set_default_image_limits(const image_limits& l) {
  limits_detail::check(l);
  std::lock_guard lock(limits_detail::mutex());
  const image_limits old = limits_detail::current();
  limits_detail::current() = l;
  return old;
}
// Sets the process-wide limits for a scope (tests; a tool that reads one input with other limits).
class scoped_image_limits {
 public:
  explicit scoped_image_limits(const image_limits& l) : old_(set_default_image_limits(l)) {}
  ~scoped_image_limits() { set_default_image_limits(old_); }
  scoped_image_limits(const scoped_image_limits&) = delete;
  scoped_image_limits& operator=(const scoped_image_limits&) = delete;

 private:
  image_limits old_;
};

// Refuses an image of width x height (either may be huge: computed in 64 bits or double) above the pixel
// or side limit. `what` begins the message: "image: 'a.jpg' declares", "resize: 1 x 9 to".
inline void check_image_size(double width, double height, const image_limits& lim, const std::string& what) {
  const auto fmt = [](double v) { return v < 1e15 ? std::to_string(static_cast<long long>(v)) : limits_detail::approx(v); };
  const double pixels = width * height;
  GRCNN_CHECK(pixels <= static_cast<double>(lim.max_pixels), image_limit_error, what, " ", fmt(width), " x ", fmt(height),
              " pixels (", limits_detail::approx(pixels), "), above the limit of ", lim.max_pixels,
              " (raise it with --max-image-pixels)");
  GRCNN_CHECK(width <= static_cast<double>(lim.max_side) && height <= static_cast<double>(lim.max_side), image_limit_error,
              what, " ", fmt(width), " x ", fmt(height), " pixels, a side above the limit of ", lim.max_side,
              " (raise it with --max-image-side)");
}

}  // namespace grcnn::data
