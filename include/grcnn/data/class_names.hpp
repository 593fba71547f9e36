#pragma once
// ImageNet class names from data/imagenet/superclasses.csv (class_index, wnid, class_name,
// superclass_index, superclass_name; quoted fields may hold commas).
#include <charconv>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "grcnn/core/error.hpp"
#include "grcnn/io/text_file.hpp"

namespace grcnn::data {

// Splits one CSV line, honouring double quotes ("" inside quotes is a quote).
inline std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') fields.back() += '"', ++i;
      else if (c == '"') quoted = false;
      else fields.back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else if (c != '\r') {
      fields.back() += c;
    }
  }
  return fields;
}

struct imagenet_class {
  std::string wnid, name;
  int superclass = -1;
  std::string superclass_name;
};

inline std::vector<imagenet_class> read_imagenet_classes(const std::filesystem::path& csv) {
  std::istringstream in = io::open_text_file(csv, "class names");
  std::string line;
  std::getline(in, line);
  GRCNN_CHECK(line.rfind("class_index,wnid,class_name", 0) == 0, io_error, "class names: '", csv.string(),
              "' does not start with the header class_index,wnid,class_name,...");
  std::vector<imagenet_class> out;
  for (int row = 2; std::getline(in, line); ++row) {
    if (line.empty()) continue;
    const auto f = split_csv_line(line);
    GRCNN_CHECK(f.size() == 5, io_error, "class names: '", csv.string(), "' line ", row, " has ", f.size(),
                " fields, expected 5");
    GRCNN_CHECK(f[0] == std::to_string(out.size()), io_error, "class names: '", csv.string(), "' line ", row,
                " has class index ", f[0], ", expected ", out.size());
    int superclass = -1;
    const auto r = std::from_chars(f[3].data(), f[3].data() + f[3].size(), superclass);
    GRCNN_CHECK(r.ec == std::errc() && r.ptr == f[3].data() + f[3].size() && superclass >= 0, io_error, "class names: '",
                csv.string(), "' line ", row, ": superclass_index '", f[3], "' is not a non-negative integer");
    out.push_back({f[1], f[2], superclass, f[4]});
  }
  return out;
}

}  // namespace grcnn::data
