// Fuzz target: eval::read_neuroid_assembly (include/grcnn/eval/neuroid_assembly.hpp) over io::netcdf_file
// (include/grcnn/io/netcdf.hpp, libnetcdf: classic, 64-bit offset and netCDF-4/HDF5 files), then what
// grcnn-score does with an accepted assembly: drop_neuroids, select_region, mean_over_time,
// average_repetitions, repetition_matrices and split_half_ceiling.
// Clean rejections: io_error from the reader (netcdf.hpp: "every failure names the file and the
// variable"); grcnn::error from the later steps, which document error/shape_error for data they cannot
// use (an unknown region, several time bins, missing repetitions). Anything else -- an inconsistent
// assembly (coordinates that do not match the data's extents), std::out_of_range, a crash, a sanitizer
// report, an allocation above the malloc limit -- is a finding. Crashes inside libnetcdf/libhdf5 (not
// instrumented) show up as plain SEGV/abort reports with their frames.
#include <algorithm>
#include <cstdint>
#include <set>

#include "grcnn/eval/neuroid_assembly.hpp"

#include "assembly_pipeline.hpp"
#include "fuzz_support.hpp"

// Classic-format headers are validated by grcnn before libnetcdf sees them (io/netcdf_classic_header.hpp;
// libnetcdf 4.9.0 crashed on the corpus/assembly/crash-netcdf-* inputs). netCDF-4 files go to libhdf5
// unchecked, and libhdf5 callocs header-declared sizes and handles a NULL as an error: to fuzz past that,
// failed C allocations return NULL here instead of aborting. Failed C++ allocations still abort (operator
// new reports OOM), and an allocation that succeeds above -malloc_limit_mb is still reported by libFuzzer.
#if defined(__SANITIZE_ADDRESS__)
#define GRCNN_FUZZ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GRCNN_FUZZ_ASAN 1
#endif
#endif
#ifdef GRCNN_FUZZ_ASAN
extern "C" const char* __asan_default_options() {
  return "allocator_may_return_null=1:max_allocation_size_mb=2048:detect_leaks=1";
}
#endif

// Under libFuzzer, libnetcdf runs in this process: a crash in the child probe (io/netcdf_probe.hpp) would
// be written out by libFuzzer's handlers, which the forked child inherits, and the probe would hide from
// the fuzzer what the classic-header checks miss. The corpus replays (CI) read as users do, through the
// probe, so the crash-hdf5-* reproducers pass there as clean refusals.
#ifdef GRCNN_FUZZ_LIBFUZZER
static const grcnn::io::netcdf_open_options open_options{.isolate = false};
#else
static const grcnn::io::netcdf_open_options open_options{};
#endif

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = grcnn_fuzz::write_input("assembly.nc", data, size);
  grcnn::eval::neuroid_assembly a;
  try {
    a = grcnn::eval::read_neuroid_assembly(path, "", open_options);
  } catch (const grcnn::io_error& e) {
    grcnn_fuzz::rejected(e);
    return 0;
  } catch (const grcnn::error& e) {
    grcnn_fuzz::undocumented_error(e, "read_neuroid_assembly");
    return 0;
  }
  grcnn_fuzz::exercise_assembly(a);
  return 0;
}
