// Fuzz target: data::cifar_dataset (include/grcnn/data/cifar.hpp) over one batch file, read as CIFAR-10
// test (test_batch.bin), CIFAR-10 train (data_batch_1..5.bin, all five the same file) and CIFAR-100
// test (test.bin); every record is then fetched with get().
// Clean rejection: io_error. Anything else is a finding.
#include <cstdint>

#include "grcnn/data/cifar.hpp"

#include "fuzz_support.hpp"

namespace {
void check(const grcnn::data::cifar_dataset& d, std::size_t file_bytes, std::size_t files, bool c100) {
  const std::size_t record = (c100 ? 2 : 1) + grcnn::data::cifar_dataset::pixels_per_image;
  GRCNN_FUZZ_ASSERT(d.size() * record == file_bytes * files, d.size(), " records from ", files, " x ", file_bytes, " bytes");
  GRCNN_FUZZ_ASSERT(d.num_classes() == (c100 ? 100 : 10), d.num_classes(), " classes");
  for (std::size_t i = 0; i < d.size(); ++i) {
    const auto s = d.get(i);
    GRCNN_FUZZ_ASSERT(s.label >= 0 && s.label < d.num_classes(), "label ", s.label);
    GRCNN_FUZZ_ASSERT(s.image.width == 32 && s.image.height == 32 && s.image.pixels.size() == 32 * 32 * 3, "image ",
                      s.image.width, "x", s.image.height);
  }
  try {
    (void)d.get(d.size());
    grcnn_fuzz::finding("get(size()) did not throw");
  } catch (const grcnn::error&) {
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool linked = [] {
    auto& s = grcnn_fuzz::scratch::get();
    for (const char* name : {"test_batch.bin", "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                             "data_batch_4.bin", "data_batch_5.bin", "test.bin"})
      s.link(name, "input.bin");
    return true;
  }();
  (void)linked;
  grcnn_fuzz::write_input("input.bin", data, size);
  const auto dir = grcnn_fuzz::scratch::get().dir();
  for (const auto& [c100, train, files] : {std::tuple{false, false, 1}, std::tuple{false, true, 5}, std::tuple{true, false, 1}}) {
    try {
      const grcnn::data::cifar_dataset d(dir, c100, train);
      check(d, size, static_cast<std::size_t>(files), c100);
      grcnn_fuzz::accepted(c100 ? "cifar100" : train ? "cifar10 train" : "cifar10 test");
    } catch (const grcnn::io_error& e) {
      grcnn_fuzz::rejected(e);
    } catch (const grcnn::error& e) {
      grcnn_fuzz::undocumented_error(e, "cifar_dataset");
    }
  }
  return 0;
}
