#pragma once
// Validates the header of a classic-format netCDF file (CDF-1, CDF-2 "64-bit offset", CDF-5 "64-bit
// data") before libnetcdf parses it. Debian 12's libnetcdf 4.9.0 trusts the header's counts and lengths
// (v1hpg.c): a name length of 0xffffffff, a dimension id beyond the dimension list or a count larger
// than the file crash it inside nc_open (memcpy of size -1, reads past its buffer, hash tables sized
// from garbage; reproducers in tests/fuzz/corpus/assembly/crash-netcdf-*). A
// crash cannot be caught, so every count, length, type and id is checked here against the format's
// grammar (NetCDF "File Format Specifications", classic and 64-bit variants) and against the bytes the
// file has, and a bad header is an io_error naming the file, the byte offset and the element.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "grcnn/core/error.hpp"

namespace grcnn::io {

namespace netcdf_classic {

using ::grcnn::detail::concat;

class classic_header_reader {
 public:
  classic_header_reader(const std::filesystem::path& path, std::uintmax_t file_bytes)
      : path_(path.string()), in_(path, std::ios::binary), size_(file_bytes) {
    GRCNN_CHECK(in_.good(), io_error, "netcdf: cannot read ", path_);
  }

  std::uintmax_t offset() const { return pos_; }
  std::uintmax_t remaining() const { return size_ - pos_; }
  [[noreturn]] void fail(std::uintmax_t at, const std::string& what) const {
    throw io_error(concat("netcdf: ", path_, ": malformed classic-format header at byte ", at, ": ", what,
                          " (file of ", size_, " bytes)"));
  }

  void need(std::uintmax_t n, const std::string& what) const {
    if (n > remaining()) fail(pos_, concat(what, " needs ", n, " bytes, the file has ", remaining(), " left"));
  }
  std::vector<unsigned char> bytes(std::uintmax_t n, const std::string& what) {
    need(n, what);
    std::vector<unsigned char> b(static_cast<std::size_t>(n));
    if (n && !in_.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(n)))
      fail(pos_, concat("reading ", what, " failed"));
    pos_ += n;
    return b;
  }
  void skip(std::uintmax_t n, const std::string& what) {
    need(n, what);
    in_.seekg(static_cast<std::streamoff>(pos_ + n));
    if (!in_) fail(pos_, concat("seeking past ", what, " failed"));
    pos_ += n;
  }
  // Big-endian unsigned integer of `width` bytes (4 or 8).
  std::uint64_t number(int width, const std::string& what) {
    const auto b = bytes(static_cast<std::uintmax_t>(width), what);
    std::uint64_t v = 0;
    for (auto c : b) v = (v << 8) | c;
    return v;
  }

 private:
  std::string path_;
  std::ifstream in_;
  std::uintmax_t size_;
  std::uintmax_t pos_ = 0;
};

// Bytes of one value of an external netCDF type; 0 for a type the version does not have.
inline int classic_type_bytes(std::uint64_t type, int version) {
  switch (type) {
    case 1: case 2: return 1;  // byte, char
    case 3: return 2;          // short
    case 4: case 5: return 4;  // int, float
    case 6: return 8;          // double
    default: break;
  }
  if (version != 5) return 0;
  switch (type) {
    case 7: return 1;           // ubyte
    case 8: return 2;           // ushort
    case 9: return 4;           // uint
    case 10: case 11: return 8; // int64, uint64
    default: return 0;
  }
}

class classic_header_check {
 public:
  classic_header_check(const std::filesystem::path& path, std::uintmax_t file_bytes) : r_(path, file_bytes) {}

