#pragma once
// Physical layouts. `plain` is row-major in logical order (NCHW for 4-D, OIHW for conv weights);
// `nhwc` is channels-last for 4-D activations; `opaque` is a backend's blocked format, described by an
// opaque_format object that only the backend which created it understands beyond these virtuals.
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace grcnn {

enum class layout : unsigned char { plain, nchw = plain, nhwc, opaque };

constexpr std::string_view name_of(layout l) {
  switch (l) {
    case layout::plain: return "plain";
    case layout::nhwc: return "nhwc";
    case layout::opaque: return "opaque";
  }
  return "?";
}

// A backend-specific blocked format. Core code only sizes, compares and converts it.
struct opaque_format {
  virtual ~opaque_format() = default;
  virtual std::string describe() const = 0;
  virtual std::size_t bytes() const = 0;
  virtual bool same_as(const opaque_format& other) const = 0;
  // Converts between this format and the plain row-major layout of the same shape and dtype.
  virtual void to_plain(const void* src, void* dst) const = 0;
  virtual void from_plain(const void* src, void* dst) const = 0;
};

}  // namespace grcnn
