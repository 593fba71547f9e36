// Fuzz target: data::read_idx (include/grcnn/data/idx.hpp), gzip-compressed or raw IDX files (zlib's gzread
// reads both), and idx_dataset's sample access on what it returns.
// Clean rejection: io_error. Anything else -- including an allocation above the malloc limit for a
// header that declares more elements than the file holds -- is a finding.
#include <cstdint>
#include <numeric>

#include "grcnn/data/idx.hpp"

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = grcnn_fuzz::write_input("input-idx3-ubyte.gz", data, size);
  grcnn::data::idx_array a;
  try {
    a = grcnn::data::read_idx(path);
  } catch (const grcnn::io_error& e) {
    grcnn_fuzz::rejected(e);
    return 0;
  } catch (const grcnn::error& e) {
    grcnn_fuzz::undocumented_error(e, "read_idx");
    return 0;
  }
  grcnn_fuzz::accepted("read_idx");
  GRCNN_FUZZ_ASSERT(a.dims.size() >= 1 && a.dims.size() <= 4, a.dims.size(), " dimensions");
  std::uint64_t n = 1;
  for (auto d : a.dims) {
    GRCNN_FUZZ_ASSERT(d >= 0, "negative extent ", d);
    n *= static_cast<std::uint64_t>(d);
  }
  GRCNN_FUZZ_ASSERT(a.values.size() == n, a.values.size(), " values for ", n, " elements");
  return 0;
}
