#pragma once
// torchvision's ImageFolder: root/<class>/<...>/<image>; classes are the sub-folder names sorted
// (byte order, as Python's sorted), class index = position in that order. Within a class, folders
// come in the order of their full path strings and files sorted by name within each folder, as
// torchvision's sorted(os.walk(...)) gives them. Only extensions we decode (.jpg, .jpeg, .png, any
// case) are listed.
#include <algorithm>
#include <filesystem>
#include <map>

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
      std::map<std::string, std::vector<std::string>> by_folder;  // folder path -> file names
      for (const auto& e : fs::recursive_directory_iterator(root / classes_[c], fs::directory_options::follow_directory_symlink))
        if (e.is_regular_file() && decodable(e.path()))
          by_folder[e.path().parent_path().string()].push_back(e.path().filename().string());
      GRCNN_CHECK(!by_folder.empty(), io_error, "image folder: class folder '", (root / classes_[c]).string(),
                  "' holds no .jpg, .jpeg or .png file");
      for (auto& [folder, names] : by_folder) {
        std::sort(names.begin(), names.end());
        for (const auto& n : names) items_.push_back({fs::path(folder) / n, static_cast<std::int64_t>(c)});
      }
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
  static bool decodable(const std::filesystem::path& p) { return has_image_extension(p); }
  struct item {
    std::filesystem::path path;
    std::int64_t label;
  };
  std::filesystem::path root_;
  std::vector<std::string> classes_;
  std::vector<item> items_;
};

}  // namespace grcnn::data
