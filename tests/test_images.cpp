// Image decoding and the ImageNet preprocessing against PIL / torchvision semantics, byte for byte
// (fixtures from tests/torch/make_image_fixtures.py), clear errors for unreadable files, and sizes (declared
// by a file or computed by a transform) refused against image_limits before anything is allocated.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <sys/resource.h>
#include <zlib.h>

#include <grcnn/core/tensor_math.hpp>
#include <grcnn/data/augment.hpp>
#include <grcnn/data/screen.hpp>
#include <grcnn/data/transforms.hpp>
#include <grcnn/io/safetensors.hpp>

using namespace grcnn;

namespace {
std::vector<std::int64_t> bytes_of(const data::rgb_image& img) { return {img.pixels.begin(), img.pixels.end()}; }
std::vector<std::string> names(const io::tensor_dict& d) {
  std::vector<std::string> out;
  std::stringstream ss(d.metadata.at("names"));
  for (std::string s; std::getline(ss, s, ',');) out.push_back(s);
  return out;
}
}  // namespace

TEST_CASE("decoding and preprocessing match PIL and torchvision exactly", "[images]") {
  const io::tensor_dict fx = io::load_safetensors("images/image_fixtures.safetensors");
  const auto files = names(fx);
  REQUIRE(files.size() >= 9);
  for (std::size_t i = 0; i < files.size(); ++i) {
    const std::string k = std::to_string(i);
    INFO(files[i]);
    const data::rgb_image img = data::decode_image("images/" + files[i]);
    const tensor& decoded = fx.at("decoded." + k);
    REQUIRE(img.height == decoded.dim(0));
    REQUIRE(img.width == decoded.dim(1));
    CHECK(bytes_of(img) == decoded.values<std::int64_t>());
    CHECK(bytes_of(data::resize_bilinear(img, 37, 23)) == fx.at("resized." + k).values<std::int64_t>());
    const data::rgb_image shorter = data::resize_shorter_side(img, 256);
    CHECK(bytes_of(shorter) == fx.at("short." + k).values<std::int64_t>());
    const data::rgb_image crop = data::imagenet_eval_crop(img);
    CHECK(bytes_of(crop) == fx.at("crop." + k).values<std::int64_t>());
    for (layout l : {layout::plain, layout::nhwc}) {
      tensor batch = tensor::empty({2, 3, 224, 224}, dtype::f32, l);
      data::write_normalized(crop, batch, 1);
      const std::vector<float> all = batch.values<float>();
      const tensor sample = tensor::from_values(shape{3, 224, 224}, std::vector<float>(all.begin() + 3 * 224 * 224, all.end()));
      CHECK(relative_error(sample, fx.at("tensor." + k)) < 1e-6);
    }
  }
}

