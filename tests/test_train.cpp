// Training components against torch (fixtures from tests/torch/make_train_fixtures.py): optimizer
// trajectories over 20 steps of a small GRCNN (SGD with momentum / Nesterov / plain / parameter groups /
// frozen parameters, AdamW with and without groups), every lr schedule, and the training targets and
// losses (GRCNN's and PyTorch's label smoothing, mixup, the SK recipe's smoothed mixed target).
#include <catch2/catch.hpp>

#include <grcnn/backends/reference/reference.hpp>
#include <grcnn/io/state_dict.hpp>
#include <grcnn/models/grcnn.hpp>
#include <grcnn/train/adamw.hpp>
#include <grcnn/train/cutmix.hpp>
#include <grcnn/train/schedule.hpp>
#include <grcnn/train/sgd.hpp>
#include <grcnn/train/superclass.hpp>
#include <grcnn/train/targets.hpp>

using namespace grcnn;
using autograd::variable;

namespace {

const io::tensor_dict& fixtures() {
  static const io::tensor_dict d = io::load_safetensors("train_fixtures.safetensors");
  return d;
}

io::tensor_dict with_prefix(const std::string& prefix) {
  io::tensor_dict out;
  for (const auto& [name, t] : fixtures().entries())
    if (name.rfind(prefix, 0) == 0) out.add(name.substr(prefix.size()), t);
  return out;
}

using f64_net = nn::network<models::grcnn_small_topology, backends::reference<double>>;

// Parameters split as the torch script does: rank > 1 in the first group, BN and biases in the second.
std::vector<train::param_group> by_rank(f64_net& net, train::param_group decay, train::param_group other) {
  for (auto* p : net.parameters()) (p->value().rank() > 1 ? decay : other).params.push_back(p);
  return {decay, other};
}

std::unique_ptr<train::optimizer> make_optimizer(const std::string& config, f64_net& net) {
  using train::param_group;
  if (config == "sgd_momentum")
    return std::make_unique<train::sgd>(net.parameters(), param_group{.lr = 0.1, .weight_decay = 1e-4, .momentum = 0.9});
  if (config == "sgd_nesterov")
    return std::make_unique<train::sgd>(net.parameters(),
                                        param_group{.lr = 0.05, .weight_decay = 5e-4, .momentum = 0.9, .nesterov = true});
  if (config == "sgd_plain") return std::make_unique<train::sgd>(net.parameters(), param_group{.lr = 0.05, .weight_decay = 1e-3});
  if (config == "sgd_groups")
    return std::make_unique<train::sgd>(by_rank(net, {.name = "decay", .lr = 0.1, .weight_decay = 1e-3, .momentum = 0.9},
                                                 {.name = "other", .lr = 0.02, .weight_decay = 0, .momentum = 0.9}));
  if (config == "sgd_frozen") {
    for (auto& e : net.state())
      if (e.is_parameter() && e.name.rfind("stage_1.", 0) != 0) train::freeze({e.parameter});
    return std::make_unique<train::sgd>(net.parameters(), param_group{.lr = 0.1, .weight_decay = 1e-4, .momentum = 0.9});
  }
  if (config == "adamw") return std::make_unique<train::adamw>(std::vector<param_group>{
                             {.name = "all", .params = net.parameters(), .lr = 1e-3, .weight_decay = 0.05}});
  if (config == "adamw_groups")
    return std::make_unique<train::adamw>(
        by_rank(net, {.name = "decay", .lr = 2e-3, .weight_decay = 0.1, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-6},
                {.name = "other", .lr = 5e-4, .weight_decay = 0, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-6}));
  FAIL("unknown config " << config);
  return nullptr;
}

void check_state(f64_net& net, const io::tensor_dict& expected, double tol) {
  for (const auto& e : net.state()) {
    INFO(e.name);
    const tensor& want = expected.at(e.name);
    if (want.type() == dtype::i64) {
      CHECK(e.value().values<std::int64_t>() == want.values<std::int64_t>());
      continue;
    }
    CHECK(relative_error(e.value().to_layout(layout::plain), want) <= tol);
  }
}

}  // namespace

