#pragma once
// Decoding JPEG (libjpeg-turbo) and PNG (libpng) files into 8-bit RGB, as PIL's Image.open(...).convert("RGB")
// does: grayscale is replicated, palettes expanded, alpha dropped (not composited), 16-bit samples keep
// their high byte. Every failure names the file. write_png stores an image as 8-bit RGB PNG.
#include <algorithm>
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

namespace grcnn::data {

struct rgb_image {
  int width = 0, height = 0;
  std::vector<std::uint8_t> pixels;  // row-major, 3 bytes (R, G, B) per pixel
  std::uint8_t at(int y, int x, int c) const { return pixels[(static_cast<std::size_t>(y) * width + x) * 3 + c]; }
};

namespace image_detail {

inline std::vector<unsigned char> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  GRCNN_CHECK(in.good(), io_error, "image: cannot open '", path.string(), "'");
  return std::vector<unsigned char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline rgb_image decode_jpeg(const std::vector<unsigned char>& bytes, const std::string& where) {
  tjhandle h = tjInitDecompress();
  GRCNN_CHECK(h, io_error, "image: cannot initialise the JPEG decoder for '", where, "'");
  struct closer {
    tjhandle h;
    ~closer() { tjDestroy(h); }
  } guard{h};
  int w = 0, ht = 0, subsamp = 0, colorspace = 0;
  GRCNN_CHECK(tjDecompressHeader3(h, bytes.data(), static_cast<unsigned long>(bytes.size()), &w, &ht, &subsamp, &colorspace) == 0,
              io_error, "image: '", where, "' is not a readable JPEG: ", tjGetErrorStr2(h));
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

// The two functions that call libpng: every error longjmps back to their own setjmp, and they hold only
// trivially destructible locals, so no C++ destructor is ever skipped. They return false on error.
inline bool png_read_header(png_handles& h, png_reader* reader, png_uint_32* w, png_uint_32* ht, png_size_t* rowbytes) {
  if (setjmp(png_jmpbuf(h.png))) return false;
  png_set_read_fn(h.png, reader, png_read_bytes);
  png_read_info(h.png, h.info);
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

inline rgb_image decode_png(const std::vector<unsigned char>& bytes, const std::string& where) {
  png_failure failure;
  png_handles h;
  h.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &failure, png_on_error, png_on_warning);
  GRCNN_CHECK(h.png, io_error, "image: cannot initialise the PNG decoder for '", where, "'");
  h.info = png_create_info_struct(h.png);
  GRCNN_CHECK(h.info, io_error, "image: cannot initialise the PNG decoder for '", where, "'");
  png_reader reader{&bytes, 0};
  png_uint_32 w = 0, ht = 0;
  png_size_t rowbytes = 0;
  GRCNN_CHECK(png_read_header(h, &reader, &w, &ht, &rowbytes), io_error, "image: '", where,
              "' is not a readable PNG: ", failure.message);
  GRCNN_CHECK(w > 0 && ht > 0 && static_cast<std::uint64_t>(w) * ht <= (std::uint64_t{1} << 28), io_error, "image: '",
              where, "' declares ", w, "x", ht, " pixels");
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

inline rgb_image decode_image(const std::filesystem::path& path) {
  const std::string where = path.string();
  const auto bytes = image_detail::read_file(path);
  if (bytes.size() >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff)
    return image_detail::decode_jpeg(bytes, where);
  if (bytes.size() >= 8 && png_sig_cmp(bytes.data(), 0, 8) == 0) return image_detail::decode_png(bytes, where);
  throw io_error("image: '" + where + "' is neither a JPEG nor a PNG file");
}

// Writes an 8-bit RGB PNG (via a temporary file renamed into place, so a failure leaves no partial file).
inline void write_png(const std::filesystem::path& path, const rgb_image& img) {
  GRCNN_CHECK(img.width > 0 && img.height > 0 && img.pixels.size() == static_cast<std::size_t>(img.width) * img.height * 3,
              shape_error, "write_png: malformed ", img.width, "x", img.height, " image for '", path.string(), "'");
  const std::string tmp = path.string() + ".tmp";
  png_image im{};
  im.version = PNG_IMAGE_VERSION;
  im.width = static_cast<png_uint_32>(img.width);
  im.height = static_cast<png_uint_32>(img.height);
  im.format = PNG_FORMAT_RGB;
  const bool ok = png_image_write_to_file(&im, tmp.c_str(), 0, img.pixels.data(), 0, nullptr) != 0;
  const std::string why = im.message;
  png_image_free(&im);
  if (!ok) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw io_error("write_png: cannot write '" + path.string() + "': " + why);
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace grcnn::data
