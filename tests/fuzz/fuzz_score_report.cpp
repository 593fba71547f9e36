// Fuzz target: tools::read_score_report (examples/score_report.hpp), the reader of grcnn-score --report
// files (what grcnn-score --out writes), through io::read_json_file's strict JSON.
// Clean rejection: io_error (score_report.hpp checks every field it uses, naming the file and entry).
// Anything else -- nlohmann's type_error/out_of_range escaping, a crash, a sanitizer report -- is a
// finding, as is an accepted report with an unknown ceiling convention or a non-finite, non-NaN score.
#include <cmath>
#include <cstdint>

#include "score_report.hpp"

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = grcnn_fuzz::write_input("report.json", data, size);
  grcnn::tools::score_report r;
  try {
    r = grcnn::tools::read_score_report(path);
  } catch (const grcnn::io_error& e) {
    grcnn_fuzz::rejected(e);
    return 0;
  } catch (const grcnn::error& e) {
    grcnn_fuzz::undocumented_error(e, "read_score_report");
    return 0;
  }
  grcnn_fuzz::accepted("read_score_report");
  GRCNN_FUZZ_ASSERT(r.ceiling_convention == "squared" || r.ceiling_convention == "explained-variance",
                    "ceiling_convention '", r.ceiling_convention, "'");
  for (const auto& m : r.models)
    for (const auto& [region, v] : m.ceiled)
      GRCNN_FUZZ_ASSERT(std::isfinite(v) || std::isnan(v), "model '", m.weights, "' region '", region, "': ", v);
  return 0;
}
