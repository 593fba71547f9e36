#pragma once
// IDX files (MNIST, Fashion-MNIST), gzip-compressed or raw: zlib's gzread reads both transparently.
// The declared element count is checked against what the file can hold before anything is allocated: a
// raw file no more than its bytes after the header, a gzip file no more than 1032 times its bytes
// (deflate's largest expansion), and either no more than image_limits::max_array_bytes. The values are
// then read in chunks into a vector that grows as data arrives, so a file that ends early costs no more
// memory than it holds.
#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <zlib.h>

#include "grcnn/core/error.hpp"
#include "grcnn/data/limits.hpp"

namespace grcnn::data {

struct idx_array {
  std::vector<std::int64_t> dims;
  std::vector<std::uint8_t> values;  // unsigned-byte IDX only (type code 0x08)
};

inline idx_array read_idx(const std::filesystem::path& path, const image_limits& lim = default_image_limits()) {
  const std::string where = path.string();
  std::error_code ec;
  const std::uintmax_t file_bytes = std::filesystem::file_size(path, ec);
  GRCNN_CHECK(!ec, io_error, "idx: cannot open '", where, "': ", ec.message());
  gzFile f = gzopen(where.c_str(), "rb");
  GRCNN_CHECK(f, io_error, "idx: cannot open '", where, "'");
  struct closer {
    gzFile f;
    ~closer() { gzclose(f); }
  } guard{f};
  std::array<unsigned char, 4> magic{};
  GRCNN_CHECK(gzread(f, magic.data(), 4) == 4, io_error, "idx: '", where, "' is shorter than the 4-byte magic number");
  GRCNN_CHECK(magic[0] == 0 && magic[1] == 0, io_error, "idx: '", where, "' does not start with an IDX magic number");
  GRCNN_CHECK(magic[2] == 0x08, io_error, "idx: '", where, "' holds element type 0x", std::hex, int(magic[2]),
              "; only unsigned bytes (0x08) are supported");
  const int rank = magic[3];
  GRCNN_CHECK(rank >= 1 && rank <= 4, io_error, "idx: '", where, "' declares ", rank, " dimensions");
  idx_array a;
  std::int64_t total = 1;
  bool overflow = false;
  for (int i = 0; i < rank; ++i) {
    unsigned char b[4];
    GRCNN_CHECK(gzread(f, b, 4) == 4, io_error, "idx: '", where, "' ends inside its dimension list");
    const std::int64_t d = (std::int64_t{b[0]} << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
    a.dims.push_back(d);
    overflow = overflow || __builtin_mul_overflow(total, d, &total);
  }
  // What the file can hold: a raw file its bytes after the header, a gzip stream 1032 times its bytes.
  const bool compressed = gzdirect(f) == 0;
  const std::int64_t header = 4 + 4 * static_cast<std::int64_t>(rank);
  const double can_hold = compressed ? 1032.0 * static_cast<double>(file_bytes)
                                     : static_cast<double>(std::max<std::int64_t>(0, static_cast<std::int64_t>(file_bytes) - header));
  auto declared = [&] {
    std::string s;
    for (std::size_t i = 0; i < a.dims.size(); ++i) s += (i ? " x " : "") + std::to_string(a.dims[i]);
    return s;
  };
  GRCNN_CHECK(!overflow && static_cast<double>(total) <= can_hold, io_error, "idx: '", where, "' is truncated or corrupt: it declares ",
              declared(), " = ", overflow ? std::string("more than 2^63") : std::to_string(total), " values but the file holds at most ",
              static_cast<std::int64_t>(can_hold),
              compressed ? std::string(" (") + std::to_string(file_bytes) + " compressed bytes, expanding at most 1032-fold)"
                         : std::string(" (") + std::to_string(file_bytes) + " bytes, " + std::to_string(header) + " of them header)");
  GRCNN_CHECK(total <= lim.max_array_bytes, image_limit_error, "idx: '", where, "' declares ", declared(), " = ", total,
              " values, above the limit of ", lim.max_array_bytes, " bytes (raise it with --max-array-bytes)");
  // A raw file's bytes are on disk: allocate them at once. A gzip stream may be shorter than its bound:
  // grow with the data (at most 64 MiB at a time beyond what arrived).
  const std::size_t n = static_cast<std::size_t>(total);
  constexpr std::size_t chunk = std::size_t{1} << 26;
  a.values.reserve(compressed ? std::min(n, chunk) : n);
  std::size_t got = 0;
  while (got < n) {
    const std::size_t want = std::min(n - got, chunk);
    if (a.values.capacity() < got + want) a.values.reserve(std::min(n, std::max(got + want, 2 * a.values.capacity())));
    a.values.resize(got + want);
    const int r = gzread(f, a.values.data() + got, static_cast<unsigned>(want));
    GRCNN_CHECK(r > 0, io_error, "idx: '", where, "' is truncated: ", got, " of ", n, " values read");
    got += static_cast<std::size_t>(r);
    a.values.resize(got);
  }
  return a;
}

}  // namespace grcnn::data
