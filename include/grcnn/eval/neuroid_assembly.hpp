#pragma once
// Neural recordings as Brain-Score stores them: a BrainIO NeuroidAssembly (an xarray DataArray written to
// netCDF) with dims presentation x neuroid x time_bin in any order, presentation coordinates
// (stimulus_id or image_id, repetition, ...) and neuroid coordinates (neuroid_id, region, ...).
// read_neuroid_assembly loads it; select_region / drop_neuroids / mean_over_time subset it;
// average_repetitions gives the stimulus x neuroid target of the regression, repetition_matrices the
// per-repetition responses of the split-half ceiling. Stimuli come out in Brain-Score's order
// (stimulus_order): its average_repetition groups presentations by the tuple of every presentation
// coordinate but 'repetition', in the assembly's coordinate order, and sorts the groups by that tuple
// (brainio's multi_groupby); with the stimulus id as the only such coordinate that is the sorted ids.
// Brain-Score's splits index that order.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "grcnn/core/error.hpp"
#include "grcnn/eval/consistency.hpp"
#include "grcnn/io/netcdf.hpp"
#include "grcnn/io/text_file.hpp"

namespace grcnn::eval {

struct neuroid_assembly {
  std::string source;        // the file it came from
  std::string name;          // the data variable, e.g. "dicarlo.Majaj2015"
  std::string stimulus_set;  // its stimulus_set_name attribute, when present
  // presentation axis
  std::vector<std::string> stimulus_id;  // per presentation ("stimulus_id", or "image_id" in older files)
  std::vector<std::int64_t> repetition;  // per presentation; empty when the file has none
  // neuroid axis
  std::vector<std::string> neuroid_id, region;
  // time axis (ms); one entry per bin
  std::vector<std::int64_t> time_bin_start, time_bin_end;
  // responses[t] is presentations x neuroids for time bin t
  std::vector<Eigen::MatrixXd> responses;
  // every other text coordinate, by the axis it lies on
  std::map<std::string, std::vector<std::string>> presentation_text, neuroid_text;
  // every other numeric coordinate along presentation (as double)
  std::map<std::string, std::vector<double>> presentation_numbers;
  // The presentation coordinates' names in the file's order (the stimulus id's and 'repetition'
  // included): the tuple Brain-Score groups and sorts by. Empty: the stimulus id alone.
  std::vector<std::string> presentation_coords;

