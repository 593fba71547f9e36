#pragma once
// IDX files (MNIST, Fashion-MNIST), gzip-compressed or raw: zlib's gzread reads both transparently.
#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <zlib.h>

#include "grcnn/core/error.hpp"

namespace grcnn::data {

struct idx_array {
  std::vector<std::int64_t> dims;
  std::vector<std::uint8_t> values;  // unsigned-byte IDX only (type code 0x08)
};

inline idx_array read_idx(const std::filesystem::path& path) {
  const std::string where = path.string();
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
  for (int i = 0; i < rank; ++i) {
    unsigned char b[4];
    GRCNN_CHECK(gzread(f, b, 4) == 4, io_error, "idx: '", where, "' ends inside its dimension list");
    const std::int64_t d = (std::int64_t{b[0]} << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
    a.dims.push_back(d);
    GRCNN_CHECK(!__builtin_mul_overflow(total, d, &total) && total <= (std::int64_t{1} << 34), io_error, "idx: '", where,
                "' declares more than 2^34 elements");
  }
  a.values.resize(static_cast<std::size_t>(total));
  std::size_t got = 0;
  while (got < a.values.size()) {
    const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(a.values.size() - got, 1u << 30));
    const int n = gzread(f, a.values.data() + got, chunk);
    GRCNN_CHECK(n > 0, io_error, "idx: '", where, "' is truncated: ", got, " of ", a.values.size(), " values read");
    got += static_cast<std::size_t>(n);
  }
  return a;
}

}  // namespace grcnn::data
