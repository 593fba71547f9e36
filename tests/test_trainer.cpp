// The trainer on the CPU backend with a small GRCNN and a small in-memory dataset: a run stopped (at
// a step, at an epoch end, or by SIGTERM) and resumed ends bitwise equal to an uninterrupted run;
// checkpoints rotate and keep the best; a non-finite loss stops the run naming the step (or is skipped
// with the flag); a file that is not a checkpoint is refused by name.
#include <catch2/catch.hpp>

#include <csignal>

#include <grcnn/backends/default.hpp>
#include <grcnn/models/grcnn.hpp>
#include <grcnn/train/sgd.hpp>
#include <grcnn/train/trainer.hpp>

using namespace grcnn;
namespace fs = std::filesystem;

namespace {

// 4 classes of 16x16 images: a class-specific stripe direction plus per-image noise.
class stripes final : public data::dataset {
 public:
  explicit stripes(std::size_t n, int raise_at = -1) : n_(n), raise_at_(raise_at) {}
  std::size_t size() const override { return n_; }
  std::int64_t num_classes() const override { return 4; }
  std::string describe() const override { return "stripes"; }
  data::sample get(std::size_t i) const override {
    check_index(i);
    if (static_cast<int>(i) == raise_at_ && !raised_.exchange(true)) std::raise(SIGTERM);
    data::sample s;
    s.label = static_cast<std::int64_t>(i % 4);
    s.image.width = s.image.height = 16;
    s.image.pixels.resize(768);
    std::uint32_t h = static_cast<std::uint32_t>(i) * 2654435761u;
    for (int y = 0; y < 16; ++y)
      for (int x = 0; x < 16; ++x) {
        const int v = s.label == 0 ? x : s.label == 1 ? y : s.label == 2 ? x + y : x - y + 16;
        h = h * 1664525u + 1013904223u;
        for (int c = 0; c < 3; ++c)
          s.image.pixels[static_cast<std::size_t>((y * 16 + x) * 3 + c)] =
              static_cast<std::uint8_t>(((v / 2) % 2) * 160 + (h >> 27) + c * 10);
      }
    return s;
  }

 private:
  std::size_t n_;
  int raise_at_;
  mutable std::atomic<bool> raised_{false};
};

using net_t = models::grcnn_small<>;

struct run_config {
  fs::path out;
  long stop_after = -1;
  bool resume = false;
  double lr = 0.05;
  bool skip_nonfinite = false;
  int keep = 2;
  int raise_at = -1;
  bool poison_classifier = false;  // a NaN classifier bias: every loss is NaN
  std::string poison_weight;       // a parameter whose first element is set NaN in memory before training
};

struct run_output {
  io::tensor_dict state;
  train::fit_result result;
};

run_output run(const run_config& c) {
  const stripes train_set(64, c.raise_at), eval_set(24);
  data::pipeline p;
  p.steps = {data::random_crop(16, 2), data::random_horizontal_flip()};
  data::loader train_loader(train_set, p, {.batch_size = 8, .workers = 2, .seed = 9});
  data::loader eval_loader(eval_set, {}, {.batch_size = 12, .shuffle = false, .drop_last = false, .workers = 1});
  net_t net(4, 5);
  if (c.poison_classifier)
    for (auto& e : net.state())
      if (e.name == "classifier.bias") e.value().fill(std::nan(""));
  for (auto& e : net.state())
    if (e.name == c.poison_weight) {  // in the weight's own format (oneDNN may hold it blocked)
      tensor& w = e.value();
      tensor p = w.to_layout(layout::plain);
      auto v = p.values<double>();
      v[0] = std::nan("");
      p.assign(v);
      w = w.memory_layout() == layout::opaque ? p.to_format(w.format()) : p.to_layout(w.memory_layout());
    }
  train::sgd opt(net.parameters(), train::param_group{.lr = c.lr, .weight_decay = 1e-4, .momentum = 0.9, .nesterov = true});
  const train::lr_schedule schedule({.kind = train::schedule_kind::cosine, .per_iteration = true, .warmup_iterations = 3}, 3,
                                    static_cast<long>(train_loader.batches_per_epoch()));
  train::trainer_options o;
  o.epochs = 3;
  o.out = c.out;
  o.keep_checkpoints = c.keep;
  o.label_smoothing = 0.1;
  o.mixup_alpha = 0.4;  // exercises the trainer's RNG across the resume
  o.stop_after = c.stop_after;
  o.skip_nonfinite = c.skip_nonfinite;
  o.seed = 9;
  o.quiet = true;
  train::trainer<net_t> t(net, opt, schedule, train_loader, &eval_loader, o);
  if (c.resume) t.resume(t.checkpoints().latest());
  run_output r;
  r.result = t.fit();
  r.state = io::state_dict(net.state());
  opt.save_state(r.state, "optimizer");
  return r;
}

void check_bitwise(const io::tensor_dict& a, const io::tensor_dict& b) {
  REQUIRE(a.size() == b.size());
  for (const auto& [name, t] : a.entries()) {
    INFO(name);
    const tensor& u = t;
    const tensor& v = b.at(name);
    REQUIRE(u.bytes() == v.bytes());
    CHECK(std::memcmp(u.raw(), v.raw(), u.bytes()) == 0);
  }
}

}  // namespace

