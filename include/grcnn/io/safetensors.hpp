#pragma once
// safetensors read and write, from the format's definition: an 8-byte little-endian header length, a
// JSON header mapping names to {dtype, shape, data_offsets} (plus optional "__metadata__"), then the raw
// little-endian data. Every malformed input raises io_error naming the file and what is wrong.
#include <algorithm>
#include <bit>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "grcnn/core/tensor.hpp"
#include "grcnn/io/json.hpp"
#include "grcnn/io/output_file.hpp"

namespace grcnn::io {

// Tensors by name in file order, with the file's string metadata.
class tensor_dict {
 public:
  void add(std::string name, tensor t) {
    GRCNN_CHECK(index_.find(name) == index_.end(), io_error, "tensor_dict: duplicate name '", name, "'");
    index_[name] = entries_.size();
    entries_.emplace_back(std::move(name), std::move(t));
  }
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  const tensor& at(const std::string& name) const {
    auto it = index_.find(name);
    GRCNN_CHECK(it != index_.end(), io_error, "tensor_dict: no tensor named '", name, "'",
                origin_.empty() ? "" : " in " + origin_);
    return entries_[it->second].second;
  }
  const std::vector<std::pair<std::string, tensor>>& entries() const { return entries_; }
  std::size_t size() const { return entries_.size(); }
  std::map<std::string, std::string> metadata;
  std::string origin_;  // the file it came from, for messages

