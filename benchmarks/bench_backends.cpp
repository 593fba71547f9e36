// Backend comparison benchmark (issue 25): the same GRCNN, with the same weights, on every backend this
// build and machine can run, side by side. A run is a backend in one precision:
//
//   reference     reference<double> (f64): the oracle. Slow on purpose, so timed only at the reduced
//                 check size (--check-size, --check-batch; --ref-steps)
//   onednn        oneDNN f32, channels-last (the default CPU backend)
//   onednn-bf16   oneDNN bf16 mixed precision (f32 master weights)
//   cuda          CUDA f32 (IEEE), activations in --layout (nchw by default; both: one run per order)
//   cuda-tf32     CUDA with tensor-core tf32 convolutions and matrix products, --layout as cuda
//   cuda-bf16     CUDA bf16 mixed precision, channels-last (the order the backend runs bf16 in)
//
// --backends picks (default: all; the CUDA runs are skipped, with the reason, in a build without the CUDA
// component or on a machine without a usable GPU). For each run, the model part times inference (eval,
// no tape) and a training step (forward, cross-entropy, backward, SGD momentum + weight decay), median
// over --steps after --warmup (a device synchronisation ends each GPU step), and checks the run's eval
// logits at the check size against reference<double>'s on the same weights and input (max |logits - ref|
// / max |ref|). CPU runs take --batch, CUDA runs --train-batch and --infer-batch. --ops adds grcnn55's
// op shapes (grcnn55_ops.json; the reference at --ops-ref-batch), timed per op and summed per op family.
// Peak memory: the host allocator's, from the start of each mode (CPU runs); the device pool's, which is
// never reset, so a later CUDA run of the same process reports at least an earlier one's (flagged). CUDA
// runs take --cudnn-api and --profile as bench_grcnn_cuda did.
//
// Output: one JSON object per (run, mode) on stdout, with the fields bench_grcnn and bench_grcnn_cuda
// printed before they were folded into this program (images_per_s, median_s, step_s, peak memory, the
// steady-state allocation, plan and cuDNN search counters) plus "backend" (the run's name) and
// "max_rel_dev"; with --ops one object per op and one per op family ("kind": "op" / "op_family"). --json
// FILE writes the same lines to FILE. At the end, a markdown table with the runs side by side on stderr
// (and in --table FILE), and the command that draws the chart (benchmarks/plot_backends.py).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include <grcnn/backends/default.hpp>
#include <grcnn/core/tensor_math.hpp>
#include <grcnn/io/state_dict.hpp>
#include <grcnn/models/grcnn.hpp>
#include <grcnn/models/vone_noise.hpp>
#include <grcnn/train/sgd.hpp>
#ifdef GRCNN_HAVE_CUDA
#include <grcnn/backends/cuda/cuda.hpp>
#include <grcnn/backends/cuda/device.hpp>
#include <grcnn/train/cuda_updates.hpp>
#endif

#include "op_bench.hpp"

using namespace grcnn;
using autograd::variable;
using nlohmann::json;