TEST_CASE("optimizer trajectories match torch.optim over 20 steps of a small GRCNN", "[train][optimizer]") {
  const io::tensor_dict init = with_prefix("init.");
  for (const std::string config :
       {"sgd_momentum", "sgd_nesterov", "sgd_plain", "sgd_groups", "sgd_frozen", "adamw", "adamw_groups"}) {
    SECTION(config) {
      f64_net net(10);
      net.to_dtype(dtype::f64);
      io::load_state_dict(net.state(), init);
      net.train();
      auto opt = make_optimizer(config, net);
      const auto losses = fixtures().at(config + ".losses").values<double>();
      for (int k = 0; k < 20; ++k) {
        const tensor x = fixtures().at("input." + std::to_string(k));
        const tensor y = fixtures().at("labels." + std::to_string(k));
        opt->zero_grad();
        const variable loss = ops::cross_entropy<backends::reference<double>>(net.forward(variable(x)), y);
        CHECK(loss.value().item() == Approx(losses[static_cast<std::size_t>(k)]).epsilon(1e-9));
        autograd::backward(loss);
        opt->step();
        if (k + 1 == 10) check_state(net, with_prefix(config + ".step10."), 1e-6);
      }
      check_state(net, with_prefix(config + ".final."), 1e-6);
      if (config == "sgd_frozen") {  // frozen parameters never moved
        for (const auto& e : net.state())
          if (e.is_parameter() && e.name.rfind("stage_1.", 0) != 0) {
            INFO(e.name);
            CHECK(relative_error(e.value(), init.at(e.name)) == 0.0);
          }
      }
    }
  }
}

TEST_CASE("optimizer state round-trips through a checkpoint dictionary", "[train][optimizer]") {
  for (const bool adam : {false, true}) {
    f64_net a(10, 3), b(10, 3);
    std::unique_ptr<train::optimizer> oa, ob;
    if (adam) {
      oa = std::make_unique<train::adamw>(std::vector<train::param_group>{{.name = "all", .params = a.parameters(), .lr = 1e-3}});
      ob = std::make_unique<train::adamw>(std::vector<train::param_group>{{.name = "all", .params = b.parameters(), .lr = 1e-3}});
    } else {
      oa = std::make_unique<train::sgd>(a.parameters(), train::param_group{.lr = 0.1, .momentum = 0.9});
      ob = std::make_unique<train::sgd>(b.parameters(), train::param_group{.lr = 0.1, .momentum = 0.9});
    }
    a.to_dtype(dtype::f64);
    b.to_dtype(dtype::f64);
    const tensor x = fixtures().at("input.0"), y = fixtures().at("labels.0");
    auto step = [&](f64_net& n, train::optimizer& o) {
      o.zero_grad();
      autograd::backward(ops::cross_entropy<backends::reference<double>>(n.forward(variable(x)), y));
      o.step();
    };
    step(a, *oa);
    io::tensor_dict saved = io::state_dict(a.state());
    oa->save_state(saved, "optimizer");
    {  // a NaN in a momentum buffer or Adam moment is refused by name before any state changes
      io::tensor_dict poisoned;
      poisoned.metadata = saved.metadata;
      std::string victim;
      for (const auto& [name, t] : saved.entries()) {
        tensor c = t.clone();
        if (victim.empty() && name.rfind("optimizer.", 0) == 0 && t.type() != dtype::i64 && t.numel() > 1) {
          victim = name;
          auto v = c.values<double>();
          v[1] = std::nan("");
          c.assign(v);
        }
        poisoned.add(name, c);
      }
      REQUIRE(!victim.empty());
      CHECK_THROWS_WITH(ob->load_state(poisoned, "optimizer"),
                        Catch::Contains("tensor '" + victim + "' holds NaN at element 1"));
    }
    io::load_state_dict(b.state(), io::state_dict(a.state()));
    ob->load_state(saved, "optimizer");
    step(a, *oa);
    step(b, *ob);
    const auto sa = a.state(), sb = b.state();
    for (std::size_t i = 0; i < sa.size(); ++i) {
      INFO(sa[i].name);
      CHECK(relative_error(sa[i].value(), sb[i].value()) == 0.0);
    }
  }
  // A state written by another optimizer kind, or for other groups, is refused by name.
  f64_net n(10);
  train::sgd s(n.parameters(), train::param_group{.lr = 0.1, .momentum = 0.9});
  io::tensor_dict d;
  s.save_state(d, "optimizer");
  train::adamw w(std::vector<train::param_group>{{.name = "all", .params = n.parameters()}});
  CHECK_THROWS_WITH(w.load_state(d, "optimizer"), Catch::Contains("holds a sgd optimizer, this run uses adamw"));
  train::sgd fewer(std::vector<variable*>{n.parameters().front()}, train::param_group{.lr = 0.1});
  CHECK_THROWS_WITH(fewer.load_state(d, "optimizer"), Catch::Contains("has 1 parameters here but"));
}

