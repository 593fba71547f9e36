// grcnn-score: neural predictivity of GRCNN checkpoints as Brain-Score computes it.
//   grcnn-score --arch grcnn55 --weights W.safetensors [W2.safetensors ...]
//               --stimuli DIR --stimulus-csv FILE.csv  (or --images LIST.txt)
//               --assembly FILE.nc --region V4,IT [--drop-neuroids FILE]
//               --layers layer1,layer3.conv_f  (or --region-map FILE.json | published)
//               [--degrees 8] [--splits FILE.json | --stratify object_name|none] [--metric pls|ridge|linear|rsa|cka]
//               [--ceiling-convention squared|explained-variance] [--pca 1000 --pca-images LIST] [--out FILE.json]
// For each checkpoint and region: the stimuli are placed on screen (--degrees of the stimuli, an
// 8-degree model), the candidate layers recorded in one eval-mode pass, each layer scored with
// cross-validated regression (10 stratified 90/10 splits, PLS-25) against the repetition-averaged
// responses, and ceiled by the split-half ceiling. Prints a table per region and a Table-1-like
// summary over checkpoints; --out writes everything as JSON.
//   grcnn-score --report A.json [B.json ...]
// prints the summary table of earlier runs.
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include <grcnn/backends/select.hpp>
#include <grcnn/eval/activations.hpp>
#include <grcnn/eval/commitment.hpp>
#include <grcnn/eval/neuroid_assembly.hpp>
#include <grcnn/io/state_dict.hpp>
#include <grcnn/models/registry.hpp>
#include <grcnn/models/vone_noise.hpp>
#include <grcnn/io/output_file.hpp>
#include <grcnn/train/checkpoint.hpp>

#include "score_report.hpp"
#include "tool_main.hpp"

using namespace grcnn;
using nlohmann::json;

