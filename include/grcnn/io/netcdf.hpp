#pragma once
// Reading netCDF files (classic or netCDF4/HDF5, through Debian's libnetcdf): variables by name with
// their dimension names, numbers converted to double or int64, strings from NC_STRING variables or from
// fixed-width char arrays (the two ways xarray writes them). Every failure names the file and the
// variable; this layer knows nothing of what the variables mean (see eval/neuroid_assembly.hpp).
#include <netcdf.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "grcnn/core/error.hpp"
#include "grcnn/io/netcdf_classic_header.hpp"
#include "grcnn/io/netcdf_probe.hpp"

namespace grcnn::io {

struct netcdf_variable {
  std::string name;
  nc_type type = NC_NAT;
  std::vector<std::string> dims;   // dimension names, outermost first
  std::vector<std::size_t> shape;  // their lengths
  std::size_t size() const {
    std::size_t n = 1;
    for (auto s : shape) n *= s;
    return n;
  }
  bool is_text() const { return type == NC_STRING || type == NC_CHAR; }
};

class netcdf_file {
 public:
  explicit netcdf_file(const std::filesystem::path& path, const netcdf_open_options& options = {})
      : path_(path.string()) {
    GRCNN_CHECK(std::filesystem::exists(path), io_error, "netcdf: no such file: ", path_);
    std::error_code ec;
    GRCNN_CHECK(!std::filesystem::is_directory(path, ec), io_error, "netcdf: ", path_, " is a directory");
    file_bytes_ = std::filesystem::file_size(path, ec);
    GRCNN_CHECK(!ec, io_error, "netcdf: cannot read the size of ", path_, ": ", ec.message());
    // libnetcdf crashes on some malformed classic headers; ours are checked first (netcdf_classic_header.hpp).
    if (is_classic_netcdf(path)) check_classic_netcdf_header(path, file_bytes_);
    // ... and libhdf5 on some malformed netCDF-4 files: everything is read once in a child process first.
    const std::optional<int> probed = probe_netcdf_in_child(path_, value_cap(), options);
    const int rc = probed && *probed != NC_NOERR ? *probed : nc_open(path_.c_str(), NC_NOWRITE, &id_);
    GRCNN_CHECK(rc == NC_NOERR, io_error, "netcdf: cannot open ", path_, ": ", nc_strerror(rc));
  }
  netcdf_file(const netcdf_file&) = delete;
  netcdf_file& operator=(const netcdf_file&) = delete;
  ~netcdf_file() { nc_close(id_); }

  const std::string& path() const { return path_; }

  std::vector<std::string> variable_names() const {
    int n = 0;
    check(nc_inq_nvars(id_, &n), "listing the variables");
    std::vector<std::string> names;
    for (int v = 0; v < n; ++v) {
      char name[NC_MAX_NAME + 1];
      check(nc_inq_varname(id_, v, name), "reading a variable name");
      names.emplace_back(name);
    }
    return names;
  }
  bool has_variable(const std::string& name) const {
    int v;
    return nc_inq_varid(id_, name.c_str(), &v) == NC_NOERR;
  }

  netcdf_variable variable(const std::string& name) const {
    netcdf_variable info;
    info.name = name;
    const int v = varid(name);
    int ndims = 0;
    check(nc_inq_var(id_, v, nullptr, &info.type, &ndims, nullptr, nullptr), "describing variable '" + name + "'");
    std::vector<int> dimids(static_cast<std::size_t>(ndims));
    if (ndims) check(nc_inq_vardimid(id_, v, dimids.data()), "describing variable '" + name + "'");
    for (int d : dimids) {
      char dn[NC_MAX_NAME + 1];
      std::size_t len = 0;
      check(nc_inq_dim(id_, d, dn, &len), "reading a dimension of '" + name + "'");
      info.dims.emplace_back(dn);
      info.shape.push_back(len);
    }
    // Declared sizes are checked against what the file can hold before anything is allocated: classic
    // files store values raw, netCDF-4 (HDF5) at most deflate's 1032:1 expansion of the file's bytes.
    std::size_t n = 1;
    for (auto len : info.shape)
      GRCNN_CHECK(!__builtin_mul_overflow(n, len, &n), io_error, "netcdf: ", path_, ": variable '", name,
                  "' declares a value count that overflows");
    const std::uintmax_t cap = value_cap();
    GRCNN_CHECK(n <= cap, io_error, "netcdf: ", path_, ": variable '", name, "' declares ", n, " values, more than a file of ",
                file_bytes_, " bytes can hold (at most ", cap, ")");
    return info;
  }

  // Any numeric type as double, decoded as xarray decodes CF variables: values equal to _FillValue or
  // missing_value become NaN, then scale_factor and add_offset apply.
  std::vector<double> read_doubles(const std::string& name) const {
    const auto info = variable(name);
    GRCNN_CHECK(!info.is_text(), io_error, "netcdf: ", path_, ": variable '", name, "' holds text, numbers expected");
    std::vector<double> out(info.size());
    if (out.empty()) return out;
    const int v = varid(name);
    check(nc_get_var_double(id_, v, out.data()), "reading variable '" + name + "'");
    for (const char* fill_name : {"_FillValue", "missing_value"})
      if (const auto fill = numeric_attribute(v, fill_name))
        for (auto& x : out)
          if (x == *fill) x = std::numeric_limits<double>::quiet_NaN();
    const auto scale = numeric_attribute(v, "scale_factor"), offset = numeric_attribute(v, "add_offset");
    if (scale || offset)
      for (auto& x : out) x = x * scale.value_or(1.0) + offset.value_or(0.0);
    return out;
  }