TEST_CASE("optimizers reject bad hyper-parameters", "[train][optimizer]") {
  f64_net n(10);
  CHECK_THROWS_WITH(train::sgd(n.parameters(), train::param_group{.lr = -1}), Catch::Contains("negative lr"));
  CHECK_THROWS_WITH(train::sgd(n.parameters(), train::param_group{.lr = 0.1, .nesterov = true}),
                    Catch::Contains("Nesterov momentum needs momentum > 0"));
  CHECK_THROWS_WITH(train::adamw(std::vector<train::param_group>{{.name = "x", .params = n.parameters(), .beta1 = 1.0}}),
                    Catch::Contains("betas must lie in [0, 1)"));
}

TEST_CASE("lr schedules match torch.optim.lr_scheduler", "[train][schedule]") {
  using train::schedule_kind;
  auto check = [](const std::string& name, const train::schedule_options& o, long epochs, long per_epoch, double base,
                  bool per_iteration_values) {
    INFO(name);
    const train::lr_schedule s(o, epochs, per_epoch);
    const auto want = fixtures().at("sched." + name + ".lr").values<double>();
    const long n = per_iteration_values ? epochs * per_epoch : epochs;
    REQUIRE(static_cast<long>(want.size()) == n);
    for (long i = 0; i < n; ++i) {
      const long e = per_iteration_values ? i / per_epoch : i, it = per_iteration_values ? i % per_epoch : 0;
      INFO("position " << i);
      CHECK(base * s.lr_factor(e, it) == Approx(want[static_cast<std::size_t>(i)]).epsilon(1e-12).margin(1e-15));
    }
  };
  check("step", {.kind = schedule_kind::step, .gamma = 0.5, .step_size = 3}, 10, 1, 0.1, false);
  check("multistep", {.kind = schedule_kind::multistep}, 100, 1, 0.1, false);
  check("cosine_epoch", {.kind = schedule_kind::cosine}, 20, 5, 0.1, false);
  check("cosine_iter", {.kind = schedule_kind::cosine, .per_iteration = true}, 10, 7, 0.1, true);
  check("warmup_cosine", {.kind = schedule_kind::cosine, .per_iteration = true, .warmup_iterations = 12}, 10, 7, 0.1, true);
  check("warmup_multistep", {.kind = schedule_kind::multistep, .milestones = {3, 6}, .warmup_iterations = 12}, 10, 7, 0.1, true);
  check("onecycle", {.kind = schedule_kind::onecycle}, 10, 7, 0.3, true);
  const train::lr_schedule one({.kind = schedule_kind::onecycle}, 10, 7);
  const auto mom = fixtures().at("sched.onecycle.momentum").values<double>();
  for (long i = 0; i < 70; ++i) CHECK(one.momentum(i / 7, i % 7) == Approx(mom[static_cast<std::size_t>(i)]).epsilon(1e-12));
  CHECK(train::lr_schedule({.kind = schedule_kind::cosine}, 10, 7).momentum(0, 0) < 0);  // only one-cycle cycles momentum
  CHECK_THROWS_WITH(train::lr_schedule({.kind = schedule_kind::onecycle, .warmup_iterations = 5}, 10, 7),
                    Catch::Contains("one-cycle has its own warm-up"));
  CHECK_THROWS_WITH(train::parse_schedule_kind("linear"), Catch::Contains("unknown schedule 'linear'"));
  CHECK_THROWS_WITH(train::lr_schedule({}, 0, 7), Catch::Contains("positive epochs"));
}