  std::int64_t presentations() const { return static_cast<std::int64_t>(stimulus_id.size()); }
  std::int64_t neuroids() const { return static_cast<std::int64_t>(neuroid_id.size()); }
  std::int64_t time_bins() const { return static_cast<std::int64_t>(responses.size()); }
};

// Stimulus-level responses: rows in stimulus_order.
struct stimulus_responses {
  std::vector<std::string> stimulus_id;
  std::vector<std::string> neuroid_id;
  Eigen::MatrixXd values;  // stimuli x neuroids
};

namespace assembly_detail {
inline std::size_t axis_of(const io::netcdf_variable& v, const std::string& dim, const std::string& where) {
  const auto it = std::find(v.dims.begin(), v.dims.end(), dim);
  GRCNN_CHECK(it != v.dims.end(), io_error, where, ": data variable '", v.name, "' has no '", dim, "' dimension");
  return static_cast<std::size_t>(it - v.dims.begin());
}
// The data variable: the one named, or the only variable spanning both presentation and neuroid.
inline std::string find_data_variable(const io::netcdf_file& f, const std::string& requested) {
  if (!requested.empty()) return requested;
  std::vector<std::string> found;
  for (const auto& n : f.variable_names()) {
    const auto v = f.variable(n);
    const auto has = [&](const char* d) { return std::find(v.dims.begin(), v.dims.end(), d) != v.dims.end(); };
    if (has("presentation") && has("neuroid")) found.push_back(n);
  }
  GRCNN_CHECK(found.size() == 1, io_error, f.path(), ": expected one variable over (presentation, neuroid), found ",
              found.size(), "; name it explicitly");
  return found[0];
}
}  // namespace assembly_detail

// Loads the assembly. variable: the data variable ("" = the only one over presentation and neuroid);
// open: how libnetcdf is trusted (io/netcdf_probe.hpp: by default the file is read in a child first).
inline neuroid_assembly read_neuroid_assembly(const std::filesystem::path& path, const std::string& variable = "",
                                              const io::netcdf_open_options& open = {}) {
  using namespace assembly_detail;
  io::netcdf_file f(path, open);
  neuroid_assembly a;
  a.source = path.string();
  a.name = find_data_variable(f, variable);
  const auto data = f.variable(a.name);
  const std::string where = a.source;
  GRCNN_CHECK(!data.is_text(), io_error, where, ": data variable '", a.name, "' holds text");
  GRCNN_CHECK(data.dims.size() == 2 || data.dims.size() == 3, io_error, where, ": data variable '", a.name, "' has ",
              data.dims.size(), " dimensions; expected presentation, neuroid and optionally time_bin");
  const auto p_axis = axis_of(data, "presentation", where), n_axis = axis_of(data, "neuroid", where);
  const bool timed = data.dims.size() == 3;
  const auto t_axis = timed ? axis_of(data, "time_bin", where) : 0;
  const auto P = data.shape[p_axis], N = data.shape[n_axis], T = timed ? data.shape[t_axis] : std::size_t{1};
  a.stimulus_set = f.text_attribute(a.name, "stimulus_set_name");

  // Coordinates: every 1-D variable along one of the three axes.
  auto coordinate_length = [&](const std::string& name, const char* dim, std::size_t expected) {
    const auto v = f.variable(name);
    const std::size_t rank = v.type == NC_CHAR ? v.dims.size() - 1 : v.dims.size();
    GRCNN_CHECK(rank == 1 && v.dims[0] == dim && v.shape[0] == expected, io_error, where, ": coordinate '", name,
                "' must lie along '", dim, "' with ", expected, " entries");
  };
  const std::string sid = f.has_variable("stimulus_id") ? "stimulus_id" : "image_id";
  GRCNN_CHECK(f.has_variable(sid), io_error, where, ": no 'stimulus_id' or 'image_id' coordinate");
  coordinate_length(sid, "presentation", P);
  a.stimulus_id = f.read_strings(sid);
  if (f.has_variable("repetition")) {
    coordinate_length("repetition", "presentation", P);
    a.repetition = f.read_integers("repetition");
  }
  GRCNN_CHECK(f.has_variable("neuroid_id"), io_error, where, ": no 'neuroid_id' coordinate");
  coordinate_length("neuroid_id", "neuroid", N);
  a.neuroid_id = f.read_strings("neuroid_id");
  if (f.has_variable("region")) {
    coordinate_length("region", "neuroid", N);
    a.region = f.read_strings("region");
  } else {
    a.region.assign(N, "");
  }
  if (timed && f.has_variable("time_bin_start") && f.has_variable("time_bin_end")) {
    coordinate_length("time_bin_start", "time_bin", T);
    coordinate_length("time_bin_end", "time_bin", T);
    a.time_bin_start = f.read_integers("time_bin_start");
    a.time_bin_end = f.read_integers("time_bin_end");
  } else {
    a.time_bin_start.assign(T, 0);
    a.time_bin_end.assign(T, 0);
  }
  for (const auto& n : f.variable_names()) {
    if (n == a.name) continue;
    const auto v = f.variable(n);
    // The presentation coordinates in file order: one value (or one string) per presentation.
    // Numbers of an atomic type only: a user-defined type (enum, compound, vlen) is no coordinate value.
    const bool atomic_number = v.type == NC_BYTE || v.type == NC_UBYTE || v.type == NC_SHORT || v.type == NC_USHORT ||
                               v.type == NC_INT || v.type == NC_UINT || v.type == NC_INT64 || v.type == NC_UINT64 ||
                               v.type == NC_FLOAT || v.type == NC_DOUBLE;
    const bool along_presentation = !v.dims.empty() && v.dims[0] == "presentation" && v.shape[0] == P &&
                                    (v.is_text() ? (v.type == NC_STRING ? v.dims.size() == 1 : v.dims.size() == 2)
                                                 : atomic_number && v.dims.size() == 1);
    if (along_presentation) a.presentation_coords.push_back(n);
    if (n == sid || n == "neuroid_id" || n == "region") continue;
    if (along_presentation && !v.is_text() && n != "repetition") a.presentation_numbers[n] = f.read_doubles(n);
    if (!v.is_text() || v.dims.empty()) continue;
    // Kept only when one string per entry of the axis (a 2-D string variable is not a coordinate).
    if (v.dims[0] != "presentation" && v.dims[0] != "neuroid") continue;
    auto values = f.read_strings(n);
    if (v.dims[0] == "presentation" && values.size() == P) a.presentation_text[n] = std::move(values);
    if (v.dims[0] == "neuroid" && values.size() == N) a.neuroid_text[n] = std::move(values);
  }

  // Values, reordered to [time][presentation, neuroid] whatever the stored dimension order.
  const auto raw = f.read_doubles(a.name);
  std::vector<std::size_t> stride(data.dims.size(), 1);
  for (std::size_t d = data.dims.size() - 1; d > 0; --d) stride[d - 1] = stride[d] * data.shape[d];
  a.responses.assign(T, Eigen::MatrixXd(static_cast<Eigen::Index>(P), static_cast<Eigen::Index>(N)));
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t p = 0; p < P; ++p)
      for (std::size_t n = 0; n < N; ++n)
        a.responses[t](static_cast<Eigen::Index>(p), static_cast<Eigen::Index>(n)) =
            raw[p * stride[p_axis] + n * stride[n_axis] + (timed ? t * stride[t_axis] : 0)];
  return a;
}

