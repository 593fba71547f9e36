// grcnn::data: writes a small PNG, decodes it (data/image.hpp also links libjpeg-turbo's decoder) and
// decodes the test stimulus.
#include <grcnn/data/image.hpp>

#include <filesystem>
#include <iostream>

#include "no_foreign_headers.hpp"

int main() {
  using namespace grcnn;
  data::rgb_image img{.width = 5, .height = 3, .pixels = {}};
  for (int i = 0; i < 5 * 3 * 3; ++i) img.pixels.push_back(static_cast<std::uint8_t>(i * 5));
  const auto path = std::filesystem::temp_directory_path() / "grcnn_consumer_data.png";
  data::write_png(path, img);
  const auto back = data::decode_image(path);
  std::filesystem::remove(path);
  const auto stimulus = data::decode_image(std::filesystem::path(GRCNN_CONSUMER_SOURCE_DIR) / "tests/data/stimulus.png");
  std::cout << "data consumer: " << back.width << "x" << back.height << " PNG round trip, stimulus " << stimulus.width
            << "x" << stimulus.height << "\n";
  return back.width == 5 && back.height == 3 && back.pixels == img.pixels && stimulus.width > 0 ? 0 : 1;
}