TEST_CASE("label smoothing, mixup and the SK target match the reference losses", "[train][targets]") {
  using B = backends::reference<double>;
  const tensor logits = fixtures().at("loss.logits");
  const auto labels = fixtures().at("loss.labels").values<std::int64_t>();
  const variable z(logits);
  // GRCNN's smoothing: 0.9 on the label, 0.1/(K-1) elsewhere.
  const tensor target = train::smoothed_one_hot(labels, 7, 0.1, dtype::f64);
  CHECK(relative_error(target, fixtures().at("loss.grcnn_target")) <= 1e-15);
  CHECK(ops::cross_entropy<B>(z, target).value().item() == Approx(fixtures().at("loss.grcnn").item()).epsilon(1e-12));
  // PyTorch's smoothing: eps/K everywhere (ops::cross_entropy's option).
  CHECK(ops::cross_entropy<B>(z, fixtures().at("loss.labels"), {.label_smoothing = 0.1}).value().item() ==
        Approx(fixtures().at("loss.pytorch").item()).epsilon(1e-12));
  // Mixup target with a given lambda and permutation, then the SK recipe's smoothing.
  train::mixup_result m;
  m.lambda = 0.3;
  m.permutation = fixtures().at("loss.mix_permutation").values<std::int64_t>();
  tensor mixed = train::mixed_one_hot(labels, 7, m);
  CHECK(ops::cross_entropy<B>(variable(logits), mixed.to_dtype(dtype::f64)).value().item() ==
        Approx(fixtures().at("loss.mixup_two_ce").item()).epsilon(1e-6));  // target built in f32
  train::smooth_mixed(mixed, 0.1);
  CHECK(relative_error(mixed.to_dtype(dtype::f64), fixtures().at("loss.sk_target")) <= 1e-6);
  CHECK(ops::cross_entropy<B>(variable(logits), mixed.to_dtype(dtype::f64)).value().item() ==
        Approx(fixtures().at("loss.mixup_sk").item()).epsilon(1e-6));
  CHECK_THROWS_WITH(train::smoothed_one_hot({0, 9}, 7, 0.1), Catch::Contains("label 9 at position 1 outside [0, 7)"));
}

TEST_CASE("mixup mixes each image with its permutation partner", "[train][targets]") {
  std::mt19937_64 rng(5);
  tensor x = tensor::empty({6, 3, 4, 4}, dtype::f32, layout::nhwc);
  {
    float* d = x.data<float>();
    for (std::int64_t i = 0; i < x.numel(); ++i) d[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i)));
  }
  const tensor before = x.clone();
  const train::mixup_result m = train::mixup(x, 0.4, rng);
  REQUIRE(m.lambda > 0.0);
  REQUIRE(m.lambda < 1.0);
  std::vector<std::int64_t> sorted = m.permutation;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5});
  const float* a = before.data<float>();
  const float* o = x.data<float>();
  const std::size_t per = 48;
  for (std::size_t i = 0; i < 6; ++i)
    for (std::size_t k = 0; k < per; ++k) {
      const float want = static_cast<float>(m.lambda) * a[i * per + k] +
                         (1.0f - static_cast<float>(m.lambda)) * a[static_cast<std::size_t>(m.permutation[i]) * per + k];
      REQUIRE(o[i * per + k] == Approx(want).margin(1e-6));
    }
  // Beta(alpha, alpha) draws: mean 1/2, variance 1 / (4 (2 alpha + 1)).
  double sum = 0, sq = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const double l = train::sample_beta(0.2, 0.2, rng);
    sum += l;
    sq += l * l;
  }
  const double mean = sum / n, var = sq / n - mean * mean;
  CHECK(mean == Approx(0.5).margin(0.01));
  CHECK(var == Approx(1.0 / (4 * 1.4)).margin(0.01));
}

TEST_CASE("CutMix boxes match the original's rand_bbox", "[train][cutmix]") {
  const auto cases = fixtures().at("cutmix.cases").values<double>();
  const auto boxes = fixtures().at("cutmix.boxes").values<std::int64_t>();
  REQUIRE(cases.size() / 5 == boxes.size() / 4);
  for (std::size_t i = 0; i < boxes.size() / 4; ++i) {
    const double* c = cases.data() + 5 * i;
    const train::cutmix_box b = train::cutmix_box_at(static_cast<int>(c[0]), static_cast<int>(c[1]), c[2], static_cast<int>(c[3]),
                                                     static_cast<int>(c[4]));
    INFO("case " << i << ": " << c[0] << "x" << c[1] << " lambda " << c[2] << " centre " << c[3] << ", " << c[4]);
    CHECK(b.top == boxes[4 * i]);
    CHECK(b.bottom == boxes[4 * i + 1]);
    CHECK(b.left == boxes[4 * i + 2]);
    CHECK(b.right == boxes[4 * i + 3]);
  }
}