namespace {

// --time-window START,END: two integers (ms), START < END.
std::pair<long long, long long> parse_time_window(const std::string& text) {
  const auto w = tools::split_commas(text);
  long long v[2] = {0, 0};
  bool ok = w.size() == 2 && text.find_first_not_of("0123456789-, ") == std::string::npos;
  for (std::size_t i = 0; ok && i < 2; ++i) {
    std::size_t used = 0;
    try {
      v[i] = std::stoll(w[i], &used);
    } catch (const std::exception&) {
      ok = false;
    }
    ok = ok && used == w[i].size();
  }
  GRCNN_CHECK(ok, error, "--time-window wants START,END in ms (two integers), got '", text, "'");
  GRCNN_CHECK(v[0] < v[1], error, "--time-window ", text, ": START must be below END");
  return {v[0], v[1]};
}

struct request {
  std::string arch, backend = "cpu", stimuli_dir, stimulus_csv, image_list, assembly, variable, drop_neuroids;
  std::vector<std::string> weights, regions, layers;
  std::string region_map, splits_file, stratify = "object_name", metric = "pls", convention = "squared";
  std::string time_window, pca_images, out, save_activations, vone_noise = "fresh", precision = "fp32";
  double degrees = 8, model_degrees = 8, train_size = 0.9, test_size = 0.9, alpha = 1;
  int n_splits = 10, seed = 1, components = 25, pca = 0, batch = 64;
  bool every_step = false;
};

// One region's benchmark from the assembly: the stimuli it recorded, averaged, with the ceiling.
eval::neural_target load_target(const eval::neuroid_assembly& all, const std::string& region, const request& r,
                                const eval::metric_options& metric, const data::stimulus_set& stimuli) {
  eval::neuroid_assembly a = eval::select_region(all, region);
  if (!r.time_window.empty()) {
    const auto [start, end] = parse_time_window(r.time_window);
    a = eval::mean_over_time(a, start, end);
  }
  eval::neural_target t;
  t.region = region;
  t.responses = eval::average_repetitions(a);
  const bool similarity = eval::is_similarity(metric.kind);
  t.ceiling = similarity ? eval::similarity_ceiling(eval::repetition_matrices(a), metric) : eval::split_half_ceiling(a).ceiling;
  // Regressions train on train_size of the stimuli; RSA and CKA compare on test_size of them
  // (Brain-Score's test-only cross-validation, test_size 0.9).
  const eval::split_fraction fraction = similarity ? eval::split_fraction::test(r.test_size) : eval::split_fraction(r.train_size);
  const auto& ids = t.responses.stimulus_id;
  for (const auto& id : ids) stimuli.index_of(id);  // every recorded stimulus must have an image
  if (!r.splits_file.empty()) {
    t.splits = eval::read_split_file(r.splits_file, ids);
  } else if (r.stratify == "none") {
    t.splits = eval::shuffle_split(static_cast<std::int64_t>(ids.size()), r.n_splits, fraction, static_cast<std::uint32_t>(r.seed));
  } else {
    try {
      const auto& column = stimuli.column(r.stratify);
      std::vector<std::string> labels;
      for (const auto& id : ids) labels.push_back(column[stimuli.index_of(id)]);
      t.splits = eval::stratified_shuffle_split(eval::label_codes(labels), r.n_splits, fraction, static_cast<std::uint32_t>(r.seed));
    } catch (const error& e) {
      throw error(detail::concat(e.what(), " (stratifying by '", r.stratify, "'; --stratify none draws unstratified splits)"));
    }
  }
  return t;
}

template <class Topology, class B>
eval::activation_set record(const std::string& weights, const request& r, const data::stimulus_set& stimuli,
                            const std::vector<std::string>& layers, bool on_screen = true) {
  tools::activity reading("reading weights '" + weights + "'");
  const io::tensor_dict w = train::model_state_from(io::load_safetensors(weights));
  GRCNN_CHECK(w.contains("classifier.bias"), io_error, weights, ": no 'classifier.bias' (not a GRCNN state_dict?)");
  nn::network<Topology, B> net(static_cast<int>(w.at("classifier.bias").dim(0)));
  io::load_state_dict(net.state(), w);
  net.to_device(backends::backend_traits<B>::where);
  net.eval();
  net.set_precision(nn::parse_precision(r.precision));
  models::apply_vone_noise(net, models::parse_vone_noise(r.vone_noise));
  eval::activation_options o{.layers = layers, .every_step = r.every_step, .batch_size = r.batch,
                             .screen = {.stimulus_degrees = on_screen ? r.degrees : r.model_degrees,
                                        .model_degrees = r.model_degrees}};
  return eval::extract_activations(net, stimuli, o);
}

json score_json(const eval::layer_score& s) {
  return {{"layer", s.layer}, {"raw", s.raw.score}, {"error", s.raw.error}, {"ceiling", s.ceiling},
          {"ceiled", s.ceiled}, {"per_split", s.raw.per_split}};
}

std::string fmt(double v, int digits = 3) {
  if (std::isnan(v)) return "nan";
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

// Table 1 layout: one row per checkpoint, the committed layer's ceiled score per region, their mean.
void print_summary(const std::vector<tools::score_report>& runs) {
  std::vector<std::string> regions;
  for (const auto& run : runs)
    for (const auto& m : run.models)
      for (const auto& [reg, v] : m.ceiled)
        if (std::find(regions.begin(), regions.end(), reg) == regions.end()) regions.push_back(reg);
  std::printf("\n%-40s", "model");
  for (const auto& reg : regions) std::printf(" %8s", reg.c_str());
  std::printf(" %8s\n", "average");
  for (const auto& run : runs)
    for (const auto& m : run.models) {
      std::string name = m.weights;
      if (name.size() > 40) name = "..." + name.substr(name.size() - 37);
      std::printf("%-40s", name.c_str());
      double sum = 0;
      for (const auto& reg : regions) {
        double v = 0.0;  // a missing region counts 0
        for (const auto& [r, c] : m.ceiled)
          if (r == reg) v = c;
        sum += v;
        std::printf(" %8s", fmt(v).c_str());
      }
      std::printf(" %8s\n", regions.empty() ? "nan" : fmt(sum / static_cast<double>(regions.size())).c_str());
    }
  if (!runs.empty())
    std::printf("(ceiled %s; committed layer per region; a missing region counts 0)\n",
                runs[0].ceiling_convention == "squared" ? "(r/c)^2" : "r^2/c");
}

eval::scoring_options scoring_options_of(const request& r) {
  const eval::metric_options metric{.kind = eval::parse_metric(r.metric), .pls = {.components = r.components},
                                    .ridge_alpha = r.alpha};
  return {.metric = metric,
          .convention = r.convention == "squared" ? eval::ceiling_convention::squared
                                                  : eval::ceiling_convention::explained_variance};
}

// What every checkpoint is scored against: each region's neural target, and the stimuli the network sees.
struct benchmark {
  std::map<std::string, eval::neural_target> targets;
  data::stimulus_set stimuli;  // only the stimuli with recordings in some region
};

benchmark load_benchmark(const request& r, const eval::metric_options& metric) {
  std::optional<tools::activity> doing(std::in_place, "reading the stimuli");
  const data::stimulus_set all_stimuli = r.image_list.empty() ? data::read_stimulus_csv(r.stimulus_csv, r.stimuli_dir)
                                                              : data::read_image_list(r.image_list);
  doing.emplace("reading the assembly '" + r.assembly + "'");
  eval::neuroid_assembly assembly = eval::read_neuroid_assembly(r.assembly, r.variable);
  doing.reset();
  if (!r.drop_neuroids.empty()) assembly = eval::drop_neuroids(assembly, eval::read_id_list(r.drop_neuroids));
  benchmark b;
  std::set<std::string> recorded_ids;
  for (const auto& region : r.regions) {
    const eval::neural_target& t = b.targets[region] = load_target(assembly, region, r, metric, all_stimuli);
    recorded_ids.insert(t.responses.stimulus_id.begin(), t.responses.stimulus_id.end());
    std::printf("%s: %lld neuroids, %zu stimuli, %zu splits, ceiling %.4f\n", region.c_str(),
                static_cast<long long>(t.responses.values.cols()), t.responses.stimulus_id.size(), t.splits.size(), t.ceiling);
  }
  // Only the stimuli with recordings go through the network.
  for (std::size_t i = 0; i < all_stimuli.size(); ++i)
    if (recorded_ids.count(all_stimuli.ids[i]))
      b.stimuli.ids.push_back(all_stimuli.ids[i]), b.stimuli.paths.push_back(all_stimuli.paths[i]);
  return b;
}

// Candidate layers per region (--layers, or the one layer a region map commits), and every layer any
// region needs: each checkpoint records them all in one pass.
struct layer_plan {
  std::map<std::string, std::vector<std::string>> candidates;
  std::vector<std::string> layers;
};

layer_plan plan_layers(const request& r) {
  eval::region_layer_map fixed;
  if (!r.region_map.empty()) {
    fixed = r.region_map == "published" ? eval::published_region_map(r.arch) : eval::read_region_map(r.region_map);
    GRCNN_CHECK(!fixed.empty(), error, "--region-map published: Brain-Score has no region map for ", r.arch,
                " (grcnn55, vone_grcnn55 and grcnn109 have one); give --layers or a map file");
  }
  layer_plan p;
  for (const auto& region : r.regions) {
    if (!fixed.empty()) {
      GRCNN_CHECK(fixed.count(region), error, "the region map has no layer for region ", region);
      p.candidates[region] = {fixed.at(region)};
    } else {
      p.candidates[region] = r.layers;
    }
    for (const auto& l : p.candidates[region])
      if (std::find(p.layers.begin(), p.layers.end(), l) == p.layers.end()) p.layers.push_back(l);
  }
  return p;
}

// The --out JSON's run-wide part; each checkpoint adds its entry to "models".
json run_json(const request& r, const benchmark& b) {
  json run{{"arch", r.arch}, {"metric", r.metric}, {"ceiling_convention", r.convention}, {"degrees", r.degrees},
           {"model_degrees", r.model_degrees}, {"assembly", r.assembly}, {"pca", r.pca}, {"models", json::array()}};
  for (const auto& region : r.regions) {
    const eval::neural_target& t = b.targets.at(region);
    run["regions"][region] = {{"ceiling", t.ceiling}, {"neuroids", t.responses.values.cols()},
                              {"stimuli", t.responses.stimulus_id.size()}, {"splits", t.splits.size()}};
  }
  return run;
}

// --pca: one checkpoint's activations on the PCA images, and one fit per layer, made when a region first
// needs it and shared by the regions.
struct pca_reduction {
  std::optional<eval::activation_set> acts;
  std::map<std::string, eval::pca> fits;

  // The basis a layer is reduced with; null: no --pca, or the layer has no more features than components.
  const eval::pca* for_layer(const std::string& layer, int components) {
    if (!acts || acts->layer(layer).features() <= components) return nullptr;
    auto it = fits.find(layer);
    if (it == fits.end()) {
      const auto& l = acts->layer(layer);
      it = fits.emplace(layer, eval::pca()).first;
      it->second.fit(l.values.data(), acts->stimuli(), l.features(), components);
    }
    return &it->second;
  }
};

// The recorded layers scored for a region's candidates: with --every-step a module called once per
// recurrent step is scored at each step ("<name>.<t>").
std::vector<std::string> scored_layers(const std::vector<std::string>& candidates, const eval::activation_set& acts,
                                       bool every_step) {
  std::vector<std::string> names;
  for (const auto& c : candidates)
    for (const auto& l : acts.layers)
      if (l.name == c || (every_step && l.name.rfind(c + ".", 0) == 0 &&
                          l.name.find_first_not_of("0123456789", c.size() + 1) == std::string::npos))
        names.push_back(l.name);
  return names;
}

// Every candidate layer of one region scored, a table row each (a warning only where `warned` lacks it).
std::vector<eval::layer_score> score_candidates(const std::vector<std::string>& names, const eval::activation_set& acts,
                                                const eval::neural_target& target, const eval::scoring_options& opts,
                                                const request& r, pca_reduction& pca, std::set<std::string>& warned) {
  std::vector<eval::layer_score> scores;
  for (const auto& layer : names) {
    scores.push_back(eval::score_layer(acts, layer, target, opts, pca.for_layer(layer, r.pca)));
    const auto& s = scores.back();
    for (const auto& w : s.warnings)
      if (warned.insert(w).second) std::fprintf(stderr, "warning: %s\n", w.c_str());
    std::printf("%-8s %-28s %8s %8s %8s %8s\n", "", layer.c_str(), fmt(s.raw.score).c_str(), fmt(s.raw.error).c_str(),
                fmt(s.ceiling).c_str(), fmt(s.ceiled).c_str());
  }
  return scores;
}

// One region of one checkpoint: its table, the committed (best) layer, and its --out JSON entry.
json score_region(const std::string& region, const std::vector<std::string>& candidates, const eval::activation_set& acts,
                  const eval::neural_target& target, const eval::scoring_options& opts, const request& r,
                  pca_reduction& pca, std::set<std::string>& warned) {
  std::printf("%-8s %-28s %8s %8s %8s %8s\n", region.c_str(), "layer", "raw r", "SEM", "ceiling", "ceiled");
  const std::vector<eval::layer_score> scores =
      score_candidates(scored_layers(candidates, acts, r.every_step), acts, target, opts, r, pca, warned);
  // With --pca the layers are chosen on reduced features; the committed one is scored on all of them.
  eval::layer_score best = eval::best_layer(scores);
  if (pca.acts) best = eval::score_layer(acts, best.layer, target, opts);
  std::printf("%-8s committed: %s (raw %s, ceiled %s%s)\n", "", best.layer.c_str(), fmt(best.raw.score).c_str(),
              fmt(best.ceiled).c_str(), pca.acts ? ", full features" : "");
  json reg{{"best", best.layer}, {"ceiled", best.ceiled}, {"raw", best.raw.score}, {"error", best.raw.error},
           {"per_split", best.raw.per_split}, {"layers", json::array()}};
  for (const auto& s : scores) reg["layers"].push_back(score_json(s));
  return reg;
}

// --save-activations: the file itself for one checkpoint, "<file>.<index>" for each of several.
void save_checkpoint_activations(const request& r, std::size_t index, const eval::activation_set& acts) {
  const auto path = r.weights.size() == 1 ? std::filesystem::path(r.save_activations)
                                          : std::filesystem::path(r.save_activations + "." + std::to_string(index));
  eval::save_activations(path, acts);
  std::printf("activations written to %s\n", path.c_str());
}

// One checkpoint (r.weights[index]) recorded once and scored on every region; its --out JSON entry.
template <class Topology, class B>
json score_checkpoint(std::size_t index, const request& r, const benchmark& b, const layer_plan& plan,
                      const std::optional<data::stimulus_set>& pca_set, const eval::scoring_options& opts) {
  const std::string& weights = r.weights[index];
  std::printf("\n== %s\n", weights.c_str());
  const auto acts = record<Topology, B>(weights, r, b.stimuli, plan.layers);
  if (!r.save_activations.empty()) save_checkpoint_activations(r, index, acts);
  pca_reduction pca;
  std::set<std::string> warned;  // warnings printed: once per layer and rank, not once per region
  // The PCA images go straight to the model's preprocessing, as Brain-Score's LayerPCA feeds them: not
  // placed on the benchmark's screen (which would change the basis where its degrees differ from 8).
  if (pca_set) pca.acts = record<Topology, B>(weights, r, *pca_set, plan.layers, false);
  json model{{"weights", weights}, {"regions", json::object()}};
  for (const auto& region : r.regions)
    model["regions"][region] =
        score_region(region, plan.candidates.at(region), acts, b.targets.at(region), opts, r, pca, warned);
  return model;
}

template <class Topology, class B>
int score(const request& r) {
  const eval::scoring_options opts = scoring_options_of(r);
  const benchmark b = load_benchmark(r, opts.metric);
  const layer_plan plan = plan_layers(r);
  // PCA image set (layer selection only), recorded with the same network.
  std::optional<data::stimulus_set> pca_set;
  if (r.pca > 0) pca_set = data::read_image_list(r.pca_images);
  json run = run_json(r, b);
  for (std::size_t i = 0; i < r.weights.size(); ++i) run["models"].push_back(score_checkpoint<Topology, B>(i, r, b, plan, pca_set, opts));
  print_summary({tools::score_report_from_json(run, "this run")});
  if (!r.out.empty()) {
    tools::activity writing("writing '" + r.out + "'");
    io::write_file(r.out, run.dump(2) + "\n", "grcnn-score --out");  // every write checked: a full disk is an error
    std::printf("wrote %s\n", r.out.c_str());
  }
  return 0;
}

// The command line: a scoring request, or --report files to summarise; --region and --layers as given.
struct command_line {
  request r;
  std::vector<std::string> report;
  std::string regions, layers;
};

// What is scored, against what, with which model.
void add_input_options(CLI::App& app, command_line& c) {
  request& r = c.r;
  app.add_option("--report", c.report, "print the summary table of earlier --out JSON files and exit")->check(CLI::ExistingFile);
  app.add_option("--arch", r.arch, "architecture")->check(CLI::IsMember(models::variant_names()));
  app.add_option("--weights", r.weights, "safetensors weights or training checkpoints (several: one row each)")
      ->check(CLI::ExistingFile);
  app.add_option("--backend", r.backend, "cpu (oneDNN) or cuda")->check(CLI::IsMember(backends::known_backend_names()))->capture_default_str();
  app.add_option("--precision", r.precision, "fp32 | bf16 (activations computed in bf16 on the f32 weights)")
      ->check(CLI::IsMember({"fp32", "bf16"}))->capture_default_str();
  app.add_option("--stimuli", r.stimuli_dir, "folder of the stimulus images")->check(CLI::ExistingDirectory);
  app.add_option("--stimulus-csv", r.stimulus_csv, "stimulus metadata (stimulus_id/image_id, object_name, ...)")
      ->check(CLI::ExistingFile);
  app.add_option("--images", r.image_list, "instead of a CSV: one image path per line (id = file stem)")->check(CLI::ExistingFile);
  app.add_option("--assembly", r.assembly, "NeuroidAssembly netCDF file")->check(CLI::ExistingFile);
  app.add_option("--variable", r.variable, "its data variable (default: the only one over presentation x neuroid)");
  app.add_option("--region", c.regions, "regions to score, comma-separated (V4,IT)");
  app.add_option("--drop-neuroids", r.drop_neuroids, "neuroid ids to drop, one per line (hvm: erroneous_neuroids.txt)")
      ->check(CLI::ExistingFile);
  app.add_option("--time-window", r.time_window, "START,END ms: average the time bins inside (needed with several bins)");
  app.add_option("--layers", c.layers, "candidate layers, comma-separated (PyTorch module names)");
  app.add_option("--region-map", r.region_map, "JSON {region: layer}, or 'published' (Brain-Score's map for --arch)");
  app.add_option("--degrees", r.degrees, "visual degrees the stimuli span")->capture_default_str();
  app.add_option("--model-degrees", r.model_degrees, "visual degrees the model sees")->capture_default_str();
}

// How the layers are scored, and what is written besides the tables.
void add_scoring_options(CLI::App& app, request& r) {
  app.add_option("--splits", r.splits_file, "JSON splits by stimulus id (instead of drawing them)")->check(CLI::ExistingFile);
  app.add_option("--stratify", r.stratify, "stimulus column to stratify the splits by, or 'none'")->capture_default_str();
  app.add_option("--n-splits", r.n_splits, "cross-validation splits")->check(CLI::Range(1, 1000))->capture_default_str();
  app.add_option("--train-size", r.train_size, "training fraction per split")->check(CLI::Range(0.01, 0.99))->capture_default_str();
  app.add_option("--test-size", r.test_size, "held-out fraction per split for rsa and cka (Brain-Score: 0.9)")
      ->check(CLI::Range(0.01, 0.99))
      ->capture_default_str();
  app.add_option("--seed", r.seed, "random_state of the splits (numpy-identical)")->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--metric", r.metric, "pls, ridge, linear, rsa or cka")
      ->check(CLI::IsMember(eval::metric_names()))
      ->capture_default_str();
  app.add_option("--components", r.components, "PLS components")->check(CLI::Range(1, 10000))->capture_default_str();
  app.add_option("--alpha", r.alpha, "ridge alpha")->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--ceiling-convention", r.convention, "squared: (r/c)^2 (Table 1); explained-variance: r^2/c")
      ->check(CLI::IsMember({"squared", "explained-variance"}))
      ->capture_default_str();
  app.add_option("--pca", r.pca, "reduce layers to this many principal components before scoring (layer selection)")
      ->check(CLI::Range(0, 100000));
  app.add_option("--pca-images", r.pca_images, "image list the PCA is fitted on (Brain-Score: 1000 ImageNet val images)")
      ->check(CLI::ExistingFile);
  app.add_option("--batch", r.batch, "images per forward pass")->check(CLI::Range(1, 4096))->capture_default_str();
  app.add_option("--vone-noise", r.vone_noise, "VOneBlock noise: fresh (a new draw per call, as VOneNet), off, or a seed")->capture_default_str();
  app.add_flag("--every-step", r.every_step, "score each call of a module run once per recurrent step (default: its last)");
  app.add_option("--save-activations", r.save_activations, "also write the recorded activations (safetensors)");
  app.add_option("--out", r.out, "write the scores as JSON");
}

// The flags a scoring run lacks, each with a leading space (empty: none).
std::string missing_flags(const request& r) {
  std::string missing;
  if (r.arch.empty()) missing += " --arch";
  if (r.weights.empty()) missing += " --weights";
  if (r.assembly.empty()) missing += " --assembly";
  if (r.regions.empty()) missing += " --region";
  if (r.layers.empty() && r.region_map.empty()) missing += " --layers|--region-map";
  if (r.image_list.empty() && (r.stimuli_dir.empty() || r.stimulus_csv.empty())) missing += " --stimuli+--stimulus-csv|--images";
  return missing;
}

// A request that cannot run is refused before any work: returns the exit code after saying why (2, or
// an exception for a malformed value), or -1 to go on.
int refuse_unrunnable(const request& r) {
  if (const std::string missing = missing_flags(r); !missing.empty()) {
    std::cerr << "grcnn-score: missing" << missing << " (or --report FILE...)\n";
    return 2;
  }
  if (!r.time_window.empty()) parse_time_window(r.time_window);  // a malformed flag fails before any work
  if (r.pca > 0 && r.pca_images.empty()) {
    std::cerr << "grcnn-score: --pca needs --pca-images\n";
    return 2;
  }
  models::parse_vone_noise(r.vone_noise);
  if (const std::string why = backends::unusable_reason(r.backend); !why.empty()) {
    std::cerr << "grcnn-score: --backend " << r.backend << ": " << why << "\n";
    return 2;
  }
  return -1;
}

int run_tool(int argc, char** argv) {
  CLI::App app{"grcnn-score: Brain-Score neural predictivity of GRCNN checkpoints"};
  command_line c;
  add_input_options(app, c);
  add_scoring_options(app, c.r);
  data::image_limits limits = data::default_image_limits();
  tools::add_limit_options(app, limits, /*arrays=*/false);
  CLI11_PARSE(app, argc, argv);
  data::set_default_image_limits(limits);
  if (!c.report.empty()) {
    std::vector<tools::score_report> runs;
    for (const auto& f : c.report) runs.push_back(tools::read_score_report(f));
    print_summary(runs);
    return 0;
  }
  request& r = c.r;
  r.regions = tools::split_commas(c.regions);
  r.layers = tools::split_commas(c.layers);
  if (const int rc = refuse_unrunnable(r); rc >= 0) return rc;
  return backends::with_backend(r.backend, [&]<class B>() {
    return models::with_variant(r.arch, [&]<class Topology>() { return score<Topology, B>(r); });
  });
}

}  // namespace

int main(int argc, char** argv) {
  return tools::guarded_main("grcnn-score", [&] { return run_tool(argc, argv); });
}