TEST_CASE("unreadable images raise errors naming the file", "[images]") {
  const auto dir = std::filesystem::temp_directory_path();
  CHECK_THROWS_WITH(data::decode_image(dir / "grcnn_no_such_image.jpg"), Catch::Contains("grcnn_no_such_image.jpg"));
  const auto jpg = std::filesystem::path("images/landscape.jpg");
  std::ifstream in(jpg, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto truncated = dir / "grcnn_truncated.jpg";
  std::ofstream(truncated, std::ios::binary) << bytes.substr(0, 600);
  CHECK_THROWS_WITH(data::decode_image(truncated), Catch::Contains("grcnn_truncated.jpg"));
  const auto png = std::filesystem::path("images/rgb.png");
  std::ifstream pin(png, std::ios::binary);
  std::string pbytes((std::istreambuf_iterator<char>(pin)), std::istreambuf_iterator<char>());
  const auto bad_png = dir / "grcnn_truncated.png";
  std::ofstream(bad_png, std::ios::binary) << pbytes.substr(0, 200);
  CHECK_THROWS_WITH(data::decode_image(bad_png), Catch::Contains("grcnn_truncated.png") && Catch::Contains("PNG"));
  const auto text = dir / "grcnn_not_an_image.png";
  std::ofstream(text) << "hello";
  CHECK_THROWS_WITH(data::decode_image(text), Catch::Contains("neither a JPEG nor a PNG"));
  CHECK_THROWS_AS(data::center_crop(data::rgb_image{10, 10, std::vector<std::uint8_t>(300)}, 20, 20), shape_error);
}

// ---- sizes checked before allocation (limits.hpp) --------------------------------------------

namespace {
double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // kilobytes on Linux
}
using bytes_t = std::vector<unsigned char>;
void write_bytes(const std::filesystem::path& p, const bytes_t& b) {
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}
// A small baseline (SOF0) JPEG of a gradient, made with turbojpeg.
bytes_t small_jpeg(int w, int h) {
  std::vector<unsigned char> rgb(static_cast<std::size_t>(w) * h * 3);
  for (std::size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<unsigned char>(i * 7 % 251);
  tjhandle t = tjInitCompress();
  REQUIRE(t);
  unsigned char* out = nullptr;
  unsigned long size = 0;
  REQUIRE(tjCompress2(t, rgb.data(), w, 0, h, TJPF_RGB, &out, &size, TJSAMP_420, 90, 0) == 0);
  bytes_t b(out, out + size);
  tjFree(out);
  tjDestroy(t);
  return b;
}
// The same bytes with the SOF0 frame header declaring width x height.
bytes_t patch_sof(bytes_t b, int width, int height) {
  for (std::size_t p = 2; p + 9 < b.size(); ++p)
    if (b[p] == 0xFF && b[p + 1] == 0xC0) {
      b[p + 5] = static_cast<unsigned char>(height >> 8), b[p + 6] = static_cast<unsigned char>(height & 0xFF);
      b[p + 7] = static_cast<unsigned char>(width >> 8), b[p + 8] = static_cast<unsigned char>(width & 0xFF);
      return b;
    }
  FAIL("no SOF0 marker");
  return b;
}
// An 8-bit gray PNG of a constant value, made with libpng's simplified API.
bytes_t gray_png(int w, int h) {
  std::vector<unsigned char> px(static_cast<std::size_t>(w) * h, 200);
  png_image im{};
  im.version = PNG_IMAGE_VERSION;
  im.width = static_cast<png_uint_32>(w);
  im.height = static_cast<png_uint_32>(h);
  im.format = PNG_FORMAT_GRAY;
  png_alloc_size_t size = 0;
  REQUIRE(png_image_write_to_memory(&im, nullptr, &size, 0, px.data(), 0, nullptr));
  bytes_t b(size);
  REQUIRE(png_image_write_to_memory(&im, b.data(), &size, 0, px.data(), 0, nullptr));
  b.resize(size);
  png_image_free(&im);
  return b;
}
// The same PNG with its IHDR declaring width x height (and a correct CRC, so libpng reads on).
bytes_t patch_ihdr(bytes_t b, std::uint32_t width, std::uint32_t height) {
  REQUIRE(b.size() > 33);
  REQUIRE(std::string(b.begin() + 12, b.begin() + 16) == "IHDR");
  for (int i = 0; i < 4; ++i) {
    b[16 + i] = static_cast<unsigned char>(width >> (24 - 8 * i));
    b[20 + i] = static_cast<unsigned char>(height >> (24 - 8 * i));
  }
  const auto crc = static_cast<std::uint32_t>(crc32(0, b.data() + 12, 17));
  for (int i = 0; i < 4; ++i) b[29 + i] = static_cast<unsigned char>(crc >> (24 - 8 * i));
  return b;
}
}  // namespace

TEST_CASE("declared and computed image sizes above the limits are refused before allocating", "[images][limits]") {
  const auto dir = std::filesystem::temp_directory_path();
  const double rss_before = peak_rss_mb();

  // A JPEG declaring 65500 x 65500 (4.29e9 pixels, 12.9 GB decoded) in a few hundred bytes.
  const bytes_t jpeg = patch_sof(small_jpeg(16, 16), 65500, 65500);
  CHECK(jpeg.size() < 2000);
  const auto bomb = dir / "grcnn_bomb.jpg";
  write_bytes(bomb, jpeg);
  CHECK_THROWS_AS(data::decode_image(bomb), data::image_limit_error);
  CHECK_THROWS_AS(data::decode_image(bomb), io_error);
  CHECK_THROWS_WITH(data::decode_image(bomb),
                    Catch::Contains("image: '" + bomb.string() +
                                    "' declares 65500 x 65500 pixels (4.29e9), above the limit of 89478485 (raise it with "
                                    "--max-image-pixels)"));
  {  // with the pixel limit raised, the file's own size still bounds what it can hold (a Huffman JPEG)
    data::scoped_image_limits raised({.max_pixels = 10'000'000'000});
    CHECK_THROWS_WITH(data::decode_image(bomb), Catch::Contains("declares 65500 x 65500 pixels, more than its " +
                                                                std::to_string(jpeg.size()) + " bytes can encode"));
  }

  // A 65535 x 1 PNG: refused by the side limit when decoded ...
  const bytes_t strip = gray_png(65535, 1);
  CHECK(strip.size() < 1000);
  const auto strip_path = dir / "grcnn_strip.png";
  write_bytes(strip_path, strip);
  CHECK_THROWS_WITH(data::decode_image(strip_path),
                    Catch::Contains("'" + strip_path.string() +
                                    "' declares 65535 x 1 pixels, a side above the limit of 65500 (raise it with --max-image-side)"));
  {  // ... and with that raised, its resize to a shorter side of 256 (16776960 x 256) is refused.
    data::scoped_image_limits raised({.max_side = 70000});
    const data::rgb_image img = data::decode_image(strip_path);
    CHECK(img.width == 65535);
    CHECK(img.height == 1);
    CHECK_THROWS_WITH(data::imagenet_eval_crop(img),
                      Catch::Contains("resize: a 65535 x 1 image resized to 16776960 x 256 pixels (4.29e9), above the limit "
                                      "of 89478485 (raise it with --max-image-pixels)"));
  }
  // A resize's row pass goes through width x source height: 1 x 20000 to 20000 x 1 would be 4e8 pixels.
  const data::rgb_image column{1, 20000, std::vector<std::uint8_t>(60000, 9)};
  CHECK_THROWS_WITH(data::resize_bilinear(column, 20000, 1), Catch::Contains("passes through 20000 x 20000 pixels (4.00e8)"));
  CHECK(data::resize_bilinear(column, 1, 100).height == 100);

  // A PNG whose IHDR declares 20000 x 20000: the pixel limit, and above it the file's size (deflate's 1032:1).
  const bytes_t big_png = patch_ihdr(gray_png(4, 4), 20000, 20000);
  const auto big_png_path = dir / "grcnn_big.png";
  write_bytes(big_png_path, big_png);
  CHECK_THROWS_WITH(data::decode_image(big_png_path), Catch::Contains("declares 20000 x 20000 pixels (4.00e8), above the limit"));
  {
    data::scoped_image_limits raised({.max_pixels = 1'000'000'000});
    CHECK_THROWS_WITH(data::decode_image(big_png_path),
                      Catch::Contains("more than its " + std::to_string(big_png.size()) + " bytes can encode (deflate"));
  }

  // Transforms that make an image of a computed size: padding, placement on a screen.
  const data::rgb_image small{10, 10, std::vector<std::uint8_t>(300, 1)};
  CHECK_THROWS_WITH(data::pad(small, 100000), Catch::Contains("pad: a 10 x 10 image padded by 100000 becomes 200010 x 200010"));
  CHECK_THROWS_WITH(data::place_on_screen(small, 0.001, 8), Catch::Contains("becomes 80000 x 80000 pixels (6.40e9)"));
  CHECK(data::place_on_screen(small, 4, 8).width == 20);

  CHECK(peak_rss_mb() - rss_before < 200);
}

TEST_CASE("the image limits can be lowered and raised, per call or for the process", "[images][limits]") {
  const auto dir = std::filesystem::temp_directory_path();
  const auto png = dir / "grcnn_20x20.png";
  data::write_png(png, data::rgb_image{20, 20, std::vector<std::uint8_t>(1200, 77)});
  const auto jpg = dir / "grcnn_20x20.jpg";
  write_bytes(jpg, small_jpeg(20, 20));
  for (const auto& p : {png, jpg}) {
    INFO(p);
    CHECK(data::decode_image(p).width == 20);  // the default accepts it
    CHECK_THROWS_WITH(data::decode_image(p, {.max_pixels = 100}),
                      Catch::Contains("declares 20 x 20 pixels (4.00e2), above the limit of 100"));
    {
      data::scoped_image_limits low({.max_pixels = 100});
      CHECK_THROWS_AS(data::decode_image(p), data::image_limit_error);
      CHECK(data::decode_image(p, {.max_pixels = 400}).height == 20);  // an explicit argument wins
    }
    CHECK(data::decode_image(p).width == 20);  // restored
    CHECK_THROWS_WITH(data::decode_image(p, {.max_side = 19}), Catch::Contains("a side above the limit of 19"));
  }
  const data::image_limits before = data::default_image_limits();
  CHECK(before.max_pixels == 89'478'485);
  CHECK_THROWS_WITH(data::set_default_image_limits({.max_pixels = 0}), Catch::Contains("must be positive"));
  CHECK(data::default_image_limits().max_pixels == before.max_pixels);
}
