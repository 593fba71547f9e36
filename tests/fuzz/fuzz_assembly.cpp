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

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  grcnn_fuzz::read_and_exercise(grcnn_fuzz::write_input("assembly.nc", data, size), "");
  return 0;
}
