#pragma once
// A dataset is an indexable collection of labelled 8-bit RGB images. get() is const and thread-safe
// (the loader calls it from several workers); a sample that cannot be read throws io_error naming
// its file.
#include <cstdint>
#include <string>

#include "grcnn/data/image.hpp"

namespace grcnn::data {

struct sample {
  rgb_image image;
  std::int64_t label = 0;
};

class dataset {
 public:
  virtual ~dataset() = default;
  virtual std::size_t size() const = 0;
  virtual sample get(std::size_t index) const = 0;
  virtual std::int64_t num_classes() const = 0;
  virtual std::string describe() const = 0;

 protected:
  void check_index(std::size_t index) const {
    GRCNN_CHECK(index < size(), error, describe(), ": index ", index, " outside [0, ", size(), ")");
  }
};

// One gray byte per pixel replicated to R, G and B (PIL's convert("RGB") of an "L" image).
inline rgb_image gray_to_rgb(const std::uint8_t* gray, int width, int height) {
  rgb_image out;
  out.width = width;
  out.height = height;
  out.pixels.resize(static_cast<std::size_t>(width) * height * 3);
  for (std::size_t i = 0; i < static_cast<std::size_t>(width) * height; ++i)
    out.pixels[i * 3] = out.pixels[i * 3 + 1] = out.pixels[i * 3 + 2] = gray[i];
  return out;
}

}  // namespace grcnn::data