TEST_CASE("CutMix pastes the partner's box, recomputes lambda, and follows its probability", "[train][cutmix]") {
  std::mt19937_64 rng(17);
  for (const layout l : {layout::nhwc, layout::plain}) {
    tensor x = tensor::empty({5, 3, 9, 11}, dtype::f32, l);
    float* d = x.data<float>();
    for (std::int64_t i = 0; i < x.numel(); ++i) d[i] = static_cast<float>(i);
    const tensor before = x.clone();
    std::optional<train::cutmix_result> r;
    while (!r || r->box.area() == 0) {
      x = before.clone();
      r = train::cutmix(x, 1.0, 1.0, rng);
    }
    CHECK(r->mix.lambda == Approx(1.0 - r->box.area() / 99.0));
    const auto got = x.values<float>(), orig = before.values<float>();  // logical NCHW order
    for (std::int64_t n = 0; n < 5; ++n)
      for (std::int64_t c = 0; c < 3; ++c)
        for (int y = 0; y < 9; ++y)
          for (int xx = 0; xx < 11; ++xx) {
            const bool in = y >= r->box.top && y < r->box.bottom && xx >= r->box.left && xx < r->box.right;
            const std::int64_t src = in ? r->mix.permutation[static_cast<std::size_t>(n)] : n;
            REQUIRE(got[static_cast<std::size_t>(((n * 3 + c) * 9 + y) * 11 + xx)] ==
                    orig[static_cast<std::size_t>(((src * 3 + c) * 9 + y) * 11 + xx)]);
          }
  }
  // The recomputed lambda's distribution (beta = 1, 32x32) matches a simulation of the original.
  double sum = 0, sq = 0;
  const int n = 40000;
  tensor img = tensor::zeros({2, 1, 32, 32}, dtype::f32, layout::nhwc);
  for (int i = 0; i < n; ++i) {
    const auto r = train::cutmix(img, 1.0, 1.0, rng);
    REQUIRE(r);
    sum += r->mix.lambda;
    sq += r->mix.lambda * r->mix.lambda;
  }
  const auto want = fixtures().at("cutmix.lambda_stats").values<double>();
  CHECK(sum / n == Approx(want[0]).margin(0.006));
  CHECK(std::sqrt(sq / n - (sum / n) * (sum / n)) == Approx(want[1]).margin(0.006));
  // Applied with probability p; otherwise the batch is untouched.
  int applied = 0;
  for (int i = 0; i < 20000; ++i) applied += train::cutmix(img, 1.0, 0.3, rng).has_value();
  CHECK(applied / 20000.0 == Approx(0.3).margin(0.015));
  CHECK_THROWS_WITH(train::cutmix(img, 0.0, 0.5, rng), Catch::Contains("needs beta > 0"));
}

TEST_CASE("CutMix of a multi-view batch pastes one box from the same partner into every view", "[train][cutmix]") {
  std::mt19937_64 rng(3);
  tensor x = tensor::empty({6, 2, 8, 8}, dtype::f32, layout::nhwc);  // 3 views of 2 samples
  float* d = x.data<float>();
  for (std::int64_t i = 0; i < x.numel(); ++i) d[i] = static_cast<float>(i);
  const tensor before = x.clone();
  std::optional<train::cutmix_result> r;
  while (!r || r->box.area() == 0) {
    x = before.clone();
    r = train::cutmix(x, 1.0, 1.0, rng, 3);
  }
  REQUIRE(r->mix.permutation.size() == 2);
  const auto got = x.values<float>(), orig = before.values<float>();
  for (std::int64_t v = 0; v < 3; ++v)
    for (std::int64_t n = 0; n < 2; ++n)
      for (int y = 0; y < 8; ++y)
        for (int xx = 0; xx < 8; ++xx) {
          const bool in = y >= r->box.top && y < r->box.bottom && xx >= r->box.left && xx < r->box.right;
          const std::int64_t src = v * 2 + (in ? r->mix.permutation[static_cast<std::size_t>(n)] : n);
          REQUIRE(got[static_cast<std::size_t>((((v * 2 + n) * 2 + 1) * 8 + y) * 8 + xx)] ==
                  orig[static_cast<std::size_t>(((src * 2 + 1) * 8 + y) * 8 + xx)]);
        }
  tensor odd = tensor::zeros({5, 1, 4, 4}, dtype::f32, layout::nhwc);
  CHECK_THROWS_WITH(train::cutmix(odd, 1.0, 1.0, rng, 3), Catch::Contains("is not 3 equal views"));
}

