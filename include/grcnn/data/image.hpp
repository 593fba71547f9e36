#pragma once
// Decoding JPEG (libjpeg-turbo) and PNG (libpng) files into 8-bit RGB, as PIL's Image.open(...).convert("RGB")
// does: grayscale is replicated, palettes expanded, alpha dropped (not composited), 16-bit samples keep
// their high byte. Every failure names the file. write_png stores an image as 8-bit RGB PNG.
// Sizes are checked before anything is allocated (limits.hpp): the file's size, the declared pixels and
// sides against image_limits, and the declared image against what the file's bytes can encode at all.
#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstring>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <png.h>
#include <turbojpeg.h>

#include "grcnn/core/error.hpp"
#include "grcnn/data/limits.hpp"
#include "grcnn/io/output_file.hpp"

namespace grcnn::data {

struct rgb_image {
  int width = 0, height = 0;
  std::vector<std::uint8_t> pixels;  // row-major, 3 bytes (R, G, B) per pixel
  std::uint8_t at(int y, int x, int c) const { return pixels[(static_cast<std::size_t>(y) * width + x) * 3 + c]; }
};

namespace image_detail {

// The largest file an image within the limits can need: 8 bytes a pixel (16-bit RGBA stored uncompressed)
// plus 64 MiB of metadata (EXIF, ICC profiles, thumbnails).
inline std::int64_t max_file_bytes(const image_limits& lim) {
  return lim.max_pixels > (std::int64_t{1} << 58) ? std::int64_t{1} << 62 : lim.max_pixels * 8 + (std::int64_t{64} << 20);
}

inline std::vector<unsigned char> read_file(const std::filesystem::path& path, const image_limits& lim) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  GRCNN_CHECK(in.good(), io_error, "image: cannot open '", path.string(), "'");
  const std::streamoff size = in.tellg();
  GRCNN_CHECK(size >= 0, io_error, "image: cannot read the size of '", path.string(), "'");
  GRCNN_CHECK(size <= max_file_bytes(lim), image_limit_error, "image: '", path.string(), "' is ",
              limits_detail::gib(static_cast<double>(size)), ", larger than an image within the limit of ", lim.max_pixels,
              " pixels can be (raise it with --max-image-pixels)");
  std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), size);
  GRCNN_CHECK(in.gcount() == size, io_error, "image: cannot read '", path.string(), "' (", in.gcount(), " of ", size,
              " bytes read)");
  return bytes;
}

// The frame type of a JPEG: its SOFn marker (0xC0..0xCF but DHT 0xC4, JPG 0xC8, DAC 0xCC), or 0 when
// none is found before the first scan.
inline int jpeg_frame_marker(const std::vector<unsigned char>& b) {
  std::size_t p = 2;
  while (p + 4 <= b.size()) {
    if (b[p] != 0xFF) return 0;
    const int m = b[p + 1];
    if (m == 0xFF) {  // fill byte
      ++p;
      continue;
    }
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) {  // markers without a length
      p += 2;
      continue;
    }
    if (m == 0xDA || m == 0xD9) return 0;
    if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) return m;
    p += 2 + ((std::size_t{b[p + 2]} << 8) | b[p + 3]);
  }
  return 0;
}

// Pixels a Huffman-coded JPEG (baseline, extended, progressive, lossless: SOF0..SOF3) of n bytes can hold.
// Its first scan codes every 8 x 8 block of the components it covers with at least one bit (a DC code),
// and a component has at least one block per 32 x 32 pixels (sampling factors are at most 4), so the
// image has at most 1024 pixels a bit of the file. (Arithmetic-coded JPEGs have no such bound: a flat
// image costs far less than a bit a block, so they are held to the pixel limit alone.)
inline double jpeg_huffman_max_pixels(std::size_t n) { return 8192.0 * static_cast<double>(n); }

inline rgb_image decode_jpeg(const std::vector<unsigned char>& bytes, const std::string& where,
                             const image_limits& lim = default_image_limits()) {
  tjhandle h = tjInitDecompress();
  GRCNN_CHECK(h, io_error, "image: cannot initialise the JPEG decoder for '", where, "'");
  struct closer {
    tjhandle h;
    ~closer() { tjDestroy(h); }
  } guard{h};
  int w = 0, ht = 0, subsamp = 0, colorspace = 0;
  GRCNN_CHECK(tjDecompressHeader3(h, bytes.data(), static_cast<unsigned long>(bytes.size()), &w, &ht, &subsamp, &colorspace) == 0,
              io_error, "image: '", where, "' is not a readable JPEG: ", tjGetErrorStr2(h));
  check_image_size(w, ht, lim, "image: '" + where + "' declares");
  const int sof = jpeg_frame_marker(bytes);
  GRCNN_CHECK(!(sof >= 0xC0 && sof <= 0xC3) || static_cast<double>(w) * ht <= jpeg_huffman_max_pixels(bytes.size()),
              io_error, "image: '", where, "' declares ", w, " x ", ht, " pixels, more than its ", bytes.size(),
              " bytes can encode (a Huffman-coded JPEG spends at least a bit per 32 x 32 pixels): it is truncated or corrupt");
  rgb_image img;
  img.width = w;
  img.height = ht;
  img.pixels.resize(static_cast<std::size_t>(w) * ht * 3);
  // Accurate (islow) DCT and fancy upsampling: libjpeg's defaults, which PIL uses.
  GRCNN_CHECK(tjDecompress2(h, bytes.data(), static_cast<unsigned long>(bytes.size()), img.pixels.data(), w, 0, ht, TJPF_RGB,
                            0) == 0,
              io_error, "image: decoding the JPEG '", where, "' failed: ", tjGetErrorStr2(h));
  return img;
}

