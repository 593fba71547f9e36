#pragma once
// torchvision's ImageFolder: root/<class>/<...>/<image>; classes are the sub-folder names sorted
// (byte order, as Python's sorted), class index = position in that order; files are found recursively
// and sorted per class. Only extensions we decode (.jpg, .jpeg, .png, any case) are listed.
#include <algorithm>
#include <filesystem>

#include "grcnn/data/dataset.hpp"

namespace grcnn::data {

class image_folder final : public dataset {
 public:
  explicit image_folder(const std::filesystem::path& root) : root_(root) {
    namespace fs = std::filesystem;
    GRCNN_CHECK(fs::is_directory(root), io_error, "image folder: '", root.string(), "' is not a directory");
    for (const auto& e : fs::directory_iterator(root))
      if (e.is_directory()) classes_.push_back(e.path().filename().string());
    std::sort(classes_.begin(), classes_.end());
    GRCNN_CHECK(!classes_.empty(), io_error, "image folder: '", root.string(), "' has no class sub-folders");
    for (std::size_t c = 0; c < classes_.size(); ++c) {
      std::vector<fs::path> files;
      for (const auto& e : fs::recursive_directory_iterator(root / classes_[c], fs::directory_options::follow_directory_symlink))
        if (e.is_regular_file() && decodable(e.path())) files.push_back(e.path());
      std::sort(files.begin(), files.end());
      GRCNN_CHECK(!files.empty(), io_error, "image folder: class folder '", (root / classes_[c]).string(),
                  "' holds no .jpg, .jpeg or .png file");
      for (auto& f : files) items_.push_back({std::move(f), static_cast<std::int64_t>(c)});
    }
  }
  std::size_t size() const override { return items_.size(); }
  std::int64_t num_classes() const override { return static_cast<std::int64_t>(classes_.size()); }
  std::string describe() const override { return "image folder '" + root_.string() + "'"; }
  sample get(std::size_t i) const override {
    check_index(i);
    return {decode_image(items_[i].path), items_[i].label};
  }
  const std::vector<std::string>& classes() const { return classes_; }
  const std::filesystem::path& path(std::size_t i) const { return items_.at(i).path; }

 private:
  static bool decodable(const std::filesystem::path& p) {
    std::string ext = p.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
  }
  struct item {
    std::filesystem::path path;
    std::int64_t label;
  };
  std::filesystem::path root_;
  std::vector<std::string> classes_;
  std::vector<item> items_;
};

}  // namespace grcnn::data