TEST_CASE("a stopped and resumed run ends bitwise equal to an uninterrupted one", "[trainer]") {
  fs::remove_all("trainer_runs");
  const run_output whole = run({.out = "trainer_runs/whole"});
  REQUIRE(whole.result.outcome == train::fit_outcome::finished);
  REQUIRE(whole.result.steps == 24);
  REQUIRE(whole.result.last_eval);
  // Rotation: the last two epoch checkpoints and best.safetensors remain.
  const train::checkpoint_folder folder("trainer_runs/whole", 2);
  const auto list = folder.list();
  REQUIRE(list.size() == 2);
  CHECK(list[0].first == 16);
  CHECK(list[1].first == 24);
  CHECK(fs::exists(folder.best()));
  // Metrics: train, epoch and eval records as JSON lines.
  std::ifstream log("trainer_runs/whole/metrics.jsonl");
  std::size_t evals = 0, lines = 0;
  for (std::string line; std::getline(log, line); ++lines) evals += nlohmann::json::parse(line)["type"] == "eval";
  CHECK(evals == 3);
  CHECK(lines >= 9);

  for (const long stop : {5L, 8L, 13L}) {  // inside epoch 1, at the end of epoch 1, inside epoch 2
    SECTION("stopped after step " + std::to_string(stop)) {
      const fs::path out = "trainer_runs/stop" + std::to_string(stop);
      const run_output first = run({.out = out, .stop_after = stop});
      REQUIRE(first.result.outcome == train::fit_outcome::stopped);
      REQUIRE(first.result.steps == stop);
      const run_output rest = run({.out = out, .resume = true});
      REQUIRE(rest.result.outcome == train::fit_outcome::finished);
      CHECK(rest.result.steps == 24 - stop);
      check_bitwise(rest.state, whole.state);
    }
  }
  SECTION("interrupted by SIGTERM") {
    const fs::path out = "trainer_runs/sigterm";
    const run_output first = run({.out = out, .raise_at = 30});
    REQUIRE(first.result.outcome == train::fit_outcome::interrupted);
    REQUIRE(first.result.steps < 24);
    REQUIRE(fs::exists(first.result.last_checkpoint));
    const run_output rest = run({.out = out, .resume = true});
    REQUIRE(rest.result.outcome == train::fit_outcome::finished);
    check_bitwise(rest.state, whole.state);
  }
}