  // Integer types only (a float coordinate where ids are expected is an error, not a silent cast).
  std::vector<std::int64_t> read_integers(const std::string& name) const {
    const auto info = variable(name);
    const bool integral = info.type == NC_BYTE || info.type == NC_SHORT || info.type == NC_INT ||
                          info.type == NC_INT64 || info.type == NC_UBYTE || info.type == NC_USHORT ||
                          info.type == NC_UINT || info.type == NC_UINT64;
    GRCNN_CHECK(integral, io_error, "netcdf: ", path_, ": variable '", name, "' has type ", type_name(info.type),
                ", integers expected");
    std::vector<long long> raw(info.size());
    if (!raw.empty()) check(nc_get_var_longlong(id_, varid(name), raw.data()), "reading variable '" + name + "'");
    return {raw.begin(), raw.end()};
  }

  // One string per element of an NC_STRING variable, or per row of a char array (last dimension = width,
  // trailing NULs and spaces dropped).
  std::vector<std::string> read_strings(const std::string& name) const {
    const auto info = variable(name);
    const int v = varid(name);
    std::vector<std::string> out;
    if (info.type == NC_STRING) {
      string_array raw(info.size());
      if (!raw.p.empty()) check(nc_get_var_string(id_, v, raw.p.data()), "reading variable '" + name + "'");
      for (char* s : raw.p) out.emplace_back(s ? s : "");
      return out;
    }
    GRCNN_CHECK(info.type == NC_CHAR && !info.shape.empty(), io_error, "netcdf: ", path_, ": variable '", name,
                "' has type ", type_name(info.type), ", strings expected");
    // Rows are every dimension but the last; a width of 0 makes each row an empty string.
    const std::size_t width = info.shape.back();
    std::size_t count = 1;
    for (std::size_t d = 0; d + 1 < info.shape.size(); ++d) count *= info.shape[d];
    std::vector<char> raw(info.size());
    if (!raw.empty()) check(nc_get_var_text(id_, v, raw.data()), "reading variable '" + name + "'");
    for (std::size_t i = 0; i < count; ++i) {
      std::string s = width ? std::string(raw.data() + i * width, width) : std::string();
      while (!s.empty() && (s.back() == '\0' || s.back() == ' ')) s.pop_back();
      out.push_back(std::move(s));
    }
    return out;
  }

  // A text attribute of a variable (empty name: a global attribute); empty when absent.
  std::string text_attribute(const std::string& variable_name, const std::string& attribute) const {
    const int v = variable_name.empty() ? NC_GLOBAL : varid(variable_name);
    nc_type type;
    std::size_t len = 0;
    if (nc_inq_att(id_, v, attribute.c_str(), &type, &len) != NC_NOERR) return {};
    if (type == NC_CHAR) {
      std::string s(len, '\0');
      check(nc_get_att_text(id_, v, attribute.c_str(), s.data()), "reading attribute '" + attribute + "'");
      while (!s.empty() && s.back() == '\0') s.pop_back();
      return s;
    }
    if (type == NC_STRING && len >= 1) {
      string_array raw(len);
      check(nc_get_att_string(id_, v, attribute.c_str(), raw.p.data()), "reading attribute '" + attribute + "'");
      return raw.p[0] ? raw.p[0] : "";
    }
    return {};
  }

  static const char* type_name(nc_type t) {
    switch (t) {
      case NC_BYTE: return "byte";
      case NC_CHAR: return "char";
      case NC_SHORT: return "short";
      case NC_INT: return "int";
      case NC_FLOAT: return "float";
      case NC_DOUBLE: return "double";
      case NC_UBYTE: return "ubyte";
      case NC_USHORT: return "ushort";
      case NC_UINT: return "uint";
      case NC_INT64: return "int64";
      case NC_UINT64: return "uint64";
      case NC_STRING: return "string";
      default: return "unknown";
    }
  }

 private:
  // Strings libnetcdf allocated, freed however the read ends.
  struct string_array {
    std::vector<char*> p;
    explicit string_array(std::size_t n) : p(n, nullptr) {}
    ~string_array() {
      if (!p.empty()) nc_free_string(p.size(), p.data());
    }
  };
  // A numeric attribute's first value; empty when absent or not numeric.
  std::optional<double> numeric_attribute(int v, const char* attribute) const {
    nc_type type;
    std::size_t len = 0;
    if (nc_inq_att(id_, v, attribute, &type, &len) != NC_NOERR || len < 1 || type == NC_CHAR || type == NC_STRING)
      return std::nullopt;
    std::vector<double> vals(len);
    if (nc_get_att_double(id_, v, attribute, vals.data()) != NC_NOERR) return std::nullopt;
    return vals[0];
  }
  // The most values a variable may declare: reading allocates up to 8 bytes a value (double, int64, a
  // string pointer), and a file holds at most its size in values (deflate's 1032:1 for netCDF-4).
  std::uintmax_t value_cap() const { return std::max<std::uintmax_t>(file_bytes_, 64 << 10) * 1032 / 8; }
  std::uintmax_t file_bytes_ = 0;
  int varid(const std::string& name) const {
    int v = -1;
    if (nc_inq_varid(id_, name.c_str(), &v) != NC_NOERR) {
      std::string names;
      for (const auto& n : variable_names()) names += (names.empty() ? "" : ", ") + n;
      throw io_error(::grcnn::detail::concat("netcdf: ", path_, ": no variable '", name, "' (the file has: ", names, ")"));
    }
    return v;
  }
  void check(int rc, const std::string& what) const {
    GRCNN_CHECK(rc == NC_NOERR, io_error, "netcdf: ", path_, ": ", what, ": ", nc_strerror(rc));
  }

  std::string path_;
  int id_ = -1;
};

}  // namespace grcnn::io