 private:
  std::vector<std::pair<std::string, tensor>> entries_;
  std::map<std::string, std::size_t> index_;
};

namespace st_detail {
inline const char* code(dtype t) {
  switch (t) {
    case dtype::f32: return "F32";
    case dtype::f64: return "F64";
    case dtype::bf16: return "BF16";
    case dtype::i64: return "I64";
    case dtype::f16: return "F16";
  }
  return "?";
}
}  // namespace st_detail

inline constexpr std::uint64_t max_header_bytes = 100u << 20;  // the reference implementation's limit

namespace st_detail {

// One tensor as the header describes it, its bytes relative to the data section.
struct entry {
  std::string name;
  dtype type;
  grcnn::shape dims;
  std::uint64_t begin, end;
};

// The file's size, its header length and the parsed header.
struct header {
  std::uint64_t file_size = 0, length = 0;
  nlohmann::json json;
};

// The 8-byte length and the JSON header it announces, both checked against the file's size before the
// header is allocated (a hostile length must not allocate gigabytes).
inline header read_header(std::ifstream& in, const std::string& where) {
  header h;
  in.seekg(0, std::ios::end);
  h.file_size = static_cast<std::uint64_t>(in.tellg());
  in.seekg(0);
  GRCNN_CHECK(h.file_size >= 8, io_error, "safetensors: '", where, "' is ", h.file_size,
              " bytes, shorter than the 8-byte header length");
  unsigned char len_bytes[8];
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  for (int i = 7; i >= 0; --i) h.length = h.length << 8 | len_bytes[i];
  GRCNN_CHECK(h.length <= max_header_bytes, io_error, "safetensors: '", where, "' declares a header of ", h.length,
              " bytes (limit ", max_header_bytes, ")");
  GRCNN_CHECK(h.length <= h.file_size - 8, io_error, "safetensors: '", where, "' declares a header of ", h.length,
              " bytes but the file has only ", h.file_size - 8, " after the length (truncated?)");
  std::string text(h.length, '\0');
  in.read(text.data(), static_cast<std::streamsize>(h.length));
  GRCNN_CHECK(in.good(), io_error, "safetensors: '", where, "': reading the header failed");
  try {
    h.json = parse_json(text, where);
  } catch (const io_error& e) {
    throw io_error(std::string("safetensors: the header of ") + e.what());
  }
  GRCNN_CHECK(h.json.is_object(), io_error, "safetensors: '", where, "': the header is not a JSON object");
  return h;
}

// "__metadata__": string values only, as the format defines it.
inline void read_metadata(const nlohmann::json& v, const std::string& where, std::map<std::string, std::string>& metadata) {
  GRCNN_CHECK(v.is_object(), io_error, "safetensors: '", where, "': __metadata__ is not an object");
  for (auto& [k, s] : v.items()) {
    GRCNN_CHECK(s.is_string(), io_error, "safetensors: '", where, "': metadata '", k, "' is not a string");
    metadata[k] = s.get<std::string>();
  }
}

inline dtype parse_dtype(const std::string& code, const std::string& ctx) {
  if (code == "F32") return dtype::f32;
  if (code == "F64") return dtype::f64;
  if (code == "BF16") return dtype::bf16;
  if (code == "I64") return dtype::i64;
  if (code == "F16") return dtype::f16;
  throw io_error(ctx + "unsupported dtype " + code + " (F32, F64, BF16, F16, I64 are read)");
}

// Extents that fit a shape: non-negative integers up to INT64_MAX, at most max_rank of them.
inline grcnn::shape parse_shape(const nlohmann::json& s, const std::string& ctx) {
  GRCNN_CHECK(s.is_array() && s.size() <= static_cast<std::size_t>(grcnn::shape::max_rank), io_error,
              ctx, "shape must be an array of at most ", grcnn::shape::max_rank, " extents");
  grcnn::shape dims;
  for (auto& d : s) {
    GRCNN_CHECK((d.is_number_unsigned() && d.get<std::uint64_t>() <= std::uint64_t{INT64_MAX}) ||
                    (d.is_number_integer() && d.get<std::int64_t>() >= 0),
                io_error, ctx, "shape holds a non-integer, negative or out-of-range extent");
    dims.push_back(d.get<std::int64_t>());
  }
  return dims;
}

// One tensor's entry: its offsets inside the data section and exactly as many bytes as its shape needs.
inline entry parse_entry(const std::string& name, const nlohmann::json& v, std::uint64_t data_size, const std::string& where) {
  const std::string ctx = "safetensors: '" + where + "', tensor '" + name + "': ";
  GRCNN_CHECK(v.is_object() && v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"), io_error,
              ctx, "needs dtype, shape and data_offsets");
  GRCNN_CHECK(v["dtype"].is_string(), io_error, ctx, "dtype is not a string");
  const std::string code = v["dtype"].get<std::string>();
  entry e{name, parse_dtype(code, ctx), parse_shape(v["shape"], ctx), 0, 0};
  const auto& off = v["data_offsets"];
  GRCNN_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
              io_error, ctx, "data_offsets must be two non-negative integers");
  e.begin = off[0].get<std::uint64_t>();
  e.end = off[1].get<std::uint64_t>();
  GRCNN_CHECK(e.begin <= e.end && e.end <= data_size, io_error, ctx, "data_offsets [", e.begin, ", ", e.end,
              "] outside the ", data_size, "-byte data section");
  std::uint64_t count = 1, need = 0;
  for (auto d : e.dims)
    GRCNN_CHECK(!__builtin_mul_overflow(count, static_cast<std::uint64_t>(d), &count), io_error, ctx, "shape ", e.dims,
                " is too large");
  GRCNN_CHECK(!__builtin_mul_overflow(count, static_cast<std::uint64_t>(size_of(e.type)), &need), io_error, ctx,
              "shape ", e.dims, " is too large");
  GRCNN_CHECK(e.end - e.begin == need, io_error, ctx, "shape ", e.dims, " of ", code, " needs ", need,
              " bytes, data_offsets give ", e.end - e.begin);
  return e;
}

// As the reference implementation: the tensors (sorted by offset) tile the data section, with no
// overlap, gap or tail (bytes outside every tensor could hide anything, and a reader could not tell a
// truncated table).
inline void check_tiling(const std::vector<entry>& list, std::uint64_t data_size, const std::string& where) {
  std::uint64_t covered = 0;
  for (const auto& e : list) {
    if (e.begin == e.end) continue;  // an empty tensor occupies no bytes
    GRCNN_CHECK(e.begin >= covered, io_error, "safetensors: '", where, "': tensor '", e.name,
                "' overlaps the tensor before it (data_offsets [", e.begin, ", ", e.end, "])");
    GRCNN_CHECK(e.begin == covered, io_error, "safetensors: '", where, "': bytes [", covered, ", ", e.begin,
                ") of the data section belong to no tensor (before '", e.name, "')");
    covered = e.end;
  }
  GRCNN_CHECK(covered == data_size, io_error, "safetensors: '", where, "': bytes [", covered, ", ", data_size,
              ") at the end of the data section belong to no tensor");
}

// The checked entries' bytes, in offset order; the data section starts at `data_start`.
inline void read_tensors(std::ifstream& in, const std::vector<entry>& list, std::uint64_t data_start, const std::string& where,
                         tensor_dict& out) {
  for (const auto& e : list) {
    tensor t = tensor::empty(e.dims, e.type);
    in.seekg(static_cast<std::streamoff>(data_start + e.begin));
    in.read(static_cast<char*>(t.raw()), static_cast<std::streamsize>(e.end - e.begin));
    GRCNN_CHECK(in.good() && static_cast<std::uint64_t>(in.gcount()) == e.end - e.begin, io_error, "safetensors: '", where, "': read of tensor '", e.name, "' failed");
    out.add(e.name, std::move(t));
  }
}

}  // namespace st_detail