struct png_reader {
  const std::vector<unsigned char>* bytes;
  std::size_t pos = 0;
};
inline void png_read_bytes(png_structp png, png_bytep out, png_size_t n) {
  auto* r = static_cast<png_reader*>(png_get_io_ptr(png));
  if (r->pos + n > r->bytes->size()) png_error(png, "unexpected end of file");
  std::memcpy(out, r->bytes->data() + r->pos, n);
  r->pos += n;
}
struct png_failure {
  char message[256] = {0};
};
inline void png_on_error(png_structp png, png_const_charp msg) {
  auto* f = static_cast<png_failure*>(png_get_error_ptr(png));
  std::snprintf(f->message, sizeof f->message, "%s", msg);
  png_longjmp(png, 1);
}
inline void png_on_warning(png_structp, png_const_charp) {}

// Owns libpng's structures; destroyed normally (never skipped by a longjmp: see below).
struct png_handles {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~png_handles() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

// What a PNG's header declares.
struct png_header {
  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, channels = 0;
  bool interlaced = false;
};

// The functions that call libpng: every error longjmps back to their own setjmp, and they hold only
// trivially destructible locals, so no C++ destructor is ever skipped. They return false on error.
// png_read_header reads the chunks before the image data (allocating nothing from the declared size);
// png_set_transforms then sets up the conversion to 8-bit RGB, allocating a row buffer of the width.
inline bool png_read_header(png_handles& h, png_reader* reader, png_header* out) {
  if (setjmp(png_jmpbuf(h.png))) return false;
  png_set_read_fn(h.png, reader, png_read_bytes);
  png_set_user_limits(h.png, 0x7fffffffu, 0x7fffffffu);  // image_limits decide, with their own message
  png_read_info(h.png, h.info);
  out->width = png_get_image_width(h.png, h.info);
  out->height = png_get_image_height(h.png, h.info);
  out->bit_depth = png_get_bit_depth(h.png, h.info);
  out->channels = png_get_channels(h.png, h.info);
  out->interlaced = png_get_interlace_type(h.png, h.info) != PNG_INTERLACE_NONE;
  return true;
}
inline bool png_set_transforms(png_handles& h, png_uint_32* w, png_uint_32* ht, png_size_t* rowbytes) {
  if (setjmp(png_jmpbuf(h.png))) return false;
  const int color = png_get_color_type(h.png, h.info);
  png_set_strip_16(h.png);  // high byte, as PIL
  png_set_packing(h.png);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(h.png);
  if (color == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(h.png, h.info) < 8) png_set_expand_gray_1_2_4_to_8(h.png);
  if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(h.png);
  if (png_get_valid(h.png, h.info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(h.png);
  png_set_strip_alpha(h.png);  // PIL's convert("RGB") drops alpha
  png_set_interlace_handling(h.png);
  png_read_update_info(h.png, h.info);
  *w = png_get_image_width(h.png, h.info);
  *ht = png_get_image_height(h.png, h.info);
  *rowbytes = png_get_rowbytes(h.png, h.info);
  return true;
}
inline bool png_read_rows(png_handles& h, png_bytepp rows) {
  if (setjmp(png_jmpbuf(h.png))) return false;
  png_read_image(h.png, rows);
  return true;
}

// The fewest bytes of (decompressed) image data a PNG of this header holds: whole rows plus a filter byte
// each, or when interlaced (Adam7 passes, rows of their own) at least its pixels' bits.
inline double png_min_raw_bytes(const png_header& hd) {
  const double bits = static_cast<double>(hd.width) * hd.channels * hd.bit_depth;
  return hd.interlaced ? static_cast<double>(hd.height) * bits / 8 : static_cast<double>(hd.height) * (std::ceil(bits / 8) + 1);
}
// Deflate expands at most 1032-fold (a 258-byte match in two bits), and the image data is part of the file.
inline constexpr double deflate_max_ratio = 1032;

inline rgb_image decode_png(const std::vector<unsigned char>& bytes, const std::string& where,
                            const image_limits& lim = default_image_limits()) {
  png_failure failure;
  png_handles h;
  h.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &failure, png_on_error, png_on_warning);
  GRCNN_CHECK(h.png, io_error, "image: cannot initialise the PNG decoder for '", where, "'");
  h.info = png_create_info_struct(h.png);
  GRCNN_CHECK(h.info, io_error, "image: cannot initialise the PNG decoder for '", where, "'");
  png_reader reader{&bytes, 0};
  png_header hd;
  GRCNN_CHECK(png_read_header(h, &reader, &hd), io_error, "image: '", where, "' is not a readable PNG: ", failure.message);
  GRCNN_CHECK(hd.width > 0 && hd.height > 0, io_error, "image: '", where, "' declares ", hd.width, " x ", hd.height, " pixels");
  check_image_size(hd.width, hd.height, lim, "image: '" + where + "' declares");
  GRCNN_CHECK(png_min_raw_bytes(hd) <= deflate_max_ratio * static_cast<double>(bytes.size()), io_error, "image: '", where,
              "' declares ", hd.width, " x ", hd.height, " pixels of ", hd.channels, " x ", hd.bit_depth, " bits, more than its ",
              bytes.size(), " bytes can encode (deflate expands at most 1032-fold): it is truncated or corrupt");
  png_uint_32 w = 0, ht = 0;
  png_size_t rowbytes = 0;
  GRCNN_CHECK(png_set_transforms(h, &w, &ht, &rowbytes), io_error, "image: '", where, "' is not a readable PNG: ",
              failure.message);
  GRCNN_CHECK(rowbytes == static_cast<png_size_t>(w) * 3, io_error, "image: '", where, "' decodes to an unexpected row size");
  rgb_image img;
  img.width = static_cast<int>(w);
  img.height = static_cast<int>(ht);
  img.pixels.resize(static_cast<std::size_t>(w) * ht * 3);
  std::vector<png_bytep> rows(ht);
  for (png_uint_32 y = 0; y < ht; ++y) rows[y] = img.pixels.data() + static_cast<std::size_t>(y) * w * 3;
  GRCNN_CHECK(png_read_rows(h, rows.data()), io_error, "image: '", where, "' is not a readable PNG: ", failure.message);
  return img;
}

}  // namespace image_detail

// Decodes by content (JPEG or PNG signature), whatever the file name says.
// Whether the file has an extension decode_image reads (.jpg, .jpeg, .png, any case).
inline bool has_image_extension(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

// Images above `lim` (by default the process-wide limits) are refused before decoding, with an
// image_limit_error naming the file, the size and the limit.
inline rgb_image decode_image(const std::filesystem::path& path, const image_limits& lim = default_image_limits()) {
  const std::string where = path.string();
  const auto bytes = image_detail::read_file(path, lim);
  if (bytes.size() >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff)
    return image_detail::decode_jpeg(bytes, where, lim);
  if (bytes.size() >= 8 && png_sig_cmp(bytes.data(), 0, 8) == 0) return image_detail::decode_png(bytes, where, lim);
  throw io_error("image: '" + where + "' is neither a JPEG nor a PNG file");
}

// Writes an 8-bit RGB PNG (via a temporary file renamed into place, so a failure leaves no partial file).
inline void write_png(const std::filesystem::path& path, const rgb_image& img) {
  GRCNN_CHECK(img.width > 0 && img.height > 0 && img.pixels.size() == static_cast<std::size_t>(img.width) * img.height * 3,
              shape_error, "write_png: malformed ", img.width, "x", img.height, " image for '", path.string(), "'");
  png_image im{};
  im.version = PNG_IMAGE_VERSION;
  im.width = static_cast<png_uint_32>(img.width);
  im.height = static_cast<png_uint_32>(img.height);
  im.format = PNG_FORMAT_RGB;
  // Encoded in memory (a first call sizes the buffer), then written through io::output_file: atomic,
  // through links and devices, every write checked.
  png_alloc_size_t bytes = 0;
  bool ok = png_image_write_to_memory(&im, nullptr, &bytes, 0, img.pixels.data(), 0, nullptr) != 0;
  std::vector<unsigned char> encoded(ok ? bytes : 0);
  if (ok) ok = png_image_write_to_memory(&im, encoded.data(), &bytes, 0, img.pixels.data(), 0, nullptr) != 0;
  const std::string why = im.message;
  png_image_free(&im);
  GRCNN_CHECK(ok, io_error, "write_png: cannot encode '", path.string(), "': ", why);
  io::output_file out(path, "write_png");
  out.write(encoded.data(), bytes);
  out.commit();
}

}  // namespace grcnn::data