TEST_CASE("a non-finite loss stops the run naming the step, or is skipped with the flag", "[trainer]") {
  fs::remove_all("trainer_nan");
  try {
    run({.out = "trainer_nan/stop", .lr = 1e30});
    FAIL("a diverging run did not stop");
  } catch (const numeric_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("training stopped: the loss is") && Catch::Contains("iteration") && Catch::Contains("(step ") &&
                             Catch::Contains("--skip-nonfinite"));
  }
  const run_output skipped = run({.out = "trainer_nan/skip", .lr = 1e30, .skip_nonfinite = true});
  CHECK(skipped.result.outcome == train::fit_outcome::finished);
  CHECK(skipped.result.skipped_steps > 0);
  // A skipped step leaves no trace in the BN running statistics (the train-mode forward is undone):
  // with a NaN classifier bias every step is skipped, and the statistics stay at their initial values.
  const run_output all_skipped = run({.out = "trainer_nan/all", .skip_nonfinite = true, .poison_classifier = true});
  CHECK(all_skipped.result.skipped_steps == 24);
  for (const auto& [name, t] : all_skipped.state.entries()) {
    INFO(name);
    if (name.ends_with("running_mean")) CHECK(t.values<double>() == std::vector<double>(t.values<double>().size(), 0.0));
    if (name.ends_with("running_var")) CHECK(t.values<double>() == std::vector<double>(t.values<double>().size(), 1.0));
    if (name.ends_with("num_batches_tracked")) CHECK(t.values<std::int64_t>() == std::vector<std::int64_t>{0});
  }
  // A diverged network scores no hits: NaN logits never count as the top class.
  const tensor nan_logits = tensor::full({2, 4}, std::nan(""));
  CHECK(train::topk_hits(nan_logits, {0, 3}, 1) == 0);
  CHECK(train::topk_hits(nan_logits, {0, 3}, 4) == 0);
  const tensor tied = tensor::from_values(shape{1, 4}, std::vector<double>{1, 2, 2, std::nan("")});
  CHECK(train::topk_hits(tied, {1}, 1) == 0);  // the NaN counts above, like a larger logit
  CHECK(train::topk_hits(tied, {1}, 2) == 1);
  CHECK(train::topk_hits(tied, {2}, 2) == 0);  // ties go to the lower class index
}

TEST_CASE("checkpoints: plain weights are refused for resume, with the file named", "[trainer]") {
  fs::create_directories("trainer_misc");
  net_t net(4);
  io::save_state_dict("trainer_misc/weights.safetensors", net.state());
  train::sgd opt(net.parameters(), train::param_group{.lr = 0.1});
  CHECK_THROWS_WITH(train::load_checkpoint("trainer_misc/weights.safetensors", net.state(), opt),
                    Catch::Contains("'trainer_misc/weights.safetensors' is not a grcnn training checkpoint"));
  // model_state_from accepts both a checkpoint and plain weights (--init-weights).
  train::save_checkpoint("trainer_misc/ckpt.safetensors", net.state(), opt, {});
  const auto from_ckpt = train::model_state_from(io::load_safetensors("trainer_misc/ckpt.safetensors"));
  const auto from_plain = train::model_state_from(io::load_safetensors("trainer_misc/weights.safetensors"));
  CHECK(from_ckpt.size() == from_plain.size());
  io::load_state_dict(net.state(), from_ckpt);
  CHECK_THROWS_WITH(train::checkpoint_folder("trainer_misc/empty", 1).latest(), Catch::Contains("no checkpoint-<step>.safetensors"));
  // A fresh run into a folder that holds another run's checkpoints is refused.
  fs::remove_all("trainer_misc/run");
  REQUIRE(run({.out = "trainer_misc/run", .stop_after = 2}).result.outcome == train::fit_outcome::stopped);
  CHECK_THROWS_WITH(run({.out = "trainer_misc/run"}), Catch::Contains("already holds checkpoints of a run"));
  // Each parameter belongs to one group.
  CHECK_THROWS_WITH(train::sgd(std::vector<train::param_group>{{.name = "a", .params = net.parameters()},
                                                               {.name = "b", .params = {net.parameters().front()}}}),
                    Catch::Contains("appears twice"));
}

// Issue 21: a NaN conv weight ahead of batch norm + ReLU used to vanish in the fused ReLU (NaN -> 0), so
// training ran to the end with a finite loss. The NaN now reaches the loss and the guard stops the run
// at its first step (or every step is skipped with the flag).
TEST_CASE("a NaN conv weight behind batch norm and ReLU stops the run", "[trainer]") {
  fs::remove_all("trainer_nan_weight");
  try {
    run({.out = "trainer_nan_weight/stop", .poison_weight = "conv_3x3.weight"});
    FAIL("a run from a NaN weight did not stop");
  } catch (const numeric_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("training stopped: the loss is") && Catch::Contains("nan") && Catch::Contains("(step 1)"));
  }
  const run_output all_skipped =
      run({.out = "trainer_nan_weight/all", .skip_nonfinite = true, .poison_weight = "conv_3x3.weight"});
  CHECK(all_skipped.result.skipped_steps == 24);
}
