// Fuzz target: data::decode_image (include/grcnn/data/image.hpp), which picks decode_jpeg (libjpeg-turbo)
// or decode_png (libpng) by the file's signature, and their size checks.
// Clean rejection: io_error (image.hpp: every failure names the file; dataset.hpp: "a sample that cannot
// be read throws io_error"). Anything else -- another exception, std::bad_alloc, an allocation above the
// malloc limit (an image declaring more pixels than the size checks should allow), a sanitizer report --
// is a finding.
#include <cstdint>

#include "grcnn/data/image.hpp"

#include "fuzz_support.hpp"

// With the size limits (data/limits.hpp), the process-wide ones are lowered so that an image the checks
// let through costs little time (a fuzzer makes many): 2^22 pixels, sides up to 2^14. Accepted images
// must respect them; a check that lets a larger one through is a finding.
#if __has_include("grcnn/data/limits.hpp")
#include "grcnn/data/limits.hpp"
#define GRCNN_FUZZ_IMAGE_LIMITS 1
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  grcnn::data::image_limits lim = grcnn::data::default_image_limits();
  lim.max_pixels = std::int64_t{1} << 22;
  lim.max_side = std::int64_t{1} << 14;
  grcnn::data::set_default_image_limits(lim);
  return 0;
}
#endif

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The name says nothing: decode_image decides by content.
  const auto path = grcnn_fuzz::write_input("input.img", data, size);
  grcnn::data::rgb_image img;
  try {
    img = grcnn::data::decode_image(path);
  } catch (const grcnn::io_error& e) {
    grcnn_fuzz::rejected(e);
    return 0;
  } catch (const grcnn::error& e) {
    grcnn_fuzz::undocumented_error(e, "decode_image");
    return 0;
  }
  GRCNN_FUZZ_ASSERT(img.width > 0 && img.height > 0, "decoded a ", img.width, "x", img.height, " image");
  GRCNN_FUZZ_ASSERT(img.pixels.size() == static_cast<std::size_t>(img.width) * img.height * 3, "decoded ",
                    img.pixels.size(), " bytes for ", img.width, "x", img.height, " RGB");
  grcnn_fuzz::accepted("decode_image");
#ifdef GRCNN_FUZZ_IMAGE_LIMITS
  const auto lim = grcnn::data::default_image_limits();
  GRCNN_FUZZ_ASSERT(static_cast<std::int64_t>(img.width) * img.height <= lim.max_pixels && img.width <= lim.max_side &&
                        img.height <= lim.max_side,
                    "decoded ", img.width, "x", img.height, " above the limits (", lim.max_pixels, " pixels, side ",
                    lim.max_side, ")");
#endif
  // Read the corners through the accessor (an inconsistent width/height would read out of bounds).
  volatile unsigned sink = img.at(0, 0, 0) + img.at(img.height - 1, img.width - 1, 2);
  (void)sink;
  return 0;
}
