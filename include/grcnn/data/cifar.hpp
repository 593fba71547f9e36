#pragma once
// CIFAR-10 and CIFAR-100 in their binary distributions: CIFAR-10 records are <label byte><3072 pixel
// bytes> in data_batch_1..5.bin / test_batch.bin; CIFAR-100 records are <coarse><fine><3072> in
// train.bin / test.bin (the fine label is used). Pixels are planar R, G, B planes of 32x32.
#include <filesystem>
#include <fstream>
#include <memory>

#include "grcnn/data/dataset.hpp"

namespace grcnn::data {

class cifar_dataset final : public dataset {
 public:
  static constexpr std::size_t pixels_per_image = 3 * 32 * 32;

  // Each file's size is checked (whole records, and with the files before it within
  // lim.max_array_bytes) before it is read.
  cifar_dataset(const std::filesystem::path& dir, bool cifar100, bool train, const image_limits& lim = default_image_limits())
      : classes_(cifar100 ? 100 : 10) {
    name_ = std::string(cifar100 ? "cifar100" : "cifar10") + (train ? " train" : " test");
    std::vector<std::string> files;
    if (cifar100)
      files = {train ? "train.bin" : "test.bin"};
    else if (train)
      files = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"};
    else
      files = {"test_batch.bin"};
    const std::size_t label_bytes = cifar100 ? 2 : 1, record = label_bytes + pixels_per_image;
    std::uintmax_t held = 0;
    for (const auto& f : files) {
      const auto path = dir / f;
      std::ifstream in(path, std::ios::binary | std::ios::ate);
      GRCNN_CHECK(in, io_error, name_, ": cannot open '", path.string(), "'");
      const std::streamoff size = in.tellg();
      GRCNN_CHECK(size > 0 && static_cast<std::size_t>(size) % record == 0, io_error, name_, ": '", path.string(), "' has ",
                  size, " bytes, not a whole number of ", record, "-byte records (truncated or not a CIFAR file)");
      held += static_cast<std::uintmax_t>(size);
      GRCNN_CHECK(held <= static_cast<std::uintmax_t>(lim.max_array_bytes), image_limit_error, name_, ": '", path.string(),
                  "' has ", size, " bytes, which bring the set to ", held, ", above the limit of ", lim.max_array_bytes,
                  " bytes (raise it with --max-array-bytes)");
      std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
      in.seekg(0);
      in.read(reinterpret_cast<char*>(bytes.data()), size);
      GRCNN_CHECK(in.gcount() == size, io_error, name_, ": cannot read '", path.string(), "' (", in.gcount(), " of ", size,
                  " bytes read)");
      labels_.reserve(labels_.size() + bytes.size() / record);
      pixels_.reserve(pixels_.size() + bytes.size() / record * pixels_per_image);
      for (std::size_t off = 0; off < bytes.size(); off += record) {
        const std::uint8_t label = bytes[off + label_bytes - 1];
        GRCNN_CHECK(label < classes_, io_error, name_, ": record ", off / record, " of '", path.string(), "' has label ",
                    int(label), ", outside 0..", classes_ - 1);
        labels_.push_back(label);
        pixels_.insert(pixels_.end(), bytes.begin() + static_cast<std::ptrdiff_t>(off + label_bytes),
                       bytes.begin() + static_cast<std::ptrdiff_t>(off + record));
      }
    }
  }
  std::size_t size() const override { return labels_.size(); }
  std::int64_t num_classes() const override { return classes_; }
  std::string describe() const override { return name_; }
  sample get(std::size_t i) const override {
    check_index(i);
    sample s;
    s.label = labels_[i];
    s.image.width = s.image.height = 32;
    s.image.pixels.resize(pixels_per_image);
    const std::uint8_t* src = pixels_.data() + i * pixels_per_image;
    for (std::size_t p = 0; p < 1024; ++p)
      for (std::size_t c = 0; c < 3; ++c) s.image.pixels[p * 3 + c] = src[c * 1024 + p];
    return s;
  }

 private:
  std::int64_t classes_;
  std::string name_;
  std::vector<std::uint8_t> pixels_;
  std::vector<std::int64_t> labels_;
};

}  // namespace grcnn::data
