// The data loader alone: images/s decoded from JPEG and augmented to 224x224 (RandomResizedCrop +
// horizontal flip + normalise, channels-last f32), as ImageNet training runs it. Without --data it
// first writes an ImageFolder of ImageNet-sized (500x375, quality 90) JPEGs made from the repository's
// stimulus image with per-image shifts and colour changes. Prints one JSON line per worker count.
#include <CLI/CLI.hpp>

#include <chrono>
#include <iostream>

#include <nlohmann/json.hpp>
#include <turbojpeg.h>

#include <grcnn/data/image_folder.hpp>
#include <grcnn/data/loader.hpp>

using namespace grcnn;
namespace fs = std::filesystem;

namespace {

void write_jpeg(const data::rgb_image& img, const fs::path& path) {
  tjhandle h = tjInitCompress();
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  const int rc = tjCompress2(h, img.pixels.data(), img.width, 0, img.height, TJPF_RGB, &buf, &size, TJSAMP_420, 90, 0);
  if (rc == 0) {
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(buf), static_cast<std::streamsize>(size));
  }
  tjFree(buf);
  tjDestroy(h);
  GRCNN_CHECK(rc == 0, io_error, "bench_loader: JPEG encoding of '", path.string(), "' failed");
}

void make_folder(const fs::path& dir, const fs::path& source, int images) {
  const data::rgb_image base = data::resize_bilinear(data::decode_image(source), 560, 420);
  for (int i = 0; i < images; ++i) {
    const fs::path cls = dir / ("class_" + std::to_string(i % 4));
    fs::create_directories(cls);
    data::rgb_image img = data::crop(base, {(i * 7) % 45, (i * 13) % 60, 375, 500});
    for (std::size_t p = 0; p < img.pixels.size(); ++p)
      img.pixels[p] = static_cast<std::uint8_t>(std::min(255, img.pixels[p] + (i * 37 + static_cast<int>(p % 3) * 11) % 40));
    write_jpeg(img, cls / (std::to_string(i) + ".jpg"));
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"grcnn data loader benchmark: JPEG decode + RandomResizedCrop(224) + flip + normalise"};
  std::string data_dir, source = GRCNN_BENCH_SOURCE_IMAGE;
  int images = 256, batch = 32, epochs = 2, size = 224;
  std::vector<int> workers{1, 2};
  app.add_option("--data", data_dir, "an ImageFolder of JPEGs (default: generate one under build/bench_loader_images)");
  app.add_option("--images", images, "images to generate")->check(CLI::PositiveNumber);
  app.add_option("--batch", batch, "batch size")->check(CLI::PositiveNumber);
  app.add_option("--epochs", epochs, "passes over the folder (timed)")->check(CLI::PositiveNumber);
  app.add_option("--size", size, "crop size")->check(CLI::PositiveNumber);
  app.add_option("--workers", workers, "worker counts to measure")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    if (data_dir.empty()) {
      data_dir = "bench_loader_images";
      if (!fs::exists(data_dir)) make_folder(data_dir, source, images);
    }
    const data::image_folder folder(data_dir);
    data::pipeline p;
    p.steps = {data::random_resized_crop(size), data::random_horizontal_flip()};
    for (const int w : workers) {
      data::loader l(folder, p, {.batch_size = static_cast<std::size_t>(batch), .workers = w, .prefetch = 2 * w, .seed = 1});
      std::size_t n = 0;
      const auto t0 = std::chrono::steady_clock::now();
      for (int e = 0; e < epochs; ++e) {
        l.start_epoch(e);
        while (auto b = l.next()) n += b->size();
      }
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::cout << nlohmann::json{{"workers", w}, {"images", n}, {"seconds", s}, {"images_per_s", static_cast<double>(n) / s},
                                  {"size", size}, {"folder", data_dir}}
                       .dump()
                << std::endl;
    }
  } catch (const grcnn::error& e) {
    std::cerr << "bench_loader: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