TEST_CASE("superclass maps and the human confusion matrix load from the shipped CSVs", "[train][superclass]") {
  const auto m = train::read_superclass_csv(std::filesystem::path(GRCNN_SOURCE_DIR) / "data/imagenet/superclasses.csv");
  REQUIRE(m.classes() == 1000);
  REQUIRE(m.count() == 11);
  std::vector<int> sizes(11, 0);
  for (auto s : m.of_class) ++sizes[static_cast<std::size_t>(s)];
  CHECK(sizes == std::vector<int>{130, 88, 59, 60, 61, 63, 172, 90, 92, 117, 68});  // the spec's counts
  CHECK(m.names[0] == "Dogs");
  CHECK(m.names[9] == "Implements, containers, misc. objects");
  const auto c = train::read_confusion_csv(std::filesystem::path(GRCNN_SOURCE_DIR) / "data/imagenet/human_superclass_confusion.csv", m);
  REQUIRE(c.size() == 121);
  CHECK(c[0] == Approx(0.994747).epsilon(1e-5));                 // Dogs -> Dogs
  CHECK(c[6 * 11 + 6] == Approx(0.803).margin(0.001));            // Devices -> Devices
  for (int r = 0; r < 11; ++r) CHECK(std::accumulate(c.begin() + r * 11, c.begin() + r * 11 + 11, 0.0) == Approx(1.0));
  // the votes file gives the same matrix once its rows are normalised
  const auto v = train::read_confusion_csv(std::filesystem::path(GRCNN_SOURCE_DIR) / "data/imagenet/human_superclass_votes.csv", m);
  for (std::size_t i = 0; i < c.size(); ++i) CHECK(v[i] == Approx(c[i]).margin(1e-6));
  const auto f = train::read_superclass_csv(std::filesystem::path(GRCNN_SOURCE_DIR) / "data/fashion-mnist/superclasses.csv");
  CHECK(f.of_class == std::vector<std::int64_t>{0, 1, 0, 1, 0, 2, 0, 2, 3, 2});
  // malformed files are named with the line
  const auto dir = std::filesystem::temp_directory_path() / "grcnn_superclass_test";
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
    return dir / name;
  };
  CHECK_THROWS_WITH(train::read_superclass_csv(write("a.csv", "class_index,superclass_index\n0,0\n")),
                    Catch::Contains("no column 'superclass_name'"));
  CHECK_THROWS_WITH(train::read_superclass_csv(write("b.csv", "class_index,superclass_index,superclass_name\n0,0,A\n2,1,B\n")),
                    Catch::Contains("line 3 lists class 2, expected 1"));
  CHECK_THROWS_WITH(train::read_superclass_csv(write("c.csv", "class_index,superclass_index,superclass_name\n0,0,A\n1,0,B\n")),
                    Catch::Contains("superclass 0 is called 'B' here and 'A' before"));
  CHECK_THROWS_WITH(train::read_superclass_csv(write("d.csv", "class_index,superclass_index,superclass_name\n0,x,A\n")),
                    Catch::Contains("superclass_index 'x' is not a non-negative integer"));
  CHECK_THROWS_WITH(train::read_superclass_csv(write("e.csv", "class_index,superclass_index,superclass_name\n0,1,B\n")),
                    Catch::Contains("never 0"));
  CHECK_THROWS_WITH(train::read_confusion_csv(write("f.csv", "true_superclass,Tops\nTops,1\n"), f), Catch::Contains("has 1 superclass columns"));
  CHECK_THROWS_WITH(train::read_superclass_csv(dir / "missing.csv"), Catch::Contains("cannot open"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("the superclass term is the cross-entropy of summed class probabilities, gradient-checked", "[train][superclass]") {
  using R = backends::reference<double>;
  train::superclass_map m{{"a", "b", "c"}, {0, 1, 0, 2, 1, 1}};
  const std::vector<double> confusion{0.8, 0.1, 0.1, 0.2, 0.7, 0.1, 0.0, 0.3, 0.7};
  const std::vector<std::int64_t> labels{0, 4, 3};
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(-2, 2);
  std::vector<double> z(3 * 7);  // one logit column more than the map: left out
  for (auto& e : z) e = u(rng);
  for (const auto target : {train::superclass_target::label, train::superclass_target::human}) {
    const train::superclass_regulariser reg(m, target, 0.5, confusion);
    train::mixup_result mix{0.7, {2, 0, 1}};
    const std::array<const train::mixup_result*, 2> mixes{nullptr, &mix};
    for (const train::mixup_result* mx : mixes) {
      // independent value: -mean_n sum_s t_ns log(sum_{c in s} exp z_nc / sum_{mapped c} exp z_nc)
      const auto t = reg.targets(labels, mx).values<double>();
      auto loss_of = [&](const std::vector<double>& zz) {
        double total = 0;
        for (int n = 0; n < 3; ++n) {
          double all = 0;
          std::vector<double> per(3, 0.0);
          for (int c = 0; c < 6; ++c) {
            per[static_cast<std::size_t>(m.of_class[static_cast<std::size_t>(c)])] += std::exp(zz[static_cast<std::size_t>(n * 7 + c)]);
            all += std::exp(zz[static_cast<std::size_t>(n * 7 + c)]);
          }
          for (int s = 0; s < 3; ++s) total -= t[static_cast<std::size_t>(n * 3 + s)] * std::log(per[static_cast<std::size_t>(s)] / all);
        }
        return total / 3;
      };
      variable x(tensor::from_values(shape{3, 7}, z), true);
      const variable l = reg.loss<R>(x, labels, mx);
      CHECK(l.value().item() == Approx(loss_of(z)).epsilon(1e-12));
      autograd::backward(l);
      const auto g = x.grad().values<double>();
      for (std::size_t i = 0; i < z.size(); ++i) {
        auto zp = z, zm = z;
        zp[i] += 1e-6;
        zm[i] -= 1e-6;
        CHECK(g[i] == Approx((loss_of(zp) - loss_of(zm)) / 2e-6).margin(1e-7));
      }
    }
    // targets: one-hot of the superclass, or the human row; mixed with the partner's
    const auto t = reg.targets({1}).values<double>();
    if (target == train::superclass_target::label)
      CHECK(t == std::vector<double>{0, 1, 0});
    else
      CHECK(t == std::vector<double>{0.2f, 0.7f, 0.1f});
  }
  CHECK_THROWS_WITH(train::superclass_regulariser(m, train::superclass_target::human, 1.0), Catch::Contains("needs a 3x3 confusion"));
  const train::superclass_regulariser reg(m, train::superclass_target::label, 1.0);
  CHECK_THROWS_WITH(reg.targets({6}), Catch::Contains("label 6 outside the map's 6 classes"));
  variable narrow(tensor::zeros({1, 5}, dtype::f64), true);
  CHECK_THROWS_WITH(reg.loss<R>(narrow, {0}), Catch::Contains("5 logits for a map of 6 classes"));
}

TEST_CASE("layers set to evaluation mode keep their BN statistics while the network trains", "[train][staged]") {
  models::grcnn_small<backends::reference<double>> net(10, 1);
  net.to_dtype(dtype::f64);
  CHECK(net.layer_names().size() == 5);
  CHECK_THROWS_WITH(net.set_eval_layers({"layer9"}), Catch::Contains("no top-level layer 'layer9'"));
  net.set_eval_layers({"stem", "stage_2", "stage_3", "head"});
  std::map<std::string, tensor> before;
  for (auto& e : net.state())
    if (!e.is_parameter()) before[e.name] = e.value().clone();
  std::mt19937 rng(4);
  std::normal_distribution<double> nd;
  std::vector<double> xs(2 * 3 * 16 * 16);
  for (auto& v : xs) v = nd(rng);
  net.train();
  net.forward(variable(tensor::from_values(shape{2, 3, 16, 16}, xs)));
  std::size_t changed_in_stage_1 = 0;
  for (auto& e : net.state()) {
    if (e.is_parameter()) continue;
    const bool same = e.value().values<double>() == before[e.name].values<double>();
    INFO(e.name);
    if (e.name.rfind("stage_1.", 0) == 0)
      changed_in_stage_1 += !same;
    else
      CHECK(same);
  }
  CHECK(changed_in_stage_1 >= 6);  // the BNs the layer runs (its unused projection BN has none to update)
}
