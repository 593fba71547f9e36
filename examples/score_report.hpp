#pragma once
// grcnn-score's JSON output (--out) read back for --report: every field the summary table uses is
// checked for presence and type, with the file and the entry named, before any of it is used.
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <grcnn/io/json.hpp>

namespace grcnn::tools {

struct report_model {
  std::string weights;
  std::vector<std::pair<std::string, double>> ceiled;  // region -> the committed layer's ceiled score (NaN: none)
};
struct score_report {
  std::string ceiling_convention = "squared";
  std::vector<report_model> models;
};

// The summary part of one run's JSON (what --out writes); `where` names it in messages.
inline score_report score_report_from_json(const nlohmann::json& j, const std::string& where) {
  const std::string ctx = "score report '" + where + "'";
  GRCNN_CHECK(j.is_object(), io_error, ctx, ": not a JSON object (not a grcnn-score --out file)");
  GRCNN_CHECK(j.contains("models") && j["models"].is_array(), io_error, ctx,
              ": no 'models' list (not a grcnn-score --out file)");
  score_report r;
  if (j.contains("ceiling_convention")) {
    GRCNN_CHECK(j["ceiling_convention"].is_string(), io_error, ctx, ": 'ceiling_convention' is not a string");
    r.ceiling_convention = j["ceiling_convention"].get<std::string>();
    GRCNN_CHECK(r.ceiling_convention == "squared" || r.ceiling_convention == "explained-variance", io_error, ctx,
                ": unknown ceiling_convention '", r.ceiling_convention, "'");
  }
  for (std::size_t i = 0; i < j["models"].size(); ++i) {
    const auto& m = j["models"][i];
    const std::string entry = ctx + ", models[" + std::to_string(i) + "]";
    GRCNN_CHECK(m.is_object(), io_error, entry, ": not an object");
    GRCNN_CHECK(m.contains("weights") && m["weights"].is_string(), io_error, entry, ": no 'weights' string");
    GRCNN_CHECK(m.contains("regions") && m["regions"].is_object(), io_error, entry, ": no 'regions' object");
    report_model row;
    row.weights = m["weights"].get<std::string>();
    for (const auto& [region, v] : m["regions"].items()) {
      GRCNN_CHECK(v.is_object() && v.contains("ceiled"), io_error, entry, ", region '", region, "': no 'ceiled' score");
      const auto& c = v["ceiled"];
      // NaN scores are written as null (JSON has no NaN).
      GRCNN_CHECK(c.is_number() || c.is_null(), io_error, entry, ", region '", region, "': 'ceiled' is not a number");
      row.ceiled.emplace_back(region, c.is_null() ? std::numeric_limits<double>::quiet_NaN() : c.get<double>());
    }
    r.models.push_back(std::move(row));
  }
  return r;
}

inline score_report read_score_report(const std::filesystem::path& path) {
  return score_report_from_json(io::read_json_file(path, "score report"), path.string());
}

}  // namespace grcnn::tools