// The neuroids at the given positions, in that order.
inline neuroid_assembly take_neuroids(const neuroid_assembly& a, const std::vector<std::int64_t>& keep) {
  neuroid_assembly r = a;
  r.neuroid_id.clear(), r.region.clear();
  for (auto& [k, v] : r.neuroid_text) v.clear();
  for (auto& m : r.responses) m.resize(a.presentations(), static_cast<Eigen::Index>(keep.size()));
  for (std::size_t j = 0; j < keep.size(); ++j) {
    const auto i = keep[j];
    GRCNN_CHECK(i >= 0 && i < a.neuroids(), shape_error, "take_neuroids: index ", i, " outside ", a.neuroids(), " neuroids");
    r.neuroid_id.push_back(a.neuroid_id[static_cast<std::size_t>(i)]);
    r.region.push_back(a.region[static_cast<std::size_t>(i)]);
    for (auto& [k, v] : r.neuroid_text) v.push_back(a.neuroid_text.at(k)[static_cast<std::size_t>(i)]);
    for (std::size_t t = 0; t < a.responses.size(); ++t)
      r.responses[t].col(static_cast<Eigen::Index>(j)) = a.responses[t].col(i);
  }
  return r;
}

// The neuroids of one region ("V4", "IT", ...); an unknown region is an error listing those present.
inline neuroid_assembly select_region(const neuroid_assembly& a, const std::string& region) {
  std::vector<std::int64_t> keep;
  std::set<std::string> present(a.region.begin(), a.region.end());
  for (std::int64_t i = 0; i < a.neuroids(); ++i)
    if (a.region[static_cast<std::size_t>(i)] == region) keep.push_back(i);
  if (keep.empty()) {
    std::string list;
    for (const auto& r : present) list += (list.empty() ? "" : ", ") + r;
    throw error(detail::concat(a.source, ": no neuroid in region '", region, "' (regions: ", list, ")"));
  }
  return take_neuroids(a, keep);
}

// All neuroids except those whose id is listed (ids absent from the assembly are ignored).
inline neuroid_assembly drop_neuroids(const neuroid_assembly& a, const std::vector<std::string>& ids) {
  const std::set<std::string> drop(ids.begin(), ids.end());
  std::vector<std::int64_t> keep;
  for (std::int64_t i = 0; i < a.neuroids(); ++i)
    if (!drop.count(a.neuroid_id[static_cast<std::size_t>(i)])) keep.push_back(i);
  return take_neuroids(a, keep);
}

// One id per line; blank lines and lines starting with '#' skipped (e.g. hvm-mini/erroneous_neuroids.txt).
inline std::vector<std::string> read_id_list(const std::filesystem::path& path) {
  std::istringstream in = io::open_text_file(path, "id list");
  std::vector<std::string> ids;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    ids.push_back(line.substr(first));
  }
  return ids;
}