namespace {

enum class family { reference, onednn, cuda };

// One run: a backend in one precision (and, for CUDA f32/tf32, one activation order).
struct run_spec {
  std::string name;       // what --backends takes
  std::string label;      // its column in the table
  family fam = family::onednn;
  std::string precision;  // fp64, fp32, tf32 or bf16
  nn::precision mixed = nn::precision::fp32;
  layout act = layout::nhwc;
  bool tf32 = false;
};

const std::vector<std::string>& run_names() {
  static const std::vector<std::string> n{"reference", "onednn", "onednn-bf16", "cuda", "cuda-tf32", "cuda-bf16"};
  return n;
}

struct options {
  std::string arch = "grcnn55", mode = "both", backends = "all", layouts = "nchw";
  int batch = 16, size = 224, steps = 5, warmup = 2, classes = 1000;
  int train_batch = 128, infer_batch = 256;
  int check_size = 0, check_batch = 2;  // check_size 0: 32 for grcnn_small, 64 for the ImageNet networks
  int ref_steps = 2, ref_warmup = 0;
  bool check = true, profile = false, ops = false;
  std::string api, spec = GRCNN_BENCH_SPEC, only = "all";
  int reps = 5, ops_ref_batch = 1;
  std::string json_path, table_path;
  std::uint64_t seed = 1;
};

// Every JSON line goes to stdout and, with --json, to the file.
std::ofstream json_file;
void emit(const json& j) {
  std::cout << j.dump() << std::endl;
  if (json_file.is_open()) json_file << j.dump() << '\n' << std::flush;
}

// What the table shows of a run.
struct run_result {
  run_spec spec;
  std::map<std::string, json> modes;  // "inference", "train" -> its JSON line
  std::optional<double> deviation;
  std::map<std::string, std::pair<double, double>> families;  // op family -> (fwd ms, fwd+bwd ms)
  std::int64_t ops_batch = 0;
};
std::vector<run_result> results;
std::size_t onednn_fallbacks = 0;
[[maybe_unused]] bool cuda_measured = false;  // an earlier CUDA measurement may hold the process's device peak

// The reference<double> side of the deviation check: the weights every run loads, the check input and
// the reference's logits.
struct check_data {
  io::tensor_dict weights;
  tensor input;       // f32, plain, on the host
  tensor ref_logits;  // f64
  int size = 0, batch = 0;
};

template <class Net>
void set_readout_for(Net& net, std::int64_t side) {
  // The ImageNet networks' AvgPool2d(7) readout needs a 7x7 final map (224 px): other sizes read the mean.
  net.set_readout(Net::accepts_side(side) ? nn::readout::exact : nn::readout::global);
}
template <class Net>
const char* readout_name(std::int64_t side) {
  return Net::accepts_side(side) ? "exact" : "global";
}

// The VOneBlock's noise (vone_grcnn55): off for the deviation check, fresh draws for the timing.
template <class Net>
void set_vone_noise(Net& net, bool on) {
  if constexpr (Net::template count_modules<nn::vone_module> == 1)
    models::apply_vone_noise(net, {on ? models::vone_noise_setting::kind::fresh : models::vone_noise_setting::kind::off, 0});
}

template <class B>
constexpr device where_of() {
  return backends::backend_traits<B>::where;
}

tensor random_images(int batch, int size, std::uint64_t seed) {
  std::mt19937 rng(static_cast<std::mt19937::result_type>(seed));
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> pixels(static_cast<std::size_t>(batch) * 3 * size * size);
  for (auto& p : pixels) p = u(rng);
  return tensor::from_values(shape{batch, 3, size, size}, pixels, dtype::f32, layout::plain);
}

template <template <class> class Model>
check_data make_check(const options& o) {
  using Net = Model<backends::reference<double>>;
  check_data c;
  c.size = o.check_size;
  c.batch = o.check_batch;
  Net ref(o.classes, o.seed);
  ref.to_dtype(dtype::f64);
  c.weights = io::state_dict(ref.state());
  c.input = random_images(o.check_batch, o.check_size, 2);
  set_vone_noise(ref, false);
  set_readout_for(ref, o.check_size);
  ref.eval();
  const auto a = std::chrono::steady_clock::now();
  {
    autograd::no_grad_guard ng;
    c.ref_logits = ref.forward(variable(c.input.to_dtype(dtype::f64))).value().to_layout(layout::plain);
  }
  std::cerr << "reference<double> check logits: " << o.arch << " at " << o.check_size << " px, batch " << o.check_batch
            << " (" << std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count() << " s)\n";
  return c;
}

template <template <class> class Model, class B>
void run_model(const run_spec& r, const options& o, const check_data* chk) {
  using Net = Model<B>;
  constexpr device where = where_of<B>();
  constexpr bool on_gpu = where.kind != device_kind::cpu;
  const bool is_ref = r.fam == family::reference;
  const std::size_t fallbacks_before = backends::fallback_log::instance().total();
  const dtype input_type = is_ref ? dtype::f64 : dtype::f32;
  auto to_run = [&](const tensor& plain) { return plain.to_dtype(input_type).to_layout(r.act).to_device(where); };

  run_result res{.spec = r};
  // The deviation from reference<double>: eval logits on the reference's weights and input, VOneBlock noise
  // off. A network of its own: a convolution adopts the weight format of the first input it sees, and the
  // timed network must see the timed shapes first.
  if (chk) {
    if (is_ref) {
      res.deviation = 0.0;
    } else {
      Net check(o.classes, o.seed);
      io::load_state_dict(check.state(), chk->weights, {.print_notes = false});
      if constexpr (on_gpu) check.to_device(where);
      check.set_precision(r.mixed);
      set_vone_noise(check, false);
      set_readout_for(check, chk->size);
      check.eval();
      autograd::no_grad_guard ng;
      const tensor logits = check.forward(variable(to_run(chk->input))).value();
      res.deviation = relative_error(logits.to_device(cpu_device).to_layout(layout::plain), chk->ref_logits);
    }
  }

  auto& host = host_allocator::instance();
  host.release_cached();  // each run starts from an empty cache: its own allocations and peak
  host.reset_peak();
  Net net(o.classes, o.seed);  // the same weights as the check's (the same seed and initialisation)
  if (is_ref) net.to_dtype(dtype::f64);
  if constexpr (on_gpu) net.to_device(where);
  net.set_precision(r.mixed);
  set_vone_noise(net, true);  // timing: fresh noise per step, as training draws it

  const int size = is_ref ? o.check_size : o.size;
  const int steps = is_ref ? o.ref_steps : o.steps, warmup = is_ref ? o.ref_warmup : o.warmup;
  set_readout_for(net, size);
  std::mt19937 rng(1);
  train::sgd opt(net.parameters(), {.lr = 0.01, .weight_decay = 1e-4, .momentum = 0.9});

  auto measure = [&](const char* mode, int batch, auto&& step) {
    host.reset_peak();
    for (int i = 0; i < warmup; ++i) step();
    bench::synchronize<B>();
    [[maybe_unused]] const auto allocs = host.stats().system_allocations;
    [[maybe_unused]] const auto plans = backends::onednn_detail::stats().plans_created.load();
#ifdef GRCNN_HAVE_CUDA
    [[maybe_unused]] const auto before = on_gpu ? runtime_for(where).memory_stats() : device_memory_stats{};
    [[maybe_unused]] const auto searches = on_gpu ? grcnn::cuda::conv_stats().searches : decltype(grcnn::cuda::conv_stats().searches){};
#endif
    std::vector<double> t;
    for (int i = 0; i < steps; ++i) {
      const auto a = std::chrono::steady_clock::now();
      step();
      bench::synchronize<B>();
      t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
    }
    const std::vector<double> in_order = t;
    std::sort(t.begin(), t.end());
    const double median = t[t.size() / 2];
    json j{{"backend", r.name},
           {"arch", o.arch},
           {"mode", mode},
           {"precision", r.precision},
           {"layout", r.act == layout::nhwc ? "nhwc" : "nchw"},
           {"batch", batch},
           {"size", size},
           {"readout", readout_name<Net>(size)},
           {"median_s", median},
           {"min_s", t.front()},
           {"step_s", in_order},
           {"images_per_s", batch / median}};
    if (res.deviation) {
      j["max_rel_dev"] = *res.deviation;
      j["check_size"] = chk->size;
      j["check_batch"] = chk->batch;
    }
    if constexpr (!on_gpu) {
      j["peak_bytes"] = host.stats().peak_bytes_in_use;
      j["steady_system_allocations"] = host.stats().system_allocations - allocs;
      j["steady_plans_created"] = backends::onednn_detail::stats().plans_created.load() - plans;
    }
#ifdef GRCNN_HAVE_CUDA
    if constexpr (on_gpu) {
      const auto after = runtime_for(where).memory_stats();
      const auto conv = grcnn::cuda::conv_stats();
      j["peak_bytes"] = after.peak_bytes_in_use;
      j["peak_bytes_in_use"] = after.peak_bytes_in_use;
      j["peak_is_process_max"] = cuda_measured;  // the device pool's peak is never reset: an earlier run's may show
      j["pool_reserved_bytes"] = after.pool_reserved;
      j["steady_driver_allocations"] = after.system_allocations - before.system_allocations;
      j["steady_conv_searches"] = conv.searches - searches;
      j["cudnn_api"] = grcnn::cuda::name_of(grcnn::cuda::current_conv_api());
      j["conv_searches_won_by_graph"] = conv.graph_choices;
      j["conv_searches_won_by_legacy"] = conv.legacy_choices;
      j["conv_choices_adopted"] = conv.adoptions;
    }
#endif
    emit(j);
    res.modes[mode] = j;
#ifdef GRCNN_HAVE_CUDA
    if (on_gpu && o.profile) {  // where the time goes: each library call timed alone (synchronised), 3 steps
      grcnn::cuda::reset_profile();
      grcnn::cuda::set_profiling(true);
      for (int i = 0; i < 3; ++i) step();
      runtime_for(where).synchronize();
      grcnn::cuda::set_profiling(false);
      std::cerr << "profile " << r.precision << " " << mode << (r.act == layout::nhwc ? " nhwc" : " nchw")
                << " (3 steps):\n" << grcnn::cuda::profile_report();
    }
#endif
  };

  if (o.mode == "inference" || o.mode == "both") {
    const int batch = is_ref ? o.check_batch : on_gpu ? o.infer_batch : o.batch;
    const tensor x = to_run(random_images(batch, size, rng()));
    net.eval();
    measure("inference", batch, [&] {
      autograd::no_grad_guard ng;
      (void)net.forward(variable(x));
    });
  }
  if (o.mode == "train" || o.mode == "both") {
    const int batch = is_ref ? o.check_batch : on_gpu ? o.train_batch : o.batch;
    const tensor x = to_run(random_images(batch, size, rng()));
    std::vector<std::int64_t> y(static_cast<std::size_t>(batch));
    for (auto& l : y) l = static_cast<std::int64_t>(rng() % static_cast<unsigned>(o.classes));
    const tensor labels = tensor::from_values(shape{batch}, y).to_device(where);
    net.train();
    measure("train", batch, [&] {
      net.zero_grad();
      autograd::backward(ops::cross_entropy<B>(net.forward(variable(x)), labels));
      opt.step();
    });
  }
  if (r.fam == family::onednn) onednn_fallbacks += backends::fallback_log::instance().total() - fallbacks_before;
  if constexpr (on_gpu) cuda_measured = true;
  results.push_back(std::move(res));
}

// grcnn55's op shapes on one run's backend: one JSON line per op and per op family.
template <class B>
void run_ops(const run_spec& r, const options& o, const json& spec) {
  const bool is_ref = r.fam == family::reference;
  const bench::op_setup setup{.act = is_ref ? dtype::f64 : r.mixed == nn::precision::bf16_mixed ? dtype::bf16 : dtype::f32,
                              .order = r.act,
                              .batch = is_ref ? o.ops_ref_batch : 0,
                              .reps = is_ref ? 1 : o.reps,
                              .warmup = is_ref ? 0 : 1};
  const std::int64_t batch = setup.batch > 0 ? setup.batch : spec["batch"].get<std::int64_t>();
  std::mt19937 rng(1);
  std::map<std::string, std::pair<double, double>> fam;
  std::map<std::string, int> count;
  const std::size_t fallbacks_before = backends::fallback_log::instance().total();
  for (const auto& op : spec["ops"]) {
    if (o.only != "all" && op["op"] != o.only) continue;
    const bench::op_time t = bench::time_op<B>(op, setup, rng);
    emit(json{{"kind", "op"}, {"backend", r.name}, {"precision", r.precision}, {"name", op["name"]}, {"op", op["op"]},
              {"batch", batch}, {"fwd_ms", t.fwd_ms}, {"fwd_bwd_ms", t.fwd_bwd_ms}});
    auto& f = fam[op["op"].get<std::string>()];
    f.first += t.fwd_ms;
    f.second += t.fwd_bwd_ms;
    count[op["op"].get<std::string>()]++;
  }
  for (const auto& [name, f] : fam)
    emit(json{{"kind", "op_family"}, {"backend", r.name}, {"precision", r.precision}, {"family", name},
              {"ops", count[name]}, {"batch", batch}, {"fwd_ms", f.first}, {"fwd_bwd_ms", f.second}});
  if (r.fam == family::onednn) onednn_fallbacks += backends::fallback_log::instance().total() - fallbacks_before;
  // The op columns join the run's model column (or make their own when the model part did not run).
  auto it = std::find_if(results.begin(), results.end(), [&](const run_result& x) { return x.spec.label == r.label; });
  if (it == results.end()) {
    results.push_back(run_result{.spec = r});
    it = std::prev(results.end());
  }
  it->families = fam;
  it->ops_batch = batch;
}

// Calls f.template operator()<B>() with the run's backend type.
template <class F>
void with_run_backend(const run_spec& r, F&& f) {
  switch (r.fam) {
    case family::reference:
      f.template operator()<backends::reference<double>>();
      return;
    case family::onednn:
      f.template operator()<backends::onednn>();
      return;
    case family::cuda:
#ifdef GRCNN_HAVE_CUDA
      if (r.tf32) f.template operator()<backends::cuda_tf32>();
      else f.template operator()<backends::cuda>();
#endif
      return;
  }
}

// The runs --backends names, in the order of run_names(); CUDA runs this build or machine cannot do are
// dropped with the reason.
std::vector<run_spec> plan_runs(const options& o, bool& dropped_requested) {
  std::vector<std::string> wanted;
  const bool all = o.backends == "all";
  if (all) {
    wanted = run_names();
  } else {
    std::stringstream ss(o.backends);
    for (std::string n; std::getline(ss, n, ',');)
      if (!n.empty()) wanted.push_back(n);
  }
  std::string gpu_problem;
#ifdef GRCNN_HAVE_CUDA
  const auto probe = grcnn::cuda::probe();
  if (probe.device_count == 0) gpu_problem = "no usable GPU (" + probe.reason + ")";
#else
  gpu_problem = "this build has no CUDA component (configure with GRCNN_ENABLE_CUDA=ON)";
#endif
  std::vector<run_spec> runs;
  for (const auto& name : run_names()) {
    if (std::find(wanted.begin(), wanted.end(), name) == wanted.end()) continue;
    if (name == "reference") {
      runs.push_back({name, "reference<f64>", family::reference, "fp64", nn::precision::fp32, layout::plain});
    } else if (name == "onednn") {
      runs.push_back({name, "onednn", family::onednn, "fp32", nn::precision::fp32, layout::nhwc});
    } else if (name == "onednn-bf16") {
      runs.push_back({name, "onednn-bf16", family::onednn, "bf16", nn::precision::bf16_mixed, layout::nhwc});
    } else {
      if (!gpu_problem.empty()) {
        std::cerr << name << ": skipped, " << gpu_problem << "\n";
        dropped_requested = dropped_requested || !all;
        continue;
      }
      if (name == "cuda-bf16") {
        // bf16 runs in the backend's mixed-precision order whatever --layout says: the network reorders
        // its input there (backends::preferred_activations), so that is the order reported.
        runs.push_back({name, name, family::cuda, "bf16", nn::precision::bf16_mixed, layout::nhwc});
        continue;
      }
      for (layout act : {layout::nhwc, layout::plain}) {
        if (o.layouts != "both" && (o.layouts == "nhwc") != (act == layout::nhwc)) continue;
        const std::string label = o.layouts == "both" ? name + (act == layout::nhwc ? "/nhwc" : "/nchw") : name;
        runs.push_back({name, label, family::cuda, name == "cuda" ? "fp32" : "tf32", nn::precision::fp32, act,
                        name == "cuda-tf32"});
      }
    }
  }
  return runs;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}
std::string rate(double v) { return v >= 100 ? fixed(v, 1) : v >= 1 ? fixed(v, 2) : fixed(v, 3); }
std::string sci(double v) {
  if (v == 0) return "0";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2g", v);
  return buf;
}

// The side-by-side table: one column per run.
std::string table(const options& o, const check_data* chk) {
  std::vector<std::pair<std::string, std::vector<std::string>>> rows;
  auto row = [&](const std::string& name, auto&& cell) {
    std::vector<std::string> cells;
    bool any = false;
    for (const auto& r : results) {
      std::string c = cell(r);
      any = any || !c.empty();
      cells.push_back(c.empty() ? "-" : c);
    }
    if (any) rows.emplace_back(name, cells);
  };
  bool process_peak = false;
  row("precision", [](const run_result& r) { return r.spec.precision; });
  row("activations", [](const run_result& r) { return std::string(r.spec.act == layout::nhwc ? "nhwc" : "nchw"); });
  for (const char* mode : {"inference", "train"}) {
    const std::string m = mode;
    row(m + ": batch @ px", [&](const run_result& r) -> std::string {
      const auto it = r.modes.find(m);
      if (it == r.modes.end()) return "";
      return std::to_string(it->second["batch"].get<int>()) + " @ " + std::to_string(it->second["size"].get<int>()) +
             (r.spec.fam == family::reference ? " (reduced)" : "");
    });
    row(m + ": images/s", [&](const run_result& r) -> std::string {
      const auto it = r.modes.find(m);
      return it == r.modes.end() ? "" : rate(it->second["images_per_s"].get<double>());
    });
    row(m + ": ms/step", [&](const run_result& r) -> std::string {
      const auto it = r.modes.find(m);
      return it == r.modes.end() ? "" : fixed(1e3 * it->second["median_s"].get<double>(), 1);
    });
    row(m + ": peak MiB", [&](const run_result& r) -> std::string {
      const auto it = r.modes.find(m);
      if (it == r.modes.end()) return "";
      const bool star = it->second.value("peak_is_process_max", false);
      process_peak = process_peak || star;
      return fixed(it->second["peak_bytes"].get<double>() / (1 << 20), 0) + (star ? "*" : "");
    });
  }
  if (chk)
    row("max rel. deviation from reference<f64>", [](const run_result& r) -> std::string {
      return r.deviation ? sci(*r.deviation) : "";
    });
  for (const char* f : {"conv", "bn_relu", "gate"}) {
    const std::string fam = f;
    row(fam + " fwd ms", [&](const run_result& r) -> std::string {
      const auto it = r.families.find(fam);
      return it == r.families.end() ? "" : fixed(it->second.first, 1);
    });
    row(fam + " fwd+bwd ms", [&](const run_result& r) -> std::string {
      const auto it = r.families.find(fam);
      return it == r.families.end() ? "" : fixed(it->second.second, 1);
    });
  }
  row("op batch", [](const run_result& r) -> std::string { return r.ops_batch ? std::to_string(r.ops_batch) : ""; });

  std::ostringstream os;
  os << "| " << o.arch << " |";
  for (const auto& r : results) os << ' ' << r.spec.label << " |";
  os << "\n|---|";
  for (std::size_t i = 0; i < results.size(); ++i) os << "---:|";
  os << '\n';
  for (const auto& [name, cells] : rows) {
    os << "| " << name << " |";
    for (const auto& c : cells) os << ' ' << c << " |";
    os << '\n';
  }
  std::vector<std::string> notes;
  if (o.mode != "none") {
    std::ostringstream n;
    n << "Median of " << o.steps << " steps after " << o.warmup << " warm-up steps";
    const bool has_ref = std::any_of(results.begin(), results.end(), [](const run_result& r) {
      return r.spec.fam == family::reference && !r.modes.empty();
    });
    if (has_ref)
      n << "; reference<f64> is timed only at the reduced check size (" << o.check_size << " px, batch "
        << o.check_batch << ", median of " << o.ref_steps << " steps after " << o.ref_warmup << ")";
    notes.push_back(n.str() + ".");
  }
  if (chk)
    notes.push_back("Deviation: max |logits - reference<f64>| / max |reference<f64>| of eval logits on the same weights, " +
                    std::to_string(chk->batch) + " images of " + std::to_string(chk->size) + " px.");
  if (process_peak)
    notes.push_back("*: the device pool's peak over this process so far (an upper bound; run one CUDA backend per "
                    "process for its own).");
  if (std::any_of(results.begin(), results.end(), [](const run_result& r) { return !r.families.empty(); }))
    notes.push_back("Op families: sums over grcnn55's distinct op shapes (" + o.spec.substr(o.spec.find_last_of('/') + 1) +
                    "), median of " + std::to_string(o.reps) + " after a warm-up" +
                    (std::any_of(results.begin(), results.end(),
                                 [](const run_result& r) { return r.spec.fam == family::reference && !r.families.empty(); })
                         ? "; reference<f64> once, at the op batch shown."
                         : "."));
  os << '\n';
  for (std::size_t i = 0; i < notes.size(); ++i) os << (i ? " " : "") << notes[i];
  os << '\n';
  return os.str();
}

template <template <class> class Model>
int run_all(const options& o0) {
  options o = o0;
  bool dropped = false;
  const std::vector<run_spec> runs = plan_runs(o, dropped);
  if (runs.empty()) {
    std::cerr << "bench_backends: nothing to run\n";
    return 77;  // the CUDA runs asked for cannot run here: a skip, as bench_grcnn_cuda's
  }
  const bool model = o.mode != "none";
  GRCNN_CHECK(Model<backends::reference<double>>::accepts_side(o.check_size, nn::readout::global), error,
              "--check-size ", o.check_size, " is too small for ", o.arch);
  GRCNN_CHECK(!model || Model<backends::reference<double>>::accepts_side(o.size, nn::readout::global), error, "--size ",
              o.size, " is too small for ", o.arch);
  std::optional<check_data> chk;
  if (model && o.check) chk = make_check<Model>(o);
  for (const auto& r : runs) {
    std::cerr << "run " << r.label << " (" << r.precision << ")\n";
    with_run_backend(r, [&]<class B>() { if (model) run_model<Model, B>(r, o, chk ? &*chk : nullptr); });
  }
  if (o.ops) {
    const json spec = json::parse(std::ifstream(o.spec));
    for (const auto& r : runs) {
      std::cerr << "ops " << r.label << " (" << r.precision << ")\n";
      with_run_backend(r, [&]<class B>() { run_ops<B>(r, o, spec); });
    }
  }
  const std::string t = table(o, chk ? &*chk : nullptr);
  std::cerr << '\n' << t;
  if (!o.table_path.empty()) std::ofstream(o.table_path) << t;
  if (!o.json_path.empty())
    std::cerr << "chart: /usr/bin/python3 benchmarks/plot_backends.py " << o.json_path << " -o "
              << o.json_path.substr(0, o.json_path.rfind('.')) << ".png\n";
  if (onednn_fallbacks != 0) {
    std::cerr << "error: " << onednn_fallbacks << " oneDNN op call(s) fell back to the reference backend\n";
    for (const auto& [what, n] : backends::fallback_log::instance().entries()) std::cerr << "  " << n << " x " << what << '\n';
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"grcnn backend comparison: the same network and weights on every backend this build and machine have"};
  options o;
  std::string backend_help = "comma list of runs, or all (the default): ";
  for (const auto& n : run_names()) backend_help += n + (n == run_names().back() ? "" : ", ");
  app.add_option("--backends", o.backends, backend_help)->check([](const std::string& s) -> std::string {
    if (s == "all") return {};
    std::stringstream ss(s);
    for (std::string n; std::getline(ss, n, ',');)
      if (std::find(run_names().begin(), run_names().end(), n) == run_names().end()) return "unknown run '" + n + "'";
    return {};
  });
  app.add_option("--arch", o.arch, "grcnn55, grcnn109, vone_grcnn55 (fresh VOneBlock noise per step; off in the "
                                   "deviation check) or grcnn_small (the main job's network)")
      ->check(CLI::IsMember({"grcnn55", "grcnn109", "vone_grcnn55", "grcnn_small"}));
  app.add_option("--mode", o.mode, "inference, train, both, or none (with --ops: the op shapes alone)")
      ->check(CLI::IsMember({"inference", "train", "both", "none"}));
  app.add_option("--classes", o.classes, "classifier width")->check(CLI::PositiveNumber);
  app.add_option("--batch", o.batch, "batch of the CPU runs")->check(CLI::PositiveNumber);
  app.add_option("--train-batch", o.train_batch, "training batch of the CUDA runs")->check(CLI::PositiveNumber);
  app.add_option("--infer-batch", o.infer_batch, "inference batch of the CUDA runs")->check(CLI::PositiveNumber);
  app.add_option("--size", o.size, "image size (the ImageNet networks' exact readout needs 224; other sizes read "
                                   "the global mean)")
      ->check(CLI::PositiveNumber);
  app.add_option("--steps", o.steps, "timed steps")->check(CLI::PositiveNumber);
  app.add_option("--warmup", o.warmup, "untimed steps first")->check(CLI::NonNegativeNumber);
  app.add_option("--check-size", o.check_size, "image size of the deviation check and of the reference's timing "
                                               "(default 32 for grcnn_small, 64 for the others)")
      ->check(CLI::PositiveNumber);
  app.add_option("--check-batch", o.check_batch, "batch of the deviation check and of the reference's timing")
      ->check(CLI::PositiveNumber);
  app.add_option("--ref-steps", o.ref_steps, "timed steps of the reference")->check(CLI::PositiveNumber);
  app.add_option("--ref-warmup", o.ref_warmup, "untimed steps of the reference first")->check(CLI::NonNegativeNumber);
  app.add_flag("!--no-check", o.check, "skip the deviation check (and reference<double>'s forward it needs)");
  app.add_option("--layout", o.layouts, "activations of the cuda and cuda-tf32 runs: channels-last (nhwc), plain "
                                        "(nchw) or both (a run each)")
      ->check(CLI::IsMember({"nhwc", "nchw", "both"}));
  app.add_option("--cudnn-api", o.api, "CUDA convolutions through cuDNN's legacy API, its graph API, or the faster "
                                       "per problem (default: GRCNN_CUDNN_API, else auto)")
      ->check(CLI::IsMember({"auto", "legacy", "graph"}));
  app.add_flag("--profile", o.profile, "CUDA: after timing, print device time per library call over 3 synchronised steps");
  app.add_flag("--ops", o.ops, "also time grcnn55's op shapes per op family on each run's backend");
  app.add_option("--spec", o.spec, "--ops: JSON list of op shapes")->check(CLI::ExistingFile);
  app.add_option("--reps", o.reps, "--ops: timed repetitions per op")->check(CLI::PositiveNumber);
  app.add_option("--only", o.only, "--ops: time only these ops")->check(CLI::IsMember({"all", "conv", "bn_relu", "gate"}));
  app.add_option("--ops-ref-batch", o.ops_ref_batch, "--ops: the reference's batch (in place of the spec's)")
      ->check(CLI::PositiveNumber);
  app.add_option("--json", o.json_path, "write the JSON lines to this file too");
  app.add_option("--table", o.table_path, "write the markdown table to this file too");
  CLI11_PARSE(app, argc, argv);
  if (o.check_size == 0) o.check_size = o.arch == "grcnn_small" ? 32 : 64;
  if (o.mode == "none" && !o.ops) {
    std::cerr << "bench_backends: --mode none times nothing without --ops\n";
    return 2;
  }
  if (!o.json_path.empty()) {
    json_file.open(o.json_path);
    if (!json_file) {
      std::cerr << "bench_backends: cannot write " << o.json_path << '\n';
      return 2;
    }
  }
#ifdef GRCNN_HAVE_CUDA
  if (!o.api.empty()) grcnn::cuda::set_conv_api(grcnn::cuda::parse_conv_api(o.api, "--cudnn-api"));
  if (const auto r = grcnn::cuda::probe(); r.device_count > 0)
    std::cerr << "device 0: " << r.name << ", cuDNN " << r.cudnn_version << ", convolutions: "
              << grcnn::cuda::name_of(grcnn::cuda::current_conv_api()) << " API\n";
#endif
  try {
    if (o.arch == "grcnn_small") return run_all<models::grcnn_small>(o);
    if (o.arch == "vone_grcnn55") return run_all<models::vone_grcnn55>(o);
    if (o.arch == "grcnn109") return run_all<models::grcnn109>(o);
    return run_all<models::grcnn55>(o);
  } catch (const std::exception& e) {
    std::cerr << "bench_backends: " << e.what() << '\n';
    return 1;
  }
}
