#pragma once
// Layer commitment: score candidate layers against a region's recordings and keep the best, as
// Brain-Score's ModelCommitment does (argmax of the ceiled score; optionally on features reduced by a PCA
// fitted on a separate image set), or take a fixed region -> layer map (the published one for grcnn55:
// V1 layer1, V2 layer3.conv_f, V4 layer1, IT layer3.conv_f). Works on recorded activations and neural
// targets only: no network, no training loop.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "grcnn/core/error.hpp"
#include "grcnn/eval/activations.hpp"
#include "grcnn/eval/consistency.hpp"
#include "grcnn/eval/neuroid_assembly.hpp"
#include "grcnn/eval/pca.hpp"
#include "grcnn/eval/predictivity.hpp"
#include "grcnn/eval/similarity.hpp"
#include "grcnn/io/json.hpp"

namespace grcnn::eval {

// One region's benchmark: the repetition-averaged responses (sorted stimuli), their ceiling and splits.
struct neural_target {
  std::string region;
  stimulus_responses responses;
  double ceiling = std::numeric_limits<double>::quiet_NaN();
  std::vector<split> splits;  // indices into responses.stimulus_id
};

struct layer_score {
  std::string layer;
  predictivity raw;
  double ceiling = 0;
  double ceiled = 0;
  // Where the score knowingly differs from Brain-Score's (PLS components beyond the training set's rank);
  // a tool says each once per layer.
  std::vector<std::string> warnings;
};

struct scoring_options {
  metric_options metric;
  ceiling_convention convention = ceiling_convention::squared;
};

// Split-half consistency for the similarity metrics: half-mean RDMs (rsa) or Gram matrices (cka) of
// the repetition halves compared, Spearman-Brown corrected, mean over the same halves as the PLS ceiling.
inline double similarity_ceiling(const std::vector<Eigen::MatrixXd>& repetitions, const metric_options& o, int n_splits = 10,
                                 std::uint32_t random_state = 1) {
  GRCNN_CHECK(is_similarity(o.kind), error, "similarity_ceiling: for rsa or cka");
  GRCNN_CHECK(repetitions.size() >= 2, shape_error, "similarity_ceiling: needs at least 2 repetitions");
  auto mean_of = [&](const std::vector<std::int64_t>& ids) {
    Eigen::MatrixXd s = Eigen::MatrixXd::Zero(repetitions[0].rows(), repetitions[0].cols());
    for (auto i : ids) s += repetitions[static_cast<std::size_t>(i)];
    return Eigen::MatrixXd(s / static_cast<double>(ids.size()));
  };
  double total = 0;
  const auto splits = shuffle_split(static_cast<std::int64_t>(repetitions.size()), n_splits, 0.5, random_state);
  for (const auto& sp : splits) {
    const Eigen::MatrixXd a = mean_of(sp.train), b = mean_of(sp.test);
    double r;
    if (o.kind == metric_kind::rsa) {
      r = rsa(rdm(a), rdm(b));
    } else {
      const Eigen::MatrixXd ac = a.rowwise() - a.colwise().mean(), bc = b.rowwise() - b.colwise().mean();
      r = cka(ac * ac.transpose(), bc * bc.transpose(), o.unbiased_cka);
    }
    total += spearman_brown(r);
  }
  return total / static_cast<double>(splits.size());
}

// Scores one recorded layer against a target; `reduce`, when given, projects the features first.
inline layer_score score_layer(const activation_set& a, const std::string& layer, const neural_target& t,
                               const scoring_options& o, const pca* reduce = nullptr) {
  const auto& l = a.layer(layer);
  const auto rows = a.rows_of(t.responses.stimulus_id);
  layer_score s;
  s.layer = layer;
  if (o.metric.kind == metric_kind::pls) {
    // sklearn's PLSRegression (Brain-Score's) refuses more components than features; it accepts more than
    // the training set's rank and keeps extracting components from rounding noise, where ours stop.
    const std::int64_t features = reduce ? reduce->components() : l.features();
    GRCNN_CHECK(o.metric.pls.components <= features, shape_error, "score: layer '", layer, "' has ", features,
                " feature", features == 1 ? "" : "s", reduce ? " after PCA" : "", ", fewer than the ",
                o.metric.pls.components, " PLS components (--components): sklearn's PLSRegression, which Brain-Score "
                "fits, refuses more components than features");
    std::size_t train = SIZE_MAX;
    for (const auto& sp : t.splits) train = std::min(train, sp.train.size());
    const auto rank = static_cast<std::int64_t>(train) - 1;  // centred training rows
    if (!t.splits.empty() && o.metric.pls.components > rank)
      s.warnings.push_back(::grcnn::detail::concat(
          "layer '", layer, "': ", o.metric.pls.components, " PLS components exceed the training set's rank (at most ",
          rank, " from ", train, " centred training stimuli); ours stop at the rank, sklearn's (Brain-Score) keeps "
          "fitting rounding noise, so per-split scores differ from Brain-Score's (docs/evaluation.md)"));
  }
  stimulus_gram g;
  if (reduce) {
    const auto z = reduce->transform(l.values.data(), a.stimuli(), l.features());
    g = feature_gram(z.data(), a.stimuli(), reduce->components(), centring_for(o.metric.kind));
  } else {
    g = feature_gram(l.values.data(), a.stimuli(), l.features(), centring_for(o.metric.kind));
  }
  stimulus_gram sub{Eigen::MatrixXd(static_cast<Eigen::Index>(rows.size()), static_cast<Eigen::Index>(rows.size())), g.centring};
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (std::size_t j = 0; j < rows.size(); ++j)
      sub.G(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = g.G(rows[i], rows[j]);
  s.raw = score_from_gram(sub, t.responses.values, t.splits, o.metric);
  s.ceiling = t.ceiling;
  if (is_similarity(o.metric.kind))
    s.ceiled = s.raw.score / t.ceiling;  // similarity benchmarks ceil by plain division
  else
    s.ceiled = ceiled_score(s.raw.score, t.ceiling, o.convention);
  return s;
}

// The best of the candidates (highest ceiled score; the first on ties; NaN scores never win).
inline const layer_score& best_layer(const std::vector<layer_score>& scores) {
  GRCNN_CHECK(!scores.empty(), error, "best_layer: no candidate layers");
  const layer_score* best = nullptr;
  for (const auto& s : scores)
    if (!std::isnan(s.ceiled) && (!best || s.ceiled > best->ceiled)) best = &s;
  GRCNN_CHECK(best, error, "best_layer: every candidate scored NaN");
  return *best;
}

using region_layer_map = std::map<std::string, std::string>;

// Brain-Score's committed layers (VISION models/grcnn*/region_layer_map).
inline region_layer_map published_region_map(const std::string& arch) {
  if (arch == "grcnn55" || arch == "vone_grcnn55")
    return {{"V1", "layer1"}, {"V2", "layer3.conv_f"}, {"V4", "layer1"}, {"IT", "layer3.conv_f"}};
  if (arch == "grcnn109") return {{"V1", "layer1"}, {"V2", "layer3.conv_f"}, {"V4", "layer3.conv_f"}, {"IT", "layer3.conv_f"}};
  return {};
}

// {"V4": "layer1", "IT": "layer3.conv_f"}
inline region_layer_map read_region_map(const std::filesystem::path& path) {
  const nlohmann::json j = io::read_json_file(path, "region map");
  GRCNN_CHECK(j.is_object() && !j.empty(), io_error, path.string(), ": expected an object such as {\"V4\": \"layer1\"}");
  region_layer_map m;
  for (const auto& [region, layer] : j.items()) {
    GRCNN_CHECK(layer.is_string(), io_error, path.string(), ": region '", region, "' must map to a layer name");
    m[region] = layer.get<std::string>();
  }
  return m;
}

}  // namespace grcnn::eval
