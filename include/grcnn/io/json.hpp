#pragma once
// JSON input parsed strictly: a malformed document, a number beyond double range or a key given twice
// in one object is an io_error naming the file (nlohmann keeps the last duplicate silently, so a
// hand-edited file could mean one thing to a reader and another to grcnn).
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "grcnn/core/error.hpp"

namespace grcnn::io {

inline nlohmann::json parse_json(std::string_view text, const std::string& where) {
  using event = nlohmann::json::parse_event_t;
  std::vector<std::set<std::string>> keys;  // one set per open object
  std::string duplicate;
  auto check_keys = [&](int, event ev, nlohmann::json& parsed) {
    if (ev == event::object_start) {
      keys.emplace_back();
    } else if (ev == event::object_end) {
      if (!keys.empty()) keys.pop_back();
    } else if (ev == event::key && !keys.empty()) {
      auto k = parsed.get<std::string>();
      if (!keys.back().insert(k).second && duplicate.empty()) duplicate = std::move(k);
    }
    return true;
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.begin(), text.end(), check_keys);
  } catch (const nlohmann::json::exception& e) {  // parse_error, out_of_range (1e999), ...
    throw io_error("'" + where + "' is not valid JSON: " + e.what());
  }
  GRCNN_CHECK(duplicate.empty(), io_error, "'", where, "' gives the key '", duplicate, "' twice in one object");
  return j;
}

// A JSON file: refuses folders and unreadable files by name, then parses strictly.
inline nlohmann::json read_json_file(const std::filesystem::path& path, const std::string& what) {
  std::error_code ec;
  GRCNN_CHECK(!std::filesystem::is_directory(path, ec), io_error, what, ": '", path.string(), "' is a directory");
  std::ifstream in(path, std::ios::binary);
  GRCNN_CHECK(in, io_error, what, ": cannot open '", path.string(), "'");
  std::ostringstream text;
  text << in.rdbuf();
  GRCNN_CHECK(!in.bad(), io_error, what, ": reading '", path.string(), "' failed");
  try {
    return parse_json(text.str(), path.string());
  } catch (const io_error& e) {
    throw io_error(what + ": " + e.what());
  }
}

}  // namespace grcnn::io
