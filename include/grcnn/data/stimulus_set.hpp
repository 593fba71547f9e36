#pragma once
// A Brain-Score stimulus set: a CSV with one row per stimulus (stimulus_id or image_id, then any
// metadata such as object_name, category_name, size) and the image files in a folder. The file of a
// stimulus is the CSV's relative-path column (image_current_relative_file_path, filename or filepath)
// when that file exists, otherwise <id>.png / .jpg / .jpeg in the folder. An image list (one path per
// line, id = file stem) makes a set without metadata.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "grcnn/core/error.hpp"
#include "grcnn/data/class_names.hpp"
#include "grcnn/data/image.hpp"
#include "grcnn/io/text_file.hpp"

namespace grcnn::data {

struct stimulus_set {
  std::vector<std::string> ids;
  std::vector<std::filesystem::path> paths;                  // one per id
  std::map<std::string, std::vector<std::string>> columns;  // metadata, one entry per id

  std::size_t size() const { return ids.size(); }
  const std::vector<std::string>& column(const std::string& name) const {
    const auto it = columns.find(name);
    if (it == columns.end()) {
      std::string names;
      for (const auto& [k, v] : columns) names += (names.empty() ? "" : ", ") + k;
      throw error("stimulus set: no column '" + name + "' (columns: " + names + ")");
    }
    return it->second;
  }
  // The position of each id (an unknown id is an error naming it).
  std::size_t index_of(const std::string& id) const {
    const auto it = std::find(ids.begin(), ids.end(), id);
    GRCNN_CHECK(it != ids.end(), error, "stimulus set: no stimulus '", id, "'");
    return static_cast<std::size_t>(it - ids.begin());
  }
};

namespace stimulus_detail {
inline std::filesystem::path find_image(const std::filesystem::path& dir, const std::string& id, const std::string& where) {
  for (const char* ext : {".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG"}) {
    const auto p = dir / (id + ext);
    if (std::filesystem::exists(p)) return p;
  }
  throw io_error(detail::concat(where, ": no image file for stimulus '", id, "' in ", dir.string(), " (tried ", id,
                                ".png/.jpg/.jpeg)"));
}
}  // namespace stimulus_detail

inline stimulus_set read_stimulus_csv(const std::filesystem::path& csv, const std::filesystem::path& image_dir) {
  std::istringstream in = io::open_text_file(csv, "stimulus CSV");
  std::string line;
  GRCNN_CHECK(static_cast<bool>(std::getline(in, line)), io_error, csv.string(), ": empty file");
  const auto header = split_csv_line(line);
  auto col = [&](std::initializer_list<const char*> names) -> int {
    for (const char* n : names)
      for (std::size_t i = 0; i < header.size(); ++i)
        if (header[i] == n) return static_cast<int>(i);
    return -1;
  };
  const int id_col = col({"stimulus_id", "image_id"});
  GRCNN_CHECK(id_col >= 0, io_error, csv.string(), ": no 'stimulus_id' or 'image_id' column in the header");
  const int path_col = col({"image_current_relative_file_path", "filename", "filepath"});
  stimulus_set s;
  int row = 1;
  while (std::getline(in, line)) {
    ++row;
    if (line.empty() || line == "\r") continue;
    const auto f = split_csv_line(line);
    GRCNN_CHECK(f.size() == header.size(), io_error, csv.string(), ":", row, ": ", f.size(), " fields, the header has ",
                header.size());
    const auto& id = f[static_cast<std::size_t>(id_col)];
    GRCNN_CHECK(!id.empty(), io_error, csv.string(), ":", row, ": empty stimulus id");
    GRCNN_CHECK(std::find(s.ids.begin(), s.ids.end(), id) == s.ids.end(), io_error, csv.string(), ":", row,
                ": stimulus '", id, "' listed twice");
    s.ids.push_back(id);
    // The path column when its file exists (BrainIO CSVs may carry names from another machine),
    // otherwise <id>.png|jpg in the folder.
    if (path_col >= 0 && !f[static_cast<std::size_t>(path_col)].empty() &&
        std::filesystem::exists(image_dir / f[static_cast<std::size_t>(path_col)])) {
      s.paths.push_back(image_dir / f[static_cast<std::size_t>(path_col)]);
    } else {
      s.paths.push_back(stimulus_detail::find_image(image_dir, id, csv.string()));
    }
    for (std::size_t i = 0; i < header.size(); ++i)
      if (static_cast<int>(i) != id_col) s.columns[header[i]].push_back(f[i]);
  }
  GRCNN_CHECK(!s.ids.empty(), io_error, csv.string(), ": no stimuli");
  return s;
}

// One image path per line (relative paths are taken from the list's folder); ids are the file stems.
inline stimulus_set read_image_list(const std::filesystem::path& list) {
  std::istringstream in = io::open_text_file(list, "image list");
  stimulus_set s;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    std::filesystem::path p(line);
    if (p.is_relative()) p = list.parent_path() / p;
    GRCNN_CHECK(std::filesystem::exists(p), io_error, list.string(), ": image ", p.string(), " does not exist");
    const auto id = p.stem().string();
    GRCNN_CHECK(std::find(s.ids.begin(), s.ids.end(), id) == s.ids.end(), io_error, list.string(), ": two images named ", id);
    s.ids.push_back(id);
    s.paths.push_back(p);
  }
  GRCNN_CHECK(!s.ids.empty(), io_error, list.string(), ": no images");
  return s;
}

}  // namespace grcnn::data
