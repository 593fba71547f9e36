// Image decoding and the ImageNet preprocessing against PIL / torchvision semantics, byte for byte
// (fixtures from tests/torch/make_image_fixtures.py), and clear errors for unreadable files.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <grcnn/core/tensor_math.hpp>
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
