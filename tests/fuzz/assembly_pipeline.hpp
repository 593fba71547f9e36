#pragma once
// What fuzz_assembly and fuzz_assembly_gen do with an assembly that read_neuroid_assembly accepted: check
// that it is consistent (what every consumer relies on), then run what grcnn-score does with it --
// drop_neuroids, select_region, mean_over_time, average_repetitions, repetition_matrices,
// split_half_ceiling -- where grcnn::error is a clean rejection.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "grcnn/eval/neuroid_assembly.hpp"

#include "fuzz_support.hpp"

namespace grcnn_fuzz {
using grcnn::eval::neuroid_assembly;

// A broken consistency invariant: a finding; with GRCNN_FUZZ_LENIENT=1 (fuzzing past a known one) the
// assembly is only skipped, as the later steps would work on inconsistent data.
#define GRCNN_FUZZ_CONSISTENT(cond, ...)                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      if (::grcnn_fuzz::lenient()) return false;                           \
      GRCNN_FUZZ_ASSERT(cond, __VA_ARGS__);                                \
    }                                                                      \
  } while (0)

// What every consumer of an assembly relies on; false (lenient mode only) when it does not hold.
inline bool check_consistent(const neuroid_assembly& a, const char* what) {
  const auto P = a.presentations(), N = a.neuroids();
  // (An empty axis -- 0 presentations, neuroids or time bins -- is accepted by the reader; the later steps
  // refuse it with their own errors.)
  for (const auto& m : a.responses)
    GRCNN_FUZZ_CONSISTENT(m.rows() == P && m.cols() == N, what, ": responses ", m.rows(), " x ", m.cols(), " for ", P,
                      " stimulus ids and ", N, " neuroid ids");
  GRCNN_FUZZ_CONSISTENT(a.region.size() == static_cast<std::size_t>(N), what, ": ", a.region.size(), " regions for ", N,
                    " neuroids");
  GRCNN_FUZZ_CONSISTENT(a.repetition.empty() || a.repetition.size() == static_cast<std::size_t>(P), what, ": ",
                    a.repetition.size(), " repetitions for ", P, " presentations");
  GRCNN_FUZZ_CONSISTENT(a.time_bin_start.size() == a.responses.size() && a.time_bin_end.size() == a.responses.size(), what,
                    ": ", a.time_bin_start.size(), "/", a.time_bin_end.size(), " time bin bounds for ",
                    a.responses.size(), " bins");
  for (const auto& [k, v] : a.presentation_text)
    GRCNN_FUZZ_CONSISTENT(v.size() == static_cast<std::size_t>(P), what, ": presentation coordinate '", k, "' has ", v.size());
  for (const auto& [k, v] : a.neuroid_text)
    GRCNN_FUZZ_CONSISTENT(v.size() == static_cast<std::size_t>(N), what, ": neuroid coordinate '", k, "' has ", v.size());
  return true;
}

// grcnn-score's load_target for one region, on a small enough assembly.
inline void score_path(const neuroid_assembly& all, const std::string& region) {
  neuroid_assembly a = grcnn::eval::select_region(all, region);
  if (!check_consistent(a, "select_region")) return;
  if (a.time_bins() > 1) {
    const auto lo = *std::min_element(a.time_bin_start.begin(), a.time_bin_start.end());
    const auto hi = *std::max_element(a.time_bin_end.begin(), a.time_bin_end.end());
    a = grcnn::eval::mean_over_time(a, lo, hi);
    if (!check_consistent(a, "mean_over_time")) return;
  }
  const auto avg = grcnn::eval::average_repetitions(a);
  GRCNN_FUZZ_ASSERT(avg.values.rows() == static_cast<Eigen::Index>(avg.stimulus_id.size()) &&
                        avg.values.cols() == a.neuroids(),
                    "average_repetitions: ", avg.values.rows(), " x ", avg.values.cols());
  try {
    const auto reps = grcnn::eval::repetition_matrices(a);
    for (const auto& m : reps)
      GRCNN_FUZZ_ASSERT(m.rows() == avg.values.rows() && m.cols() == avg.values.cols(), "repetition_matrices: ",
                        m.rows(), " x ", m.cols());
  } catch (const grcnn::error& e) {
    grcnn_fuzz::rejected(e);
  }
  (void)grcnn::eval::split_half_ceiling(a, 2);
}


// The checks and grcnn-score's steps on an accepted assembly.
inline void exercise_assembly(const neuroid_assembly& a) {
  if (!check_consistent(a, "read_neuroid_assembly")) return;
  grcnn_fuzz::accepted("read_neuroid_assembly");
  // The later steps cost stimuli x neuroids x bins (and 2 ceiling splits); keep executions fast.
  const double cells = static_cast<double>(a.presentations()) * static_cast<double>(a.neuroids()) *
                       static_cast<double>(a.time_bins());
  if (cells > 1e6) return;
  try {
    if (a.neuroids() > 0) {
      const auto dropped = grcnn::eval::drop_neuroids(a, {a.neuroid_id[0]});
      (void)check_consistent(dropped, "drop_neuroids");
    }
  } catch (const grcnn::error& e) {
    grcnn_fuzz::rejected(e);
  }
  std::vector<std::string> regions{"no-such-region"};
  for (const auto& r : std::set<std::string>(a.region.begin(), a.region.end()))
    if (regions.size() < 4) regions.push_back(r);
  for (const auto& region : regions) {
    try {
      score_path(a, region);
      grcnn_fuzz::accepted(("scoring region '" + region + "'").c_str());
    } catch (const grcnn::error& e) {
      grcnn_fuzz::rejected(e);
    }
  }
}

// Reads `path` as read_neuroid_assembly does and exercises what it accepted. io_error is a clean
// rejection; any other grcnn::error from the reader is undocumented. Under libFuzzer libnetcdf runs in
// this process: a crash in the child probe (io/netcdf_probe.hpp) would be written out by libFuzzer's
// handlers, which the forked child inherits, and the probe would hide from the fuzzer what the
// classic-header checks miss. The corpus replays (CI) read as users do, through the probe.
inline void read_and_exercise(const std::filesystem::path& path, const std::string& variable) {
#ifdef GRCNN_FUZZ_LIBFUZZER
  const grcnn::io::netcdf_open_options open{.isolate = false};
#else
  const grcnn::io::netcdf_open_options open{};
#endif
  neuroid_assembly a;
  try {
    a = grcnn::eval::read_neuroid_assembly(path, variable, open);
  } catch (const grcnn::io_error& e) {
    rejected(e);
    return;
  } catch (const grcnn::error& e) {
    undocumented_error(e, "read_neuroid_assembly");
    return;
  }
  exercise_assembly(a);
}

}  // namespace grcnn_fuzz
