// Fuzz target: eval::read_split_file (include/grcnn/eval/splits.hpp), the JSON split files of
// grcnn-score --splits: {"splits": [{"train": [ids...], "test": [ids...]}, ...]}, resolved against a fixed
// list of stimulus ids (the seeds use them; the hvm-mini image ids are among them).
// Clean rejection: io_error (malformed JSON, wrong structure, unknown or repeated ids). Anything else is
// a finding, as is an accepted split with an index outside the ids or a stimulus on both sides.
#include <cstdint>
#include <string>
#include <vector>

#include "grcnn/eval/splits.hpp"

#include "fuzz_support.hpp"

namespace {
const std::vector<std::string>& stimulus_ids() {
  static const std::vector<std::string> ids = [] {
    std::vector<std::string> v;
    for (int i = 0; i < 12; ++i) {
      std::string id = "s";  // (not "s" + to_string: GCC 12's -Wrestrict false positive)
      id += std::to_string(i);
      v.push_back(std::move(id));
    }
    for (const char* s : {"", "a", "b", "0", "8a536e9d8a6d6fdd2a9e0e6b5ee5dd5c3dfe5c65", "im\xc3\xa4ge", "s1"}) v.push_back(s);
    return v;
  }();
  return ids;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = grcnn_fuzz::write_input("splits.json", data, size);
  const auto& ids = stimulus_ids();
  std::vector<grcnn::eval::split> splits;
  try {
    splits = grcnn::eval::read_split_file(path, ids);
  } catch (const grcnn::io_error& e) {
    grcnn_fuzz::rejected(e);
    return 0;
  } catch (const grcnn::error& e) {
    grcnn_fuzz::undocumented_error(e, "read_split_file");
    return 0;
  }
  grcnn_fuzz::accepted("read_split_file");
  GRCNN_FUZZ_ASSERT(!splits.empty(), "no split accepted");
  for (std::size_t s = 0; s < splits.size(); ++s) {
    std::vector<int> seen(ids.size(), 0);
    GRCNN_FUZZ_ASSERT(!splits[s].train.empty() && !splits[s].test.empty(), "split ", s, " has an empty side");
    for (const auto* side : {&splits[s].train, &splits[s].test})
      for (auto i : *side) {
        GRCNN_FUZZ_ASSERT(i >= 0 && static_cast<std::size_t>(i) < ids.size(), "split ", s, ": index ", i);
        GRCNN_FUZZ_ASSERT(seen[static_cast<std::size_t>(i)]++ == 0, "split ", s, ": index ", i, " twice");
      }
  }
  return 0;
}
