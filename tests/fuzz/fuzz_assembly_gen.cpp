// Fuzz target (structure-aware): the input bytes direct libnetcdf's *writer* to build a netCDF file --
// classic, 64-bit offset, CDF5 or netCDF-4 -- from a pool of the names an assembly uses (dimensions
// presentation / neuroid / time_bin / string widths; variables data, stimulus_id, image_id, repetition,
// neuroid_id, region, time bins, extra coordinates) with any types, ranks, extents (0..9), attributes
// (_FillValue, missing_value, scale_factor, add_offset, stimulus_set_name) and values; then
// eval::read_neuroid_assembly reads it and grcnn-score's steps run on it (assembly_pipeline.hpp). Unlike
// fuzz_assembly (raw file bytes, mostly stopped inside libnetcdf's parser), every input here is a
// well-formed file, so the fuzzing reaches the reader's own logic: dimension orders, coordinate shapes,
// char arrays of width 0, zero-length axes, fill values, string and integer types.
// Clean rejections and findings as in fuzz_assembly.
#include <netcdf.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "grcnn/eval/neuroid_assembly.hpp"

#include "assembly_pipeline.hpp"
#include "fuzz_support.hpp"

namespace {

// Consumes the input front to back; zeros once it is used up.
class bytes {
 public:
  bytes(const std::uint8_t* d, std::size_t n) : d_(d), n_(n) {}
  std::uint8_t u8() { return i_ < n_ ? d_[i_++] : 0; }
  std::size_t pick(std::size_t n) { return n ? u8() % n : 0; }
  bool flag() { return u8() & 1; }
  double number() {
    switch (u8() % 8) {
      case 0: return std::numeric_limits<double>::quiet_NaN();
      case 1: return (u8() & 1 ? -1 : 1) * std::numeric_limits<double>::infinity();
      case 2: return -999;  // a common _FillValue
      default: return static_cast<double>(static_cast<std::int8_t>(u8())) / (1 + (u8() % 4));
    }
  }
  bool done() const { return i_ >= n_; }