  void run() {
    const auto magic = r_.bytes(4, "the magic number");
    if (magic[0] != 'C' || magic[1] != 'D' || magic[2] != 'F') r_.fail(0, "no 'CDF' magic number");
    version_ = magic[3];
    if (version_ != 1 && version_ != 2 && version_ != 5)
      r_.fail(3, concat("format version ", version_, " (1, 2 or 5 expected)"));
    size_width_ = version_ == 5 ? 8 : 4;
    const auto at = r_.offset();
    const auto numrecs = r_.number(size_width_, "the record count");
    if (size_width_ == 4 && numrecs > 0x7fffffffu && numrecs != 0xffffffffu)
      r_.fail(at, concat("negative record count ", numrecs));
    dimensions();
    attributes("");
    variables();
  }

 private:
  enum : std::uint64_t { tag_dimension = 0x0A, tag_variable = 0x0B, tag_attribute = 0x0C };

  // A list's tag and element count: ABSENT (0, 0) or TAG n. Each element takes at least `min_bytes`, so a
  // count the rest of the file cannot hold is refused before anyone allocates for it.
  std::uint64_t list_count(std::uint64_t tag, const char* what, std::uint64_t min_bytes) {
    const auto at = r_.offset();
    const auto t = r_.number(4, concat("the ", what, " list tag"));
    const auto n = r_.number(size_width_, concat("the ", what, " count"));
    if (t == 0) {
      if (n != 0) r_.fail(at, concat("an absent ", what, " list with count ", n));
      return 0;
    }
    if (t != tag) r_.fail(at, concat("tag ", t, " where the ", what, " list (tag ", tag, ") or 0 belongs"));
    if (n > 0x7fffffffu || n > r_.remaining() / min_bytes)
      r_.fail(at, concat(n, " ", what, "s declared, more than the ", r_.remaining(), " bytes left can hold"));
    return n;
  }

  // name = length, bytes, padding to 4. libnetcdf needs 1..NC_MAX_NAME (256) bytes without NUL.
  std::string name(const std::string& of) {
    const auto at = r_.offset();
    const auto len = r_.number(size_width_, concat("the name length of ", of));
    if (len == 0 || len > 256) r_.fail(at, concat("name length ", len, " of ", of, " (1 to 256 expected)"));
    const auto b = r_.bytes(len, concat("the name of ", of));
    r_.skip((4 - len % 4) % 4, concat("the padding of ", of, "'s name"));
    std::string s(b.begin(), b.end());
    if (s.find('\0') != std::string::npos) r_.fail(at, concat("the name of ", of, " holds a NUL byte"));
    return s;
  }

  void dimensions() {
    const auto n = list_count(tag_dimension, "dimension", 2u * static_cast<unsigned>(size_width_));
    lengths_.reserve(static_cast<std::size_t>(n));
    bool record = false;
    for (std::uint64_t d = 0; d < n; ++d) {
      const auto of = concat("dimension ", d);
      name(of);
      const auto at = r_.offset();
      const auto len = r_.number(size_width_, concat("the length of ", of));
      if (len > (size_width_ == 4 ? 0x7fffffffull : 0x7fffffffffffffffull))
        r_.fail(at, concat("negative length ", len, " of ", of));
      if (len == 0) {
        if (record) r_.fail(at, concat(of, " is a second unlimited (record) dimension"));
        record = true;
      }
      lengths_.push_back(len);
    }
  }

  // owner: empty for the global attributes, else "variable 3 'name'".
  void attributes(const std::string& owner) {
    const auto n = list_count(tag_attribute, "attribute", 3u * static_cast<unsigned>(size_width_));
    for (std::uint64_t a = 0; a < n; ++a) {
      const auto what = owner.empty() ? concat("global attribute ", a) : concat("attribute ", a, " of ", owner);
      name(what);
      const auto at = r_.offset();
      const auto type = r_.number(4, concat("the type of ", what));
      const int width = classic_type_bytes(type, version_);
      if (!width) r_.fail(at, concat("type ", type, " of ", what, " is not a CDF-", version_, " type"));
      const auto count_at = r_.offset();
      const auto count = r_.number(size_width_, concat("the value count of ", what));
      if (count > r_.remaining() / static_cast<unsigned>(width))
        r_.fail(count_at, concat(count, " values of ", what, " do not fit in the ", r_.remaining(), " bytes left"));
      const auto bytes = count * static_cast<unsigned>(width);
      r_.skip(bytes + (4 - bytes % 4) % 4, concat("the values of ", what));
    }
  }