// The mean over the time bins lying inside [start_ms, end_ms] (Brain-Score's FreemanZiemba 50-200 ms
// average); an empty selection is an error.
inline neuroid_assembly mean_over_time(const neuroid_assembly& a, std::int64_t start_ms, std::int64_t end_ms) {
  neuroid_assembly r = a;
  Eigen::MatrixXd sum = Eigen::MatrixXd::Zero(a.presentations(), a.neuroids());
  int used = 0;
  for (std::size_t t = 0; t < a.responses.size(); ++t)
    if (a.time_bin_start[t] >= start_ms && a.time_bin_end[t] <= end_ms) sum += a.responses[t], ++used;
  GRCNN_CHECK(used > 0, error, a.source, ": no time bin inside [", start_ms, ", ", end_ms, "] ms");
  r.responses = {sum / used};
  r.time_bin_start = {start_ms};
  r.time_bin_end = {end_ms};
  return r;
}

namespace assembly_detail {
inline const Eigen::MatrixXd& single_bin(const neuroid_assembly& a, const char* what) {
  GRCNN_CHECK(a.responses.size() == 1, shape_error, what, ": ", a.source, " has ", a.responses.size(),
              " time bins; reduce them first (mean_over_time)");
  return a.responses[0];
}
// One presentation coordinate's value: text or a number (Python compares tuples of them element by
// element: strings by code point, which is UTF-8 byte order, numbers by value).
struct coordinate_value {
  bool text = true;
  std::string s;
  double x = 0;
  // A coordinate holds one kind. NaN (a missing number) sorts after every number and equals NaN, so
  // that the order stays strict and weak (Python's sort has no defined place for it).
  friend bool operator<(const coordinate_value& a, const coordinate_value& b) {
    if (a.text) return a.s < b.s;
    if (std::isnan(a.x) || std::isnan(b.x)) return !std::isnan(a.x) && std::isnan(b.x);
    return a.x < b.x;
  }
  friend bool operator==(const coordinate_value& a, const coordinate_value& b) {
    return a.text ? a.s == b.s : a.x == b.x || (std::isnan(a.x) && std::isnan(b.x));
  }
};
}  // namespace assembly_detail

// The stimuli in Brain-Score's order: presentations grouped by the tuple of every presentation
// coordinate except 'repetition' (a.presentation_coords, file order), groups sorted by that tuple. A
// stimulus whose presentations differ in another coordinate would form two groups in Brain-Score (two
// rows of one stimulus): refused, naming the coordinate.
inline std::vector<std::string> stimulus_order(const neuroid_assembly& a) {
  using assembly_detail::coordinate_value;
  std::vector<const std::vector<std::string>*> texts;
  std::vector<const std::vector<double>*> numbers;
  std::vector<std::string> names;
  for (const auto& n : a.presentation_coords) {
    if (n == "repetition") continue;
    const std::vector<std::string>* t = nullptr;
    const std::vector<double>* x = nullptr;
    // (The id's own coordinate is among neither the texts nor the numbers; an image_id beside a
    // stimulus_id is, as text or number.)
    if (auto it = a.presentation_text.find(n); it != a.presentation_text.end()) {
      t = &it->second;
    } else if (auto jt = a.presentation_numbers.find(n); jt != a.presentation_numbers.end()) {
      x = &jt->second;
    } else if (n == "stimulus_id" || n == "image_id") {
      if (std::find(names.begin(), names.end(), std::string("stimulus id")) != names.end()) continue;
      t = &a.stimulus_id;
    } else {
      continue;  // a coordinate not kept (not one value per presentation)
    }
    const std::size_t size = t ? t->size() : x->size();
    GRCNN_CHECK(size == a.stimulus_id.size(), shape_error, a.source.empty() ? std::string("assembly") : a.source,
                ": presentation coordinate '", n, "' has ", size, " values for ", a.stimulus_id.size(), " presentations");
    names.push_back(t == &a.stimulus_id ? std::string("stimulus id") : n);
    texts.push_back(t);
    numbers.push_back(x);
  }
  if (std::find(names.begin(), names.end(), std::string("stimulus id")) == names.end()) {  // none listed: the id alone
    names.insert(names.begin(), "stimulus id");
    texts.insert(texts.begin(), &a.stimulus_id);
    numbers.insert(numbers.begin(), nullptr);
  }
  using key = std::vector<coordinate_value>;
  std::map<key, std::string> groups;  // tuple -> stimulus id (std::map: sorted by the tuple)
  std::map<std::string, key> first_key;
  for (std::size_t p = 0; p < a.stimulus_id.size(); ++p) {
    key k(names.size());
    for (std::size_t c = 0; c < names.size(); ++c) {
      if (texts[c]) k[c].s = (*texts[c])[p];
      else k[c].text = false, k[c].x = (*numbers[c])[p];
    }
    const std::string& id = a.stimulus_id[p];
    auto [it, fresh] = first_key.emplace(id, k);
    // brainio compares NaN as unequal to NaN, so a stimulus with a NaN coordinate is never averaged over
    // its presentations there: refused as a differing coordinate.
    std::size_t nan_at = k.size();
    for (std::size_t c = 0; c < k.size() && !fresh; ++c)
      if (!k[c].text && std::isnan(k[c].x)) nan_at = std::min(nan_at, c);
    if (nan_at < k.size())
      throw error(::grcnn::detail::concat(a.source.empty() ? std::string("assembly") : a.source, ": stimulus '", id,
                                          "' has presentations whose coordinate '", names[nan_at], "' is NaN; Brain-Score "
                                          "(brainio) never groups NaN values, so it would not average them"));
    if (!fresh && it->second != k) {
      std::size_t c = 0;
      while (c < k.size() && k[c] == it->second[c]) ++c;
      throw error(::grcnn::detail::concat(a.source.empty() ? std::string("assembly") : a.source, ": stimulus '", id, "' has presentations that differ in coordinate '",
                                          names[c], "' beside 'repetition'; Brain-Score would average them as separate "
                                          "stimuli (drop or fix that coordinate)"));
    }
    groups.emplace(std::move(k), id);
  }
  std::vector<std::string> ids;
  ids.reserve(groups.size());
  for (auto& [k, id] : groups) ids.push_back(id);
  return ids;
}

