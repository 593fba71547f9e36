#pragma once
// Text inputs (CSV tables, id and image lists): one way to open them, so every reader refuses a folder
// or an unreadable path by name, and reads a file that starts with a UTF-8 byte-order mark (as
// spreadsheet programs write "CSV UTF-8") as if it had none.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "grcnn/core/error.hpp"

namespace grcnn::io {

inline constexpr std::uintmax_t max_text_file_bytes = std::uintmax_t{1} << 30;

// The whole file as a stream of lines; `what` names the reader in messages ("stimulus CSV").
inline std::istringstream open_text_file(const std::filesystem::path& path, const std::string& what) {
  std::error_code ec;
  GRCNN_CHECK(!std::filesystem::is_directory(path, ec), io_error, what, ": '", path.string(), "' is a directory");
  std::ifstream in(path, std::ios::binary);
  GRCNN_CHECK(in, io_error, what, ": cannot open '", path.string(), "'");
  const auto size = std::filesystem::file_size(path, ec);
  GRCNN_CHECK(ec || size <= max_text_file_bytes, io_error, what, ": '", path.string(), "' is ", size,
              " bytes, above the ", max_text_file_bytes, "-byte limit for text inputs");
  std::ostringstream text;
  text << in.rdbuf();
  GRCNN_CHECK(!in.bad(), io_error, what, ": reading '", path.string(), "' failed");
  std::string s = std::move(text).str();
  if (s.size() >= 3 && s.compare(0, 3, "\xEF\xBB\xBF") == 0) s.erase(0, 3);
  return std::istringstream(std::move(s));
}

}  // namespace grcnn::io
