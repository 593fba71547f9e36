// Fuzz target: io::load_safetensors (include/grcnn/io/safetensors.hpp) on arbitrary files.
// Clean rejection: io_error ("every malformed input raises io_error naming the file"). Any other
// grcnn::error is a finding (unless GRCNN_FUZZ_LENIENT=1); any other exception, a crash, a sanitizer
// report or an allocation above the malloc limit is a finding.
#include <cstdint>
#include <cstring>

#include "grcnn/io/safetensors.hpp"

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = grcnn_fuzz::write_input("input.safetensors", data, size);
  grcnn::io::tensor_dict d;
  try {
    d = grcnn::io::load_safetensors(path);
  } catch (const grcnn::io_error& e) {
    grcnn_fuzz::rejected(e);
    return 0;
  } catch (const grcnn::error& e) {
    grcnn_fuzz::undocumented_error(e, "load_safetensors");
    return 0;
  }
  // What was accepted is consistent: every tensor's bytes lie inside the data section, tensors do not
  // overlap (so their sizes add up to at most the file), and each holds exactly numel * element size.
  grcnn_fuzz::accepted("load_safetensors");
  std::uint64_t total = 0;
  for (const auto& [name, t] : d.entries()) {
    GRCNN_FUZZ_ASSERT(t.defined(), "tensor '", name, "' is undefined");
    const auto expect = static_cast<std::uint64_t>(t.numel()) * grcnn::size_of(t.type());
    GRCNN_FUZZ_ASSERT(t.bytes() == expect, "tensor '", name, "' holds ", t.bytes(), " bytes, its shape needs ", expect);
    GRCNN_FUZZ_ASSERT(d.contains(name) && d.at(name).raw() == t.raw(), "tensor '", name, "' not found by name");
    total += t.bytes();
    // Touch every byte (ASan sees a short buffer; the sum keeps the loop).
    volatile unsigned char sink = 0;
    const auto* p = static_cast<const unsigned char*>(t.raw());
    for (std::size_t i = 0; i < t.bytes(); ++i) sink = sink ^ p[i];
  }
  GRCNN_FUZZ_ASSERT(total + 8 <= size, "tensors hold ", total, " bytes, more than the ", size, "-byte file");
  for (const auto& [k, v] : d.metadata) GRCNN_FUZZ_ASSERT(k != "__metadata__", "metadata key '__metadata__'");
  return 0;
}