// The target of the regression: each stimulus's mean over its presentations (repetitions), stimuli in
// stimulus_order.
inline stimulus_responses average_repetitions(const neuroid_assembly& a) {
  const auto& m = assembly_detail::single_bin(a, "average_repetitions");
  stimulus_responses r;
  r.stimulus_id = stimulus_order(a);
  r.neuroid_id = a.neuroid_id;
  std::map<std::string, Eigen::Index> row;
  for (std::size_t i = 0; i < r.stimulus_id.size(); ++i) row[r.stimulus_id[i]] = static_cast<Eigen::Index>(i);
  r.values = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(r.stimulus_id.size()), a.neuroids());
  Eigen::VectorXd count = Eigen::VectorXd::Zero(r.values.rows());
  for (std::int64_t p = 0; p < a.presentations(); ++p) {
    const auto i = row.at(a.stimulus_id[static_cast<std::size_t>(p)]);
    r.values.row(i) += m.row(p);
    count(i) += 1;
  }
  for (Eigen::Index i = 0; i < r.values.rows(); ++i) r.values.row(i) /= count(i);
  return r;
}

// The per-repetition responses of the ceiling: one stimuli x neuroids matrix per repetition id (sorted
// ids), stimuli in stimulus_order. Every stimulus must be shown exactly once in every repetition.
inline std::vector<Eigen::MatrixXd> repetition_matrices(const neuroid_assembly& a) {
  const auto& m = assembly_detail::single_bin(a, "repetition_matrices");
  GRCNN_CHECK(!a.repetition.empty(), error, a.source, ": no 'repetition' coordinate, so no split-half ceiling");
  const auto ids = stimulus_order(a);
  std::vector<std::int64_t> reps = a.repetition;
  std::sort(reps.begin(), reps.end());
  reps.erase(std::unique(reps.begin(), reps.end()), reps.end());
  std::map<std::string, Eigen::Index> row;
  for (std::size_t i = 0; i < ids.size(); ++i) row[ids[i]] = static_cast<Eigen::Index>(i);
  std::map<std::int64_t, std::size_t> slot;
  for (std::size_t r = 0; r < reps.size(); ++r) slot[reps[r]] = r;
  std::vector<Eigen::MatrixXd> out(reps.size(), Eigen::MatrixXd(static_cast<Eigen::Index>(ids.size()), a.neuroids()));
  std::vector<std::vector<int>> seen(reps.size(), std::vector<int>(ids.size(), 0));
  for (std::int64_t p = 0; p < a.presentations(); ++p) {
    const auto& s = a.stimulus_id[static_cast<std::size_t>(p)];
    const auto r = slot.at(a.repetition[static_cast<std::size_t>(p)]);
    const auto i = row.at(s);
    GRCNN_CHECK(seen[r][static_cast<std::size_t>(i)]++ == 0, error, a.source, ": stimulus ", s,
                " appears twice in repetition ", reps[r]);
    out[r].row(i) = m.row(p);
  }
  for (std::size_t r = 0; r < reps.size(); ++r)
    for (std::size_t i = 0; i < ids.size(); ++i)
      GRCNN_CHECK(seen[r][i] == 1, error, a.source, ": stimulus ", ids[i], " is missing from repetition ", reps[r],
                  "; the split-half ceiling needs every stimulus in every repetition");
  return out;
}