 private:
  const std::uint8_t* d_;
  std::size_t n_, i_ = 0;
};

const char* const dim_names[] = {"presentation", "neuroid", "time_bin", "sid_len", "nid_len", "x"};
const char* const var_names[] = {"dicarlo.Majaj2015", "stimulus_id", "image_id", "repetition", "neuroid_id", "region",
                                 "time_bin_start", "time_bin_end", "object_name", "animal", "responses", "row"};
const char* const strings[] = {"s0", "s1", "s2", "IT", "V4", "", "s0 ", "image_0", "Chabo_L_M_5_9", "V4\0x"};
const nc_type classic_types[] = {NC_BYTE, NC_CHAR, NC_SHORT, NC_INT, NC_FLOAT, NC_DOUBLE};
const nc_type nc4_types[] = {NC_BYTE,  NC_CHAR,  NC_SHORT, NC_INT,    NC_FLOAT,  NC_DOUBLE,
                             NC_UBYTE, NC_USHORT, NC_UINT, NC_INT64, NC_UINT64, NC_STRING};

// Builds the file; false when libnetcdf refuses the structure (not interesting: try the next input).
// Each of the variables an assembly has is defined as BrainIO writes it unless a byte says otherwise
// (then with a type, rank and dimensions drawn from the input), so most inputs are near-valid assemblies.
bool build(bytes& in, const char* path) {
  const int format = static_cast<int>(in.pick(4));
  const int mode = NC_CLOBBER | (format == 1 ? NC_64BIT_OFFSET : format == 2 ? NC_64BIT_DATA : format == 3 ? NC_NETCDF4 : 0);
  const bool nc4 = format == 3;
  int id;
  if (nc_create(path, mode, &id) != NC_NOERR) return false;
  struct closer {
    int id;
    ~closer() { nc_close(id); }
  } guard{id};
  // Dimensions: presentation, neuroid, time_bin, sid_len, nid_len, x (lengths 0..9; rarely unlimited).
  std::vector<int> dims;
  for (const char* name : dim_names) {
    int d;
    std::size_t len = 1 + in.pick(6);
    if (const auto b = in.u8(); b < 16) len = b % 10;
    if (in.pick(32) == 0) len = NC_UNLIMITED;
    if (nc_def_dim(id, name, len, &d) == NC_NOERR) dims.push_back(d);
  }
  if (dims.size() < 5) return false;
  const int P = dims[0], N = dims[1], T = dims[2], SW = dims[3], NW = dims[4];
  const bool text_char = !nc4 || in.flag();
  const nc_type text = text_char ? NC_CHAR : NC_STRING;
  struct var {
    int id;
    nc_type type;
    std::vector<int> dims;
  };
  struct spec {
    const char* name;
    nc_type type;
    std::vector<int> dims;
  };
  std::vector<int> data_dims{N, P};
  if (in.flag()) data_dims.push_back(T);
  if (in.flag()) std::swap(data_dims[0], data_dims[1]);
  if (data_dims.size() == 3 && in.flag()) std::swap(data_dims[1], data_dims[2]);
  const auto text_dims = [&](int axis, int width) { return text_char ? std::vector<int>{axis, width} : std::vector<int>{axis}; };
  std::vector<spec> specs{{"dicarlo.Majaj2015", in.flag() ? NC_DOUBLE : NC_FLOAT, data_dims},
                          {in.pick(4) ? "image_id" : "stimulus_id", text, text_dims(P, SW)},
                          {"repetition", nc4 && in.flag() ? NC_INT64 : NC_INT, {P}},
                          {"neuroid_id", text, text_dims(N, NW)},
                          {"region", text, text_dims(N, NW)},
                          {"time_bin_start", NC_INT, {T}},
                          {"time_bin_end", NC_INT, {T}},
                          {"object_name", text, text_dims(P, SW)},
                          {var_names[in.pick(std::size(var_names))], text, text_dims(N, NW)}};
  std::vector<var> vars;
  for (auto& sp : specs) {
    const auto how = in.u8();
    if (how >= 240) continue;  // left out
    var v{-1, sp.type, sp.dims};
    if (how >= 200) {  // another definition
      v.type = nc4 ? nc4_types[in.pick(std::size(nc4_types))] : classic_types[in.pick(std::size(classic_types))];
      v.dims.clear();
      const std::size_t rank = in.pick(4);
      for (std::size_t r = 0; r < rank; ++r) v.dims.push_back(dims[in.pick(dims.size())]);
    }
    if (nc_def_var(id, sp.name, v.type, static_cast<int>(v.dims.size()), v.dims.data(), &v.id) != NC_NOERR) continue;
    // Attributes the reader interprets.
    const std::size_t n_atts = in.pick(8) < 6 ? 0 : 1 + in.pick(3);
    for (std::size_t a = 0; a < n_atts; ++a) {
      switch (in.pick(5)) {
        case 0:
        case 1: {
          if (v.type == NC_CHAR || v.type == NC_STRING) break;
          const double x = in.number();
          nc_put_att_double(id, v.id, in.flag() ? "_FillValue" : "missing_value", v.type, 1, &x);
          break;
        }
        case 2: {
          const double x = in.number();
          nc_put_att_double(id, v.id, "scale_factor", in.flag() ? NC_DOUBLE : NC_FLOAT, 1, &x);
          break;
        }
        case 3: {
          const double x = in.number();
          nc_put_att_double(id, v.id, "add_offset", NC_DOUBLE, 1, &x);
          break;
        }
        case 4: {
          const char* str = strings[in.pick(std::size(strings))];
          if (nc4 && in.flag()) nc_put_att_string(id, v.id, "stimulus_set_name", 1, &str);
          else nc_put_att_text(id, v.id, "stimulus_set_name", std::strlen(str), str);
          break;
        }
      }
    }
    vars.push_back(std::move(v));
  }
  if (nc_enddef(id) != NC_NOERR) return false;
  // Values: numbers from the input; strings from the pool; the unlimited dimension grows to 0..3.
  int unlim = -1;
  nc_inq_unlimdim(id, &unlim);
  const std::size_t unlim_len = in.pick(4);
  for (const auto& v : vars) {
    std::vector<std::size_t> count;
    std::size_t n = 1;
    for (int d : v.dims) {
      std::size_t len = 0;
      nc_inq_dimlen(id, d, &len);
      if (d == unlim) len = unlim_len;
      count.push_back(len);
      n *= len;
    }
    if (n == 0 || n > 4096) continue;
    const std::vector<std::size_t> start(count.size(), 0);
    if (v.type == NC_STRING) {
      std::vector<const char*> str(n);
      for (auto& p : str) p = strings[in.pick(std::size(strings))];
      nc_put_vara_string(id, v.id, start.data(), count.data(), str.data());
    } else if (v.type == NC_CHAR) {
      std::vector<char> str(n);
      for (auto& c : str) c = "s0123IT V4\0"[in.pick(11)];
      nc_put_vara_text(id, v.id, start.data(), count.data(), str.data());
    } else {
      std::vector<double> x(n);
      for (auto& e : x) e = in.pick(4) ? static_cast<double>(in.pick(4)) : in.number();  // small ints: repetitions, ids
      nc_put_vara_double(id, v.id, start.data(), count.data(), x.data());  // out of range: NC_ERANGE, kept
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  bytes in(data, size);
  const auto path = grcnn_fuzz::scratch::get().dir() / "generated.nc";
  if (!build(in, path.c_str())) return 0;
  grcnn_fuzz::read_and_exercise(path, in.pick(4) ? "" : "dicarlo.Majaj2015");
  return 0;
}