// Reads a whole safetensors file (F32, F64, BF16, F16, I64). Every entry is checked, and the entries
// against each other, before any tensor is allocated.
inline tensor_dict load_safetensors(const std::filesystem::path& path) {
  const std::string where = path.string();
  std::error_code ec;
  GRCNN_CHECK(!std::filesystem::is_directory(path, ec), io_error, "safetensors: '", where, "' is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  GRCNN_CHECK(in.good(), io_error, "safetensors: cannot open '", where, "'");
  const st_detail::header h = st_detail::read_header(in, where);
  const std::uint64_t data_size = h.file_size - 8 - h.length;
  std::vector<st_detail::entry> list;
  tensor_dict out;
  out.origin_ = where;
  for (auto& [name, v] : h.json.items()) {
    if (name == "__metadata__")
      st_detail::read_metadata(v, where, out.metadata);
    else
      list.push_back(st_detail::parse_entry(name, v, data_size, where));
  }
  std::sort(list.begin(), list.end(), [](const st_detail::entry& a, const st_detail::entry& b) { return a.begin < b.begin; });
  st_detail::check_tiling(list, data_size, where);
  st_detail::read_tensors(in, list, 8 + h.length, where, out);
  return out;
}

// Writes through io::output_file: atomically (temporary file, fsync, rename) for regular files, through
// symbolic links and into devices; every write checked.
// Tensors are written plain (opaque and nhwc tensors are converted to logical order).
inline void save_safetensors(const std::filesystem::path& path, const std::vector<std::pair<std::string, tensor>>& tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  nlohmann::ordered_json j;
  if (!metadata.empty()) j["__metadata__"] = metadata;
  std::vector<tensor> plain;
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    GRCNN_CHECK(name != "__metadata__", io_error, "safetensors: '__metadata__' is not a tensor name");
    plain.push_back(t.to_layout(layout::plain).to_device(cpu_device));
    j[name] = {{"dtype", st_detail::code(t.type())},
               {"shape", std::vector<std::int64_t>(t.dims().begin(), t.dims().end())},
               {"data_offsets", {offset, offset + plain.back().bytes()}}};
    offset += plain.back().bytes();
  }
  std::string header = j.dump();
  header.append((8 - header.size() % 8) % 8, ' ');  // data starts 8-byte aligned
  output_file out(path, "safetensors");
  unsigned char len[8];
  const std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  out.write(len, 8);
  out.write(header);
  for (const auto& t : plain) out.write(t.raw(), t.bytes());
  out.commit();
}
inline void save_safetensors(const std::filesystem::path& path, const tensor_dict& d) {
  save_safetensors(path, d.entries(), d.metadata);
}

}  // namespace grcnn::io
