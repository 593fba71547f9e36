#pragma once
// MNIST and Fashion-MNIST from their IDX files (gzip or raw), held in memory as bytes; samples come out
// as RGB (gray replicated), so the same networks and transforms serve every dataset.
#include <filesystem>
#include <memory>

#include "grcnn/data/dataset.hpp"
#include "grcnn/data/idx.hpp"

namespace grcnn::data {

class idx_dataset final : public dataset {
 public:
  idx_dataset(const std::filesystem::path& images, const std::filesystem::path& labels, std::string name)
      : name_(std::move(name)) {
    idx_array img = read_idx(images);
    const idx_array lab = read_idx(labels);
    GRCNN_CHECK(img.dims.size() == 3, io_error, name_, ": '", images.string(), "' must hold [N, H, W] images, it has ",
                img.dims.size(), " dimensions");
    GRCNN_CHECK(lab.dims.size() == 1 && lab.dims[0] == img.dims[0], io_error, name_, ": '", labels.string(), "' holds ",
                lab.dims.empty() ? 0 : lab.dims[0], " labels for ", img.dims[0], " images");
    GRCNN_CHECK(img.dims[1] > 0 && img.dims[2] > 0, io_error, name_, ": '", images.string(), "' declares ", img.dims[1], " x ",
                img.dims[2], " images");
    check_image_size(static_cast<double>(img.dims[2]), static_cast<double>(img.dims[1]), default_image_limits(),
                     name_ + ": '" + images.string() + "' declares images of");
    height_ = static_cast<int>(img.dims[1]);
    width_ = static_cast<int>(img.dims[2]);
    pixels_ = std::move(img.values);
    labels_.assign(lab.values.begin(), lab.values.end());
    for (std::size_t i = 0; i < labels_.size(); ++i)
      GRCNN_CHECK(labels_[i] < 10, io_error, name_, ": label ", labels_[i], " of image ", i, " in '", labels.string(),
                  "' is outside 0..9");
  }
  std::size_t size() const override { return labels_.size(); }
  std::int64_t num_classes() const override { return 10; }
  std::string describe() const override { return name_; }
  sample get(std::size_t i) const override {
    check_index(i);
    const std::size_t per = static_cast<std::size_t>(width_) * height_;
    return {gray_to_rgb(pixels_.data() + i * per, width_, height_), labels_[i]};
  }
  const std::vector<std::int64_t>& labels() const { return labels_; }

 private:
  std::string name_;
  int width_ = 0, height_ = 0;
  std::vector<std::uint8_t> pixels_;
  std::vector<std::int64_t> labels_;
};

// The standard file names in `dir` ("train-images-idx3-ubyte[.gz]" or "t10k-..."), gzip preferred.
inline std::unique_ptr<idx_dataset> open_mnist_style(const std::filesystem::path& dir, bool train, const std::string& name) {
  const std::string prefix = train ? "train" : "t10k";
  auto find = [&](const std::string& stem) {
    for (const char* ext : {"-ubyte.gz", "-ubyte"}) {
      const auto p = dir / (prefix + stem + ext);
      if (std::filesystem::exists(p)) return p;
    }
    throw io_error(name + ": neither '" + (dir / (prefix + stem + "-ubyte.gz")).string() + "' nor the uncompressed file exists");
  };
  const auto images = find("-images-idx3");  // images first: the error names the first missing file
  const auto labels = find("-labels-idx1");
  return std::make_unique<idx_dataset>(images, labels, name + (train ? " train" : " test"));
}

}  // namespace grcnn::data