  void variables() {
    const auto n = list_count(tag_variable, "variable", 5u * static_cast<unsigned>(size_width_));
    for (std::uint64_t v = 0; v < n; ++v) {
      const auto of = concat("variable ", v);
      const auto var_name = name(of);
      const auto at = r_.offset();
      const auto ndims = r_.number(size_width_, concat("the dimension count of ", of));
      if (ndims > 1024 || ndims > r_.remaining() / static_cast<unsigned>(size_width_))
        r_.fail(at, concat(ndims, " dimensions of ", of, " '", var_name, "' (at most 1024, within the file)"));
      // The variable's bytes (record dimension counted once) must not overflow 63 bits: libnetcdf
      // multiplies the lengths unchecked (a CDF-5 length near 2^64 ends in a division by zero, SIGFPE).
      std::uint64_t bytes = 0;
      for (std::uint64_t i = 0; i < ndims; ++i) {
        const auto id_at = r_.offset();
        const auto id = r_.number(size_width_, concat("a dimension id of ", of));
        if (id >= lengths_.size())
          r_.fail(id_at, concat("dimension id ", id, " of ", of, " '", var_name, "': the file has ", lengths_.size(),
                                " dimensions"));
        if (lengths_[id] == 0 && i != 0)
          r_.fail(id_at, concat(of, " '", var_name, "' uses the unlimited dimension at position ", i, " (only first)"));
        const auto len = std::max<std::uint64_t>(lengths_[id], 1);
        if (i == 0) bytes = len;
        else if (__builtin_mul_overflow(bytes, len, &bytes) || bytes > 0x7fffffffffffffffull)
          r_.fail(id_at, concat("the shape of ", of, " '", var_name, "' overflows 63 bits"));
      }
      attributes(concat(of, " '", var_name, "'"));
      const auto type_at = r_.offset();
      const auto type = r_.number(4, concat("the type of ", of));
      const int width = classic_type_bytes(type, version_);
      if (!width) r_.fail(type_at, concat("type ", type, " of ", of, " '", var_name, "' is not a CDF-", version_, " type"));
      if (__builtin_mul_overflow(std::max<std::uint64_t>(bytes, 1), static_cast<std::uint64_t>(width), &bytes) ||
          bytes > 0x7fffffffffffffffull)
        r_.fail(type_at, concat("the size in bytes of ", of, " '", var_name, "' overflows 63 bits"));
      r_.number(size_width_, concat("the size of ", of));  // vsize: libnetcdf recomputes it from the shape
      const auto begin_at = r_.offset();
      const auto begin = r_.number(version_ == 1 ? 4 : 8, concat("the data offset of ", of));
      if (version_ == 1 && begin > 0x7fffffffu) r_.fail(begin_at, concat("negative data offset of ", of));
      if (version_ != 1 && begin > 0x7fffffffffffffffull) r_.fail(begin_at, concat("negative data offset of ", of));
    }
  }

  classic_header_reader r_;
  int version_ = 1;
  int size_width_ = 4;
  std::vector<std::uint64_t> lengths_;
};

}  // namespace netcdf_classic

// True when the file starts with the classic-format magic "CDF" (libnetcdf's own test).
inline bool is_classic_netcdf(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  char m[3] = {};
  return in.read(m, 3) && m[0] == 'C' && m[1] == 'D' && m[2] == 'F';
}

// Throws io_error for a classic-format header libnetcdf must not see; returns for a well-formed one.
inline void check_classic_netcdf_header(const std::filesystem::path& path, std::uintmax_t file_bytes) {
  netcdf_classic::classic_header_check(path, file_bytes).run();
}

}  // namespace grcnn::io