// The split-half ceiling straight from the presentations, as Brain-Score computes it: halves of the
// sorted repetition ids (ShuffleSplit, train_size 0.5), each stimulus averaged over the presentations
// whose repetition falls in the half (so unequal repetition counts are fine), Pearson per neuroid,
// Spearman-Brown, median, mean. A stimulus without a presentation in one half of a split is left out of
// that split. With complete repetitions it equals split_half_ceiling(repetition_matrices(a)).
inline ceiling_result split_half_ceiling(const neuroid_assembly& a, int n_splits = 10, std::uint32_t random_state = 1) {
  const auto& m = assembly_detail::single_bin(a, "split_half_ceiling");
  GRCNN_CHECK(!a.repetition.empty(), error, a.source, ": no 'repetition' coordinate, so no split-half ceiling");
  const auto ids = stimulus_order(a);
  std::vector<std::int64_t> reps = a.repetition;
  std::sort(reps.begin(), reps.end());
  reps.erase(std::unique(reps.begin(), reps.end()), reps.end());
  GRCNN_CHECK(reps.size() >= 2, error, a.source, ": needs at least 2 repetition ids, got ", reps.size());
  std::map<std::string, Eigen::Index> row;
  for (std::size_t i = 0; i < ids.size(); ++i) row[ids[i]] = static_cast<Eigen::Index>(i);
  std::vector<Eigen::Index> row_of(static_cast<std::size_t>(a.presentations()));
  std::vector<std::size_t> rep_of(static_cast<std::size_t>(a.presentations()));
  for (std::int64_t p = 0; p < a.presentations(); ++p) {
    row_of[static_cast<std::size_t>(p)] = row.at(a.stimulus_id[static_cast<std::size_t>(p)]);
    rep_of[static_cast<std::size_t>(p)] = static_cast<std::size_t>(
        std::lower_bound(reps.begin(), reps.end(), a.repetition[static_cast<std::size_t>(p)]) - reps.begin());
  }
  ceiling_result out;
  for (const auto& sp : shuffle_split(static_cast<std::int64_t>(reps.size()), n_splits, 0.5, random_state)) {
    std::vector<int> half(reps.size(), -1);
    for (auto i : sp.train) half[static_cast<std::size_t>(i)] = 0;
    for (auto i : sp.test) half[static_cast<std::size_t>(i)] = 1;
    Eigen::MatrixXd sum[2] = {Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(ids.size()), a.neuroids()),
                              Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(ids.size()), a.neuroids())};
    Eigen::VectorXd count[2] = {Eigen::VectorXd::Zero(static_cast<Eigen::Index>(ids.size())),
                                Eigen::VectorXd::Zero(static_cast<Eigen::Index>(ids.size()))};
    for (std::int64_t p = 0; p < a.presentations(); ++p) {
      const int h = half[rep_of[static_cast<std::size_t>(p)]];
      if (h < 0) continue;
      sum[h].row(row_of[static_cast<std::size_t>(p)]) += m.row(p);
      count[h](row_of[static_cast<std::size_t>(p)]) += 1;
    }
    std::vector<Eigen::Index> both;
    for (Eigen::Index i = 0; i < static_cast<Eigen::Index>(ids.size()); ++i)
      if (count[0](i) > 0 && count[1](i) > 0) both.push_back(i);
    Eigen::MatrixXd h0(static_cast<Eigen::Index>(both.size()), a.neuroids()), h1(h0.rows(), h0.cols());
    for (std::size_t k = 0; k < both.size(); ++k) {
      h0.row(static_cast<Eigen::Index>(k)) = sum[0].row(both[k]) / count[0](both[k]);
      h1.row(static_cast<Eigen::Index>(k)) = sum[1].row(both[k]) / count[1](both[k]);
    }
    out.add_split(h0, h1);
  }
  return out;
}

}  // namespace grcnn::eval
