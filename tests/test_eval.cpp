// Evaluation against sklearn 1.2 (tests/torch/make_eval_fixtures.py): PLS2 regression as Brain-Score
// fits it, on the feature matrix and in the kernel form, predictions within 1e-8.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include <netcdf.h>

#include <grcnn/backends/default.hpp>
#include <grcnn/data/screen.hpp>
#include <grcnn/data/stimulus_set.hpp>

#include <grcnn/eval/behavior.hpp>
#include <grcnn/eval/commitment.hpp>
#include <grcnn/eval/consistency.hpp>
#include <grcnn/eval/logistic.hpp>
#include <grcnn/eval/neuroid_assembly.hpp>
#include <grcnn/eval/pca.hpp>
#include <grcnn/eval/predictivity.hpp>
#include <grcnn/eval/pls.hpp>
#include <grcnn/eval/ridge.hpp>
#include <grcnn/eval/similarity.hpp>
#include <grcnn/io/safetensors.hpp>

using namespace grcnn;

namespace {
const io::tensor_dict& fixtures() {
  static const io::tensor_dict d = io::load_safetensors("eval_fixtures.safetensors");
  return d;
}
eval::matrix as_matrix(const tensor& t) {
  const auto v = t.values<double>();
  const auto r = t.dim(0), c = t.rank() > 1 ? t.dim(1) : 1;
  eval::matrix m(r, c);
  for (std::int64_t i = 0; i < r; ++i)
    for (std::int64_t j = 0; j < c; ++j) m(i, j) = v[static_cast<std::size_t>(i * c + j)];
  return m;
}
double rel(const eval::matrix& a, const eval::matrix& b) { return (a - b).cwiseAbs().maxCoeff() / b.cwiseAbs().maxCoeff(); }
const std::vector<std::string> cases{"tall", "wide", "single_target", "noise", "brainscore_like"};

// One regression case of the fixtures: features, targets, and the centred kernels (built over feature
// blocks of `block`, so several blocks are summed).
struct regression_case {
  eval::matrix X, Y, Xt, K, Kt;
  std::int64_t samples = 0, features = 0;
  int components = 0;
  regression_case(const std::string& name, std::int64_t block) {
    const tensor xt = fixtures().at(name + ".x_train"), xs = fixtures().at(name + ".x_test");
    X = as_matrix(xt), Xt = as_matrix(xs), Y = as_matrix(fixtures().at(name + ".y_train"));
    samples = xt.dim(0), features = xt.dim(1);
    components = static_cast<int>(fixtures().at(name + ".components").values<std::int64_t>()[0]);
    const auto a = xt.values<double>(), b = xs.values<double>();
    eval::centred_kernels(a.data(), xt.dim(0), xt.dim(1), b.data(), xs.dim(0), K, Kt, block);
  }
  eval::matrix want(const std::string& name, const std::string& key) const { return as_matrix(fixtures().at(name + "." + key)); }
};
std::vector<std::int64_t> flat(const std::vector<eval::split>& splits, bool train) {
  std::vector<std::int64_t> r;
  for (const auto& s : splits) r.insert(r.end(), (train ? s.train : s.test).begin(), (train ? s.train : s.test).end());
  return r;
}
std::vector<int> iterations(const std::string& name) {
  std::vector<int> iters;
  for (auto v : fixtures().at(name + ".n_iter").values<std::int64_t>()) iters.push_back(static_cast<int>(v));
  return iters;
}
}  // namespace

TEST_CASE("PLS regression predicts as sklearn's PLSRegression(scale=False)", "[eval][pls]") {
  for (const auto& name : cases) {
    INFO(name);
    const regression_case c(name, 64);
    eval::pls_regression pls({.components = c.components});
    pls.fit(c.X, c.Y);
    CHECK(rel(pls.predict(c.Xt), c.want(name, "pred")) < 1e-8);
    CHECK(pls.n_iter() == iterations(name));
  }
}

TEST_CASE("kernel PLS gives sklearn's predictions from the centred kernels", "[eval][pls]") {
  for (const auto& name : cases) {
    INFO(name);
    const regression_case c(name, 64);  // several feature blocks
    eval::kernel_pls pls({.components = c.components});
    pls.fit(c.K, c.Y);
    CHECK(rel(pls.predict(c.Kt), c.want(name, "pred")) < 1e-8);
    CHECK(pls.n_iter() == iterations(name));
  }
}

TEST_CASE("PLS refuses inputs that do not fit", "[eval][pls]") {
  eval::pls_regression pls({.components = 3});
  CHECK_THROWS_WITH(pls.predict(eval::matrix::Zero(2, 2)), Catch::Contains("before fit"));
  CHECK_THROWS_WITH(pls.fit(eval::matrix::Random(5, 4), eval::matrix::Random(4, 2)), Catch::Contains("5 samples but 4 rows"));
  CHECK_THROWS_WITH(pls.fit(eval::matrix::Random(5, 2), eval::matrix::Random(5, 2)), Catch::Contains("3 components for 2 features"));
  pls.fit(eval::matrix::Random(6, 4), eval::matrix::Random(6, 2));
  CHECK_THROWS_WITH(pls.predict(eval::matrix::Zero(2, 5)), Catch::Contains("fitted on 4 features"));
  eval::kernel_pls kp({.components = 2});
  CHECK_THROWS_WITH(kp.fit(eval::matrix::Zero(4, 3), eval::matrix::Zero(4, 1)), Catch::Contains("square"));
}

TEST_CASE("shuffle_split replays sklearn's ShuffleSplit(random_state=1)", "[eval][splits]") {
  for (const auto& [n, train, key] : std::vector<std::tuple<std::int64_t, double, std::string>>{
           {28, 0.5, "28_0.5"}, {25, 0.5, "25_0.5"}, {2560, 0.9, "2560_0.9"}, {3200, 0.7, "3200_0.7"}}) {
    INFO(key);
    const auto splits = eval::shuffle_split(n, 10, train, 1);
    const auto tr = fixtures().at("shuffle." + key + ".train").values<std::int64_t>();
    const auto te = fixtures().at("shuffle." + key + ".test").values<std::int64_t>();
    REQUIRE(splits.size() == 10);
    std::vector<std::int64_t> got_tr, got_te;
    for (const auto& s : splits) {
      got_tr.insert(got_tr.end(), s.train.begin(), s.train.end());
      got_te.insert(got_te.end(), s.test.begin(), s.test.end());
    }
    CHECK(got_tr == tr);
    CHECK(got_te == te);
  }
  CHECK_THROWS_WITH(eval::shuffle_split(10, 10, 1.5, 1), Catch::Contains("0 < train_size < 1"));
  const auto held_out = eval::shuffle_split(135, 10, eval::split_fraction::test(0.9), 1);
  CHECK(flat(held_out, true) == fixtures().at("shuffle.135_test0.9.train").values<std::int64_t>());
  CHECK(flat(held_out, false) == fixtures().at("shuffle.135_test0.9.test").values<std::int64_t>());
}

TEST_CASE("the split-half ceiling equals Brain-Score's algorithm", "[eval][ceiling]") {
  const tensor resp = fixtures().at("ceiling.responses");
  const auto v = resp.values<double>();
  const auto R = resp.dim(0), S = resp.dim(1), N = resp.dim(2);
  std::vector<eval::matrix> reps;
  for (std::int64_t r = 0; r < R; ++r) {
    eval::matrix m(S, N);
    for (std::int64_t s = 0; s < S; ++s)
      for (std::int64_t j = 0; j < N; ++j) m(s, j) = v[static_cast<std::size_t>((r * S + s) * N + j)];
    reps.push_back(m);
  }
  const auto c = eval::split_half_ceiling(reps);
  const auto want = fixtures().at("ceiling.per_split").values<double>();
  REQUIRE(c.per_split.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) CHECK(c.per_split[i] == Approx(want[i]).epsilon(1e-12));
  CHECK(c.ceiling == Approx(fixtures().at("ceiling.value").values<double>()[0]).epsilon(1e-12));
  // Brain-Score's synthetic case: 10 stimuli x 10 neuroids x 5 identical repetitions give a ceiling of 1.
  const eval::matrix same = eval::matrix::Random(10, 10);
  CHECK(eval::split_half_ceiling(std::vector<eval::matrix>(5, same)).ceiling == Approx(1.0).epsilon(1e-12));
  CHECK_THROWS_WITH(eval::split_half_ceiling({same}), Catch::Contains("at least 2 repetitions"));
}

TEST_CASE("Pearson, median and the ceiled-score conventions", "[eval]") {
  eval::matrix a(4, 3), b(4, 3);
  a << 1, 2, 5, 2, 2, 1, 3, 2, 0, 4, 2, 2;
  b << 2, 1, 1, 4, 3, 2, 6, 5, 3, 8, 7, 4;
  const auto r = eval::pearson_columns(a, b);
  CHECK(r(0) == Approx(1.0));
  CHECK(std::isnan(r(1)));  // a constant column
  CHECK(r(2) == Approx(-0.5976143046671968).epsilon(1e-12));  // scipy.stats.pearsonr([5,1,0,2],[1,2,3,4])
  CHECK(eval::median_skipna(r) == Approx((1.0 - 0.5976143046671968) / 2));
  // AlexNet FreemanZiemba V1 (spec 1.4): raw .4028, ceiling .8737 -> (r/c)^2 = .2126.
  CHECK(eval::ceiled_score(0.4028, 0.8737) == Approx(0.2125).margin(5e-4));
  CHECK(eval::ceiled_score(0.4028, 0.8737, eval::ceiling_convention::explained_variance) == Approx(0.4028 * 0.4028 / 0.8737));
}

TEST_CASE("ridge and least squares predict as sklearn's Ridge and LinearRegression", "[eval][ridge]") {
  for (const auto& name : cases) {
    INFO(name);
    const regression_case c(name, 128);
    for (const auto& [alpha, key] : std::vector<std::pair<double, std::string>>{{1.0, "ridge"}, {100.0, "ridge_100"}, {0.0, "linear"}}) {
      INFO(key);
      // Least squares is unique only with fewer features than samples; with more, centring leaves a
      // singular value at rounding level (~1e-15 of the largest) that sklearn's lstsq cutoff may keep,
      // so its fit depends on rounding. There ours is the minimum-norm solution (numpy's pinv below).
      if (alpha == 0 && c.features >= c.samples) continue;
      eval::ridge_regression r(alpha);
      r.fit(c.X, c.Y);
      CHECK(rel(r.predict(c.Xt), c.want(name, key)) < 1e-8);
      eval::kernel_ridge kr(alpha);
      kr.fit(c.K, c.Y);
      CHECK(rel(kr.predict(c.Kt), c.want(name, key)) < 1e-8);
    }
    INFO("minimum-norm least squares");
    eval::ridge_regression r(0.0);
    r.fit(c.X, c.Y);
    CHECK(rel(r.predict(c.Xt), c.want(name, "linear_min_norm")) < 1e-8);
    eval::kernel_ridge kr(0.0);
    kr.fit(c.K, c.Y);
    CHECK(rel(kr.predict(c.Kt), c.want(name, "linear_min_norm")) < 1e-8);
  }
  CHECK_THROWS_WITH(eval::ridge_regression(-1), Catch::Contains("non-negative"));
  CHECK_THROWS_WITH(eval::kernel_ridge(1).predict(eval::matrix::Zero(1, 1)), Catch::Contains("before fit"));
}

TEST_CASE("RSA and linear CKA equal numpy/scipy", "[eval][similarity]") {
  const auto F = as_matrix(fixtures().at("sim.features")), N = as_matrix(fixtures().at("sim.neural"));
  const auto rn = eval::rdm(N);
  CHECK(rel(rn, as_matrix(fixtures().at("sim.rdm_neural"))) < 1e-12);
  CHECK(eval::rsa(eval::rdm(F), rn) == Approx(fixtures().at("sim.rsa").values<double>()[0]).epsilon(1e-12));
  const auto want = fixtures().at("sim.cka").values<double>();
  const eval::matrix K = F * F.transpose(), L = N * N.transpose();
  CHECK(eval::cka(K, L) == Approx(want[0]).epsilon(1e-10));
  CHECK(eval::cka(K, L, true) == Approx(want[1]).epsilon(1e-10));
  CHECK(eval::cka(K, K) == Approx(1.0).epsilon(1e-12));
  // The centred kernels of pls.hpp serve CKA too: centring does not change either estimator.
  const auto f = fixtures().at("sim.features").values<double>();
  eval::matrix Kc, unused;
  eval::centred_kernels(f.data(), 20, 300, f.data(), 0, Kc, unused, 64);
  CHECK(eval::cka(Kc, L) == Approx(want[0]).epsilon(1e-10));
  CHECK(eval::cka(Kc, L, true) == Approx(want[1]).epsilon(1e-10));
  CHECK_THROWS_WITH(eval::cka(K, eval::matrix::Zero(3, 3)), Catch::Contains("one size"));
  CHECK_THROWS_WITH(eval::rsa(rn, eval::matrix::Zero(4, 4)), Catch::Contains("one size"));
}

namespace {
std::filesystem::path hvm_dir() { return std::filesystem::path(GRCNN_SOURCE_DIR) / "data/hvm-mini"; }
}  // namespace

TEST_CASE("stratified_shuffle_split replays sklearn's StratifiedShuffleSplit(random_state=1)", "[eval][splits]") {
  for (const std::string name : {"hvm", "abc", "uneven"}) {
    INFO(name);
    const auto labels = fixtures().at("strat." + name + ".labels").values<std::int64_t>();
    const auto splits = eval::stratified_shuffle_split(labels, 10, 0.9, 1);
    REQUIRE(splits.size() == 10);
    CHECK(flat(splits, true) == fixtures().at("strat." + name + ".train").values<std::int64_t>());
    CHECK(flat(splits, false) == fixtures().at("strat." + name + ".test").values<std::int64_t>());
    const auto held_out = eval::stratified_shuffle_split(labels, 10, eval::split_fraction::test(0.9), 1);
    CHECK(flat(held_out, true) == fixtures().at("strat." + name + ".test0.9.train").values<std::int64_t>());
    CHECK(flat(held_out, false) == fixtures().at("strat." + name + ".test0.9.test").values<std::int64_t>());
  }
  CHECK(eval::label_codes({"b", "a", "c", "a"}) == std::vector<std::int64_t>{1, 0, 2, 0});
  CHECK_THROWS_WITH(eval::stratified_shuffle_split({0, 0, 1, 2, 2}, 2, 0.5, 1), Catch::Contains("class 1 has only 1 member"));
  CHECK_THROWS_WITH(eval::stratified_shuffle_split({0, 0, 1, 1, 2, 2, 3, 3}, 2, 0.9, 1), Catch::Contains("cannot hold all 4 classes"));
}

TEST_CASE("split files round-trip by stimulus id and reject unknown ids", "[eval][splits]") {
  const std::vector<std::string> ids{"s0", "s1", "s2", "s3", "s4"};
  const auto splits = eval::shuffle_split(5, 3, 0.6, 4);
  const auto path = std::filesystem::temp_directory_path() / "grcnn_test_splits.json";
  eval::write_split_file(path, splits, ids);
  const auto back = eval::read_split_file(path, ids);
  CHECK(flat(back, true) == flat(splits, true));
  CHECK(flat(back, false) == flat(splits, false));
  CHECK_THROWS_WITH(eval::read_split_file(path, {"s0", "s1"}), Catch::Contains("which the data do not have"));
  std::ofstream(path) << R"({"splits": [{"train": ["s0", "s0"], "test": ["s1"]}]})";
  CHECK_THROWS_WITH(eval::read_split_file(path, ids), Catch::Contains("twice"));
  std::ofstream(path) << "{not json";
  CHECK_THROWS_WITH(eval::read_split_file(path, ids), Catch::Contains("not valid JSON"));
  std::ofstream(path) << R"({"folds": []})";
  CHECK_THROWS_WITH(eval::read_split_file(path, ids), Catch::Contains("expected {\"splits\""));
  std::filesystem::remove(path);
}

TEST_CASE("cross-validated PLS scores as Brain-Score's CrossRegressedCorrelation", "[eval][predictivity]") {
  const tensor x = fixtures().at("cv.features");
  const eval::matrix Y = as_matrix(fixtures().at("cv.neural"));
  const auto splits = eval::stratified_shuffle_split(fixtures().at("cv.objects").values<std::int64_t>(), 10, 0.9, 1);
  const auto xs = x.values<double>();
  const auto r = eval::score_features(xs.data(), x.dim(0), x.dim(1), Y, splits);
  const auto want = fixtures().at("cv.per_split").values<double>();
  REQUIRE(r.per_split.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) CHECK(r.per_split[i] == Approx(want[i]).margin(1e-8));
  const auto score = fixtures().at("cv.score").values<double>();
  CHECK(r.score == Approx(score[0]).margin(1e-9));
  CHECK(r.error == Approx(score[1]).margin(1e-9));
  CHECK(r.per_neuroid.rows() == 10);
  CHECK(r.per_neuroid.cols() == Y.cols());
  // Float features (as activations arrive) give the same score to float precision.
  std::vector<float> xf(xs.begin(), xs.end());
  CHECK(eval::score_features(xf.data(), x.dim(0), x.dim(1), Y, splits).score == Approx(score[0]).margin(1e-5));
  // Ridge and least squares through the same loop equal the feature-form fits split by split.
  for (const auto kind : {eval::metric_kind::ridge, eval::metric_kind::linear}) {
    const auto rr = eval::score_features(xs.data(), x.dim(0), x.dim(1), Y, splits, {.kind = kind});
    const eval::matrix X = as_matrix(x);
    auto rows = [](const eval::matrix& m, const std::vector<std::int64_t>& idx) {
      eval::matrix o(static_cast<Eigen::Index>(idx.size()), m.cols());
      for (std::size_t i = 0; i < idx.size(); ++i) o.row(static_cast<Eigen::Index>(i)) = m.row(idx[i]);
      return o;
    };
    eval::ridge_regression fit(kind == eval::metric_kind::ridge ? 1.0 : 0.0);
    fit.fit(rows(X, splits[3].train), rows(Y, splits[3].train));
    const eval::matrix pred = fit.predict(rows(X, splits[3].test));
    CHECK(rr.per_split[3] == Approx(eval::median_skipna(eval::pearson_columns(pred, rows(Y, splits[3].test)))).margin(1e-8));
  }
}

TEST_CASE("Brain-Score's synthetic self-prediction scores 1", "[eval][predictivity]") {
  // BS1 tests/test_metrics/test_regression.py test_small: 30 stimuli x 25 neuroids, values
  // arange(750) + N(0, 1), objects a, b, c repeating; the data predict themselves.
  std::mt19937_64 g(11);
  std::normal_distribution<double> noise;
  eval::matrix Y(30, 25);
  for (Eigen::Index i = 0; i < 30; ++i)
    for (Eigen::Index j = 0; j < 25; ++j) Y(i, j) = static_cast<double>(i * 25 + j) + noise(g);
  std::vector<std::int64_t> objects;
  for (int i = 0; i < 30; ++i) objects.push_back(i % 3);
  const auto splits = eval::stratified_shuffle_split(objects, 10, 0.9, 1);
  const eval::matrix Yr = Y;  // column-major; the features want rows
  std::vector<double> rows_major(750);
  for (Eigen::Index i = 0; i < 30; ++i)
    for (Eigen::Index j = 0; j < 25; ++j) rows_major[static_cast<std::size_t>(i * 25 + j)] = Yr(i, j);
  const auto r = eval::score_features(rows_major.data(), 30, 25, Y, splits);
  CHECK(r.score == Approx(1.0).margin(1e-5));
}

TEST_CASE("RSA and CKA through the split loop equal the direct formulas", "[eval][similarity]") {
  const eval::matrix F = as_matrix(fixtures().at("sim.features")), N = as_matrix(fixtures().at("sim.neural"));
  std::vector<double> rows_major(static_cast<std::size_t>(F.size()));
  for (Eigen::Index i = 0; i < F.rows(); ++i)
    for (Eigen::Index j = 0; j < F.cols(); ++j) rows_major[static_cast<std::size_t>(i * F.cols() + j)] = F(i, j);
  const std::vector<eval::split> all{{{0}, [] {
                                        std::vector<std::int64_t> v(20);
                                        for (int i = 0; i < 20; ++i) v[static_cast<std::size_t>(i)] = i;
                                        return v;
                                      }()}};
  const auto rsa = eval::score_features(rows_major.data(), 20, 300, N, all, {.kind = eval::metric_kind::rsa});
  CHECK(rsa.score == Approx(fixtures().at("sim.rsa").values<double>()[0]).margin(1e-10));
  const auto cka = fixtures().at("sim.cka").values<double>();
  CHECK(eval::score_features(rows_major.data(), 20, 300, N, all, {.kind = eval::metric_kind::cka, .unbiased_cka = false}).score ==
        Approx(cka[0]).margin(1e-10));
  CHECK(eval::score_features(rows_major.data(), 20, 300, N, all, {.kind = eval::metric_kind::cka}).score ==
        Approx(cka[1]).margin(1e-10));
  const auto gram = eval::feature_gram(rows_major.data(), 20, 300);
  CHECK_THROWS_WITH(eval::score_from_gram(gram, N, all, {.kind = eval::metric_kind::rsa}), Catch::Contains("row-centred"));
}

TEST_CASE("hvm-mini: the netCDF assembly, its regions and Brain-Score's ceilings", "[eval][assembly]") {
  const auto a = eval::read_neuroid_assembly(hvm_dir() / "majaj2015_subset.nc");
  CHECK(a.name == "dicarlo.Majaj2015");
  CHECK(a.stimulus_set == "dicarlo.hvm");
  CHECK(a.presentations() == 700);
  CHECK(a.neuroids() == 296);
  CHECK(a.time_bins() == 1);
  CHECK(a.time_bin_start == std::vector<std::int64_t>{70});
  CHECK(a.time_bin_end == std::vector<std::int64_t>{170});
  CHECK(a.neuroid_text.count("animal") == 1);
  const auto erroneous = eval::read_id_list(hvm_dir() / "erroneous_neuroids.txt");
  CHECK(erroneous.size() == 40);
  const auto clean = eval::drop_neuroids(a, erroneous);
  for (const std::string region : {"V4", "IT"}) {
    INFO(region);
    const auto r = eval::select_region(clean, region);
    CHECK(r.neuroids() == (region == "V4" ? 88 : 168));
    const auto means = eval::average_repetitions(r);
    CHECK(means.stimulus_id.size() == 25);
    CHECK(std::is_sorted(means.stimulus_id.begin(), means.stimulus_id.end()));
    CHECK(rel(means.values, as_matrix(fixtures().at("hvm." + region + ".means"))) < 1e-12);
    const auto reps = eval::repetition_matrices(r);
    CHECK(reps.size() == 28);
    const auto c = eval::split_half_ceiling(reps);
    const auto want = fixtures().at("hvm." + region + ".per_split").values<double>();
    for (std::size_t i = 0; i < want.size(); ++i) CHECK(c.per_split[i] == Approx(want[i]).margin(1e-12));
    CHECK(c.ceiling == Approx(fixtures().at("hvm." + region + ".ceiling").values<double>()[0]).margin(1e-12));
    CHECK(eval::split_half_ceiling(r).ceiling == Approx(c.ceiling).margin(1e-12));  // straight from the presentations
  }
  // Unequal repetitions (two presentations missing): the presentation form still equals Brain-Score's.
  {
    const auto v4 = eval::select_region(clean, "V4");
    auto partial = v4;
    partial.stimulus_id.clear(), partial.repetition.clear();
    partial.responses[0].resize(v4.presentations() - 2, v4.neuroids());
    Eigen::Index k = 0;
    for (std::int64_t p = 0; p < v4.presentations(); ++p) {
      if (p == 5 || p == 40) continue;
      partial.stimulus_id.push_back(v4.stimulus_id[static_cast<std::size_t>(p)]);
      partial.repetition.push_back(v4.repetition[static_cast<std::size_t>(p)]);
      partial.responses[0].row(k++) = v4.responses[0].row(p);
    }
    CHECK_THROWS_WITH(eval::repetition_matrices(partial), Catch::Contains("is missing from repetition"));
    CHECK(eval::split_half_ceiling(partial).ceiling ==
          Approx(fixtures().at("hvm.V4.incomplete.ceiling").values<double>()[0]).margin(1e-12));
  }
  CHECK(eval::select_region(a, "V4").neuroids() == 128);
  CHECK_THROWS_WITH(eval::select_region(a, "V1"), Catch::Contains("no neuroid in region 'V1' (regions: IT, V4)"));
  CHECK_THROWS_WITH(eval::read_neuroid_assembly(hvm_dir() / "missing.nc"), Catch::Contains("no such file"));
  CHECK_THROWS_WITH(eval::read_neuroid_assembly(hvm_dir() / "majaj2015_subset.nc", "responses"),
                    Catch::Contains("no variable 'responses'"));
  CHECK_THROWS_WITH(eval::read_neuroid_assembly(hvm_dir() / "README.md"), Catch::Contains("cannot open"));
  CHECK_THROWS_WITH(eval::mean_over_time(a, 200, 300), Catch::Contains("no time bin inside [200, 300]"));
  // A repetition missing for one stimulus is refused by the ceiling (it needs complete repetitions).
  auto broken = a;
  broken.repetition[5] = broken.repetition[6] == 0 ? 1 : 0;
  broken.stimulus_id[5] = broken.stimulus_id[6];
  CHECK_THROWS(eval::repetition_matrices(broken));
}

TEST_CASE("stimuli are placed on screen and resized as Brain-Score shows them", "[eval][screen]") {
  std::vector<std::filesystem::path> images;
  for (const auto& e : std::filesystem::directory_iterator(hvm_dir() / "images"))
    if (e.path().extension() == ".png") images.push_back(e.path());
  std::sort(images.begin(), images.end());
  for (int k = 0; k < 2; ++k) {
    const auto img = data::decode_image(images[static_cast<std::size_t>(k)]);
    for (const std::string deg : {"14", "6", "8", "4.3"}) {
      INFO(images[static_cast<std::size_t>(k)].filename().string() << " at " << deg << " degrees");
      const std::string key = "screen." + std::to_string(k) + "." + deg;
      const auto placed = data::place_on_screen(img, std::stod(deg), 8);
      const auto size = fixtures().at(key + ".size").values<std::int64_t>();
      CHECK(placed.width == size[0]);
      CHECK(placed.height == size[1]);
      const auto gray = std::count(placed.pixels.begin(), placed.pixels.end(), data::screen_gray);
      CHECK(static_cast<double>(gray) / static_cast<double>(placed.pixels.size()) ==
            Approx(fixtures().at(key + ".gray").values<double>()[0]).margin(1e-12));
      tensor x = tensor::empty({1, 3, 224, 224});
      data::write_normalized(data::present_stimulus(img, {.stimulus_degrees = std::stod(deg)}), x, 0);
      const auto got = x.values<float>();
      const auto want = fixtures().at(key).values<float>();
      REQUIRE(got.size() == want.size());
      float worst = 0;
      for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
      CHECK(worst <= 1e-6f);
    }
  }
  data::rgb_image tiny{.width = 2, .height = 2, .pixels = std::vector<std::uint8_t>(12, 7)};
  CHECK_THROWS_WITH(data::place_on_screen(tiny, 8, 0), Catch::Contains("degrees must be positive"));
  CHECK_THROWS_WITH(data::place_on_screen(tiny, 100, 8), Catch::Contains("vanishes"));
}

TEST_CASE("the hvm-mini stimulus csv and image lists resolve every image", "[eval][stimuli]") {
  const auto s = data::read_stimulus_csv(hvm_dir() / "images/test_images.csv", hvm_dir() / "images");
  CHECK(s.size() == 25);
  CHECK(s.column("object_name").size() == 25);
  CHECK(std::filesystem::exists(s.paths[3]));
  std::set<std::string> objects(s.column("object_name").begin(), s.column("object_name").end());
  CHECK(objects.size() == 21);
  CHECK_THROWS_WITH(s.column("texture_type"), Catch::Contains("no column 'texture_type'"));
  const auto dir = std::filesystem::temp_directory_path() / "grcnn_stimuli_test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "bad.csv") << "image_id,object_name\nnot_there,car\n";
  CHECK_THROWS_WITH(data::read_stimulus_csv(dir / "bad.csv", dir), Catch::Contains("no image file for stimulus 'not_there'"));
  std::ofstream(dir / "short.csv") << "image_id,object_name\nx\n";
  CHECK_THROWS_WITH(data::read_stimulus_csv(dir / "short.csv", dir), Catch::Contains("short.csv:2: 1 fields"));
  std::ofstream(dir / "list.txt") << s.paths[0].string() << "\n" << s.paths[1].string() << "\n";
  const auto l = data::read_image_list(dir / "list.txt");
  CHECK(l.ids == std::vector<std::string>{s.ids[0], s.ids[1]});
  std::filesystem::remove_all(dir);
}

TEST_CASE("the behavioural readout fits as sklearn's multinomial LogisticRegression(C=1e-3)", "[eval][behavior]") {
  const eval::matrix X = as_matrix(fixtures().at("lr.x")), Xt = as_matrix(fixtures().at("lr.x_test"));
  const auto y = fixtures().at("lr.y").values<std::int64_t>();
  eval::logistic_regression lr;
  lr.fit(X, y, 4);
  CHECK(rel(lr.predict_proba(Xt), as_matrix(fixtures().at("lr.proba"))) < 1e-6);
  CHECK_THROWS_WITH(lr.fit(X, y, 3), Catch::Contains("label 3 outside [0, 3)"));
  CHECK_THROWS_WITH(lr.predict_proba(Xt.leftCols(5)), Catch::Contains("fitted on 20 features"));
}

TEST_CASE("i2n: normalised d', consistency and split-half ceiling as the spec", "[eval][behavior]") {
  const eval::matrix P = as_matrix(fixtures().at("i2n.probabilities"));
  const auto truth = fixtures().at("i2n.truth").values<std::int64_t>();
  const auto raw = fixtures().at("i2n.trials").values<std::int64_t>();
  std::vector<eval::afc_trial> trials;
  for (std::size_t k = 0; k < raw.size(); k += 4) trials.push_back({raw[k], raw[k + 1], raw[k + 2], raw[k + 3]});
  auto same = [](const eval::matrix& a, const eval::matrix& b) {
    for (Eigen::Index i = 0; i < a.size(); ++i) {
      if (std::isnan(b(i))) {
        if (!std::isnan(a(i))) return false;
      } else if (std::abs(a(i) - b(i)) > 1e-9) {
        return false;
      }
    }
    return true;
  };
  const auto model = eval::normalized_dprimes(eval::model_response_matrix(P, truth), truth);
  CHECK(same(model, as_matrix(fixtures().at("i2n.model_dprime"))));
  CHECK(same(eval::normalized_dprimes(eval::human_response_matrix(trials, truth, P.cols()), truth),
             as_matrix(fixtures().at("i2n.human_dprime"))));
  const auto r = eval::i2n_score(P, truth, trials);
  const auto mr = fixtures().at("i2n.model_r").values<double>(), hr = fixtures().at("i2n.half_r").values<double>();
  REQUIRE(r.model_r.size() == 2);
  for (std::size_t s = 0; s < 2; ++s) {
    CHECK(r.model_r[s] == Approx(mr[s]).margin(1e-10));
    CHECK(r.half_r[s] == Approx(hr[s]).margin(1e-10));
  }
  CHECK(r.ceiled == Approx(fixtures().at("i2n.ceiled").values<double>()[0]).margin(1e-10));
  CHECK(eval::i2n_consistency(model, model) == Approx(1.0).margin(1e-12));
  // Known answer: observers who choose exactly as the model's 2AFC rates, over many trials, make the
  // model as consistent as the data's own halves allow: ceiled i2n ~ 1.
  const auto rates = eval::model_response_matrix(P, truth);
  std::mt19937_64 g(3);
  std::vector<eval::afc_trial> ideal;
  for (int k = 0; k < 200000; ++k) {
    const auto img = static_cast<std::int64_t>(g() % static_cast<std::uint64_t>(P.rows()));
    auto dis = static_cast<std::int64_t>(g() % static_cast<std::uint64_t>(P.cols() - 1));
    if (dis >= truth[static_cast<std::size_t>(img)]) ++dis;
    const bool wrong = std::uniform_real_distribution<double>(0, 1)(g) < rates(img, dis);
    ideal.push_back({img, truth[static_cast<std::size_t>(img)], dis, wrong ? dis : truth[static_cast<std::size_t>(img)]});
  }
  CHECK(eval::i2n_score(P, truth, ideal).ceiled == Approx(1.0).margin(0.03));
  CHECK_THROWS_WITH(eval::human_response_matrix({{0, 1, 2, 2}}, truth, P.cols()), Catch::Contains("inconsistent trial"));
}

TEST_CASE("PCA projects as sklearn's full-SVD PCA", "[eval][pca]") {
  const tensor fit = fixtures().at("pca.fit"), nw = fixtures().at("pca.new");
  const auto f = fit.values<double>(), n = nw.values<double>();
  eval::pca p;
  p.fit(f.data(), fit.dim(0), fit.dim(1), 10, 64);
  const auto z = p.transform(n.data(), nw.dim(0), nw.dim(1), 64);
  const eval::matrix want = as_matrix(fixtures().at("pca.transform"));
  REQUIRE(z.size() == static_cast<std::size_t>(want.size()));
  double worst = 0;
  for (Eigen::Index i = 0; i < want.rows(); ++i)
    for (Eigen::Index j = 0; j < want.cols(); ++j)
      worst = std::max(worst, std::abs(z[static_cast<std::size_t>(i * want.cols() + j)] - want(i, j)));
  CHECK(worst < 1e-4 * want.cwiseAbs().maxCoeff());
  // Asking for more components than the 30 centred rows span keeps the 29 defined ones.
  p.fit(f.data(), fit.dim(0), fit.dim(1), 1000);
  CHECK(p.components() == 29);
  CHECK_THROWS_WITH(p.transform(n.data(), 1, 100), Catch::Contains("fitted on 200 features"));
}

TEST_CASE("layer commitment scores recorded layers and keeps the best", "[eval][commitment]") {
  // Three stimuli sets of features over 40 stimuli: one carries the responses, one is noise, one a copy
  // of the good one scaled (the same score: the first wins the tie).
  std::mt19937_64 g(5);
  std::normal_distribution<double> z;
  const Eigen::Index S = 40, P = 60, N = 6;
  eval::matrix latent(S, 4), good(S, P), noise(S, P);
  for (Eigen::Index i = 0; i < latent.size(); ++i) latent(i) = z(g);
  for (Eigen::Index i = 0; i < noise.size(); ++i) noise(i) = z(g);
  eval::matrix mix(4, P), w(4, N);
  for (Eigen::Index i = 0; i < mix.size(); ++i) mix(i) = z(g);
  for (Eigen::Index i = 0; i < w.size(); ++i) w(i) = z(g);
  good = latent * mix + 0.3 * noise;
  eval::activation_set a;
  auto add = [&](const std::string& name, const eval::matrix& m) {
    eval::layer_activations l{name, {P}, {}};
    for (Eigen::Index i = 0; i < S; ++i)
      for (Eigen::Index j = 0; j < P; ++j) l.values.push_back(static_cast<float>(m(i, j)));
    a.layers.push_back(l);
  };
  for (Eigen::Index i = 0; i < S; ++i) a.stimulus_ids.push_back("img" + std::to_string(100 + (i * 7) % S));
  add("good", good), add("noise", noise), add("good_scaled", 2.0 * good);
  // The neural target lists the stimuli sorted; the activations are in another order.
  eval::neural_target t;
  t.region = "IT";
  t.ceiling = 0.8;
  t.responses.stimulus_id = a.stimulus_ids;
  std::sort(t.responses.stimulus_id.begin(), t.responses.stimulus_id.end());
  const auto rows = a.rows_of(t.responses.stimulus_id);
  eval::matrix Y(S, N), Xg(S, P);
  for (Eigen::Index i = 0; i < S; ++i) Y.row(i) = (latent * w).row(rows[static_cast<std::size_t>(i)]), Xg.row(i) = good.row(rows[static_cast<std::size_t>(i)]);
  for (Eigen::Index i = 0; i < Y.size(); ++i) Y(i) += 0.5 * z(g);
  t.responses.values = Y;
  t.splits = eval::shuffle_split(S, 10, 0.9, 1);
  eval::scoring_options o;
  o.metric.pls.components = 5;
  std::vector<eval::layer_score> scores;
  for (const auto* name : {"good", "noise", "good_scaled"}) scores.push_back(eval::score_layer(a, name, t, o));
  std::vector<double> xg(static_cast<std::size_t>(S * P));
  for (Eigen::Index i = 0; i < S; ++i)
    for (Eigen::Index j = 0; j < P; ++j) xg[static_cast<std::size_t>(i * P + j)] = static_cast<float>(Xg(i, j));
  CHECK(scores[0].raw.score == Approx(eval::score_features(xg.data(), S, P, Y, t.splits, o.metric).score).margin(1e-6));
  CHECK(scores[0].ceiled == Approx(eval::ceiled_score(scores[0].raw.score, 0.8)));
  CHECK(scores[0].raw.score > 0.6);
  CHECK(scores[1].raw.score < 0.4);
  CHECK(eval::best_layer(scores).layer == "good");
  // With a PCA fitted on the same features, 20 components still carry the signal.
  eval::pca reduce;
  reduce.fit(a.layer("good").values.data(), S, P, 20);
  CHECK(eval::score_layer(a, "good", t, o, &reduce).raw.score > 0.6);
  // 5 components from 36 training stimuli: no warning. More components than features is refused, as
  // sklearn's PLSRegression does, naming the layer, its feature count and the option; more than the
  // training set's rank (35) is scored with a warning naming both.
  CHECK(scores[0].warnings.empty());
  eval::pca narrow;
  narrow.fit(a.layer("good").values.data(), S, P, 4);
  CHECK_THROWS_WITH(eval::score_layer(a, "good", t, o, &narrow),
                    Catch::Contains("layer 'good' has 4 features after PCA, fewer than the 5 PLS components (--components)"));
  eval::scoring_options many = o;
  many.metric.pls.components = 61;
  CHECK_THROWS_WITH(eval::score_layer(a, "noise", t, many), Catch::Contains("layer 'noise' has 60 features, fewer than the 61"));
  many.metric.pls.components = 40;
  const eval::layer_score beyond = eval::score_layer(a, "good", t, many);
  REQUIRE(beyond.warnings.size() == 1);
  CHECK_THAT(beyond.warnings[0], Catch::Contains("40 PLS components exceed the training set's rank (at most 35 from 36"));
  CHECK(std::isfinite(beyond.raw.score));
  CHECK(eval::published_region_map("grcnn55").at("V4") == "layer1");
  CHECK(eval::published_region_map("grcnn55").at("IT") == "layer3.conv_f");
  const auto path = std::filesystem::temp_directory_path() / "grcnn_region_map.json";
  std::ofstream(path) << R"({"V4": "layer1", "IT": 3})";
  CHECK_THROWS_WITH(eval::read_region_map(path), Catch::Contains("region 'IT' must map to a layer name"));
  std::ofstream(path) << R"({"V4": "layer1", "IT": "layer3.conv_f"})";
  CHECK(eval::read_region_map(path).at("IT") == "layer3.conv_f");
  std::filesystem::remove(path);
}

// Brain-Score's average_repetition groups presentations by the tuple of every presentation coordinate but
// 'repetition' (in the assembly's coordinate order) and sorts the groups by that tuple (brainio's
// multi_groupby): with an object coordinate before the id the stimuli come out by object, then id; a
// numeric coordinate sorts by value; "img10" sorts before "img2" as a string.
TEST_CASE("averaged stimuli come out in Brain-Score's order of the presentation coordinates", "[eval][assembly]") {
  eval::neuroid_assembly a;
  a.source = "synthetic";
  a.neuroid_id = {"n0", "n1"};
  a.region = {"IT", "IT"};
  // 4 stimuli x 2 repetitions; the response of neuroid 0 encodes the stimulus, of neuroid 1 the repetition.
  const std::vector<std::string> ids{"img1", "img10", "img2", "img3"}, objects{"bear", "apple", "apple", "bear"};
  const std::vector<double> variation{6, 3, 0, 3};
  Eigen::MatrixXd m(8, 2);
  for (int p = 0; p < 8; ++p) {
    const int i = p % 4, rep = p / 4;
    a.stimulus_id.push_back(ids[static_cast<std::size_t>(i)]);
    a.repetition.push_back(rep);
    a.presentation_text["object_name"].push_back(objects[static_cast<std::size_t>(i)]);
    a.presentation_numbers["variation"].push_back(variation[static_cast<std::size_t>(i)]);
    m(p, 0) = 10.0 * (i + 1) + rep;
    m(p, 1) = rep;
  }
  a.responses = {m};
  const auto order_with = [&](std::vector<std::string> coords) {
    a.presentation_coords = std::move(coords);
    return eval::average_repetitions(a).stimulus_id;
  };
  using names = std::vector<std::string>;
  CHECK(order_with({}) == names{"img1", "img10", "img2", "img3"});  // the id alone: sorted ids
  CHECK(order_with({"stimulus_id", "repetition"}) == names{"img1", "img10", "img2", "img3"});
  CHECK(order_with({"object_name", "stimulus_id", "repetition"}) == names{"img10", "img2", "img1", "img3"});
  CHECK(order_with({"repetition", "variation", "stimulus_id"}) == names{"img2", "img10", "img3", "img1"});
  CHECK(order_with({"variation", "object_name", "stimulus_id"}) == names{"img2", "img10", "img3", "img1"});
  // The rows follow the order; the values are each stimulus's mean over its repetitions.
  a.presentation_coords = {"object_name", "stimulus_id", "repetition"};
  const auto avg = eval::average_repetitions(a);
  CHECK(avg.values(0, 0) == 20.5);  // img10
  CHECK(avg.values(2, 0) == 10.5);  // img1
  // The ceiling's repetition matrices use the same order.
  const auto reps = eval::repetition_matrices(a);
  CHECK(reps[1](0, 0) == 21.0);
  // A coordinate that differs between a stimulus's presentations would split it in Brain-Score: refused.
  a.presentation_numbers["variation"][5] = 99;  // img10's second presentation
  a.presentation_coords = {"stimulus_id", "variation", "repetition"};
  CHECK_THROWS_WITH(eval::average_repetitions(a), Catch::Contains("synthetic: stimulus 'img10' has presentations that "
                                                                  "differ in coordinate 'variation'"));
  a.presentation_coords = {"stimulus_id", "repetition"};  // a coordinate not grouped by is ignored
  CHECK(eval::average_repetitions(a).stimulus_id.size() == 4);
  // brainio never groups NaN with NaN: a stimulus shown twice with a NaN coordinate is refused...
  a.presentation_numbers["variation"] = {6, 3, 0, std::nan(""), 6, 3, 0, std::nan("")};
  a.presentation_coords = {"stimulus_id", "variation", "repetition"};
  CHECK_THROWS_WITH(eval::average_repetitions(a), Catch::Contains("stimulus 'img3' has presentations whose coordinate "
                                                                  "'variation' is NaN"));
  // ... and a coordinate whose length is not the presentations' is an error, not dropped.
  a.presentation_numbers["variation"].pop_back();
  CHECK_THROWS_WITH(eval::average_repetitions(a), Catch::Contains("coordinate 'variation' has 7 values for 8 presentations"));
}

TEST_CASE("netCDF assemblies: any dimension order, char strings, fill values, clear errors", "[eval][assembly]") {
  // A small assembly written with libnetcdf: dims (presentation 4, neuroid 3, time_bin 2), stimulus ids
  // as a char array, a fill value standing for a missing response, a region coordinate.
  const auto path = std::filesystem::temp_directory_path() / "grcnn_test_assembly.nc";
  auto write = [&](bool bad_region) {
    int id, dp, dn, dt, dw, v;
    REQUIRE(nc_create(path.c_str(), NC_CLOBBER | NC_NETCDF4, &id) == NC_NOERR);
    nc_def_dim(id, "presentation", 4, &dp);
    nc_def_dim(id, "neuroid", 3, &dn);
    nc_def_dim(id, "time_bin", 2, &dt);
    nc_def_dim(id, "id_width", 3, &dw);
    int dims3[3] = {dp, dn, dt}, dims_ids[2] = {dp, dw};
    nc_def_var(id, "responses", NC_FLOAT, 3, dims3, &v);
    const float fill = -999.f;
    nc_put_att_float(id, v, "_FillValue", NC_FLOAT, 1, &fill);
    int vs, vr, vn, vg, vb, ve;
    nc_def_var(id, "stimulus_id", NC_CHAR, 2, dims_ids, &vs);
    nc_def_var(id, "repetition", NC_INT64, 1, &dp, &vr);
    nc_def_var(id, "neuroid_id", NC_STRING, 1, &dn, &vn);
    nc_def_var(id, "region", NC_STRING, 1, bad_region ? &dp : &dn, &vg);
    nc_def_var(id, "time_bin_start", NC_INT64, 1, &dt, &vb);
    nc_def_var(id, "time_bin_end", NC_INT64, 1, &dt, &ve);
    nc_enddef(id);
    std::vector<float> data(24);
    for (int i = 0; i < 24; ++i) data[static_cast<std::size_t>(i)] = static_cast<float>(i);
    data[(1 * 3 + 2) * 2 + 1] = fill;  // presentation 1, neuroid 2, bin 1
    nc_put_var_float(id, v, data.data());
    nc_put_var_text(id, vs, "s_bs_as_bs_a");
    const long long reps[4] = {0, 0, 1, 1}, starts[2] = {50, 100}, ends[2] = {100, 150};
    nc_put_var_longlong(id, vr, reps);
    const char* nids[3] = {"n0", "n1", "n2"};
    const char* regs[4] = {"IT", "V4", "IT", "V4"};
    nc_put_var_string(id, vn, nids);
    nc_put_var_string(id, vg, regs);
    nc_put_var_longlong(id, vb, starts);
    nc_put_var_longlong(id, ve, ends);
    nc_close(id);
  };
  write(false);
  const auto a = eval::read_neuroid_assembly(path);
  CHECK(a.name == "responses");
  CHECK(std::find(a.presentation_coords.begin(), a.presentation_coords.end(), "stimulus_id") != a.presentation_coords.end());
  CHECK(a.stimulus_id == std::vector<std::string>{"s_b", "s_a", "s_b", "s_a"});
  CHECK(a.time_bins() == 2);
  CHECK(a.responses[1](0, 1) == 3.0);  // stored (presentation, neuroid, time_bin): 0*6 + 1*2 + 1
  CHECK(std::isnan(a.responses[1](1, 2)));
  const auto early = eval::mean_over_time(a, 40, 100);
  CHECK(early.time_bins() == 1);
  CHECK(early.responses[0](2, 0) == 12.0);
  const auto both = eval::mean_over_time(a, 50, 150);
  CHECK(both.responses[0](0, 0) == 0.5);
  const auto avg = eval::average_repetitions(early);
  CHECK(avg.stimulus_id == std::vector<std::string>{"s_a", "s_b"});
  CHECK(avg.values(0, 0) == Approx((6.0 + 18.0) / 2));
  CHECK_THROWS_WITH(eval::average_repetitions(a), Catch::Contains("has 2 time bins"));
  // A NaN response cannot enter a regression silently.
  const auto late = eval::average_repetitions(eval::mean_over_time(a, 100, 150));
  std::vector<double> x(8, 0.0);
  for (int i = 0; i < 8; ++i) x[static_cast<std::size_t>(i)] = i * i;
  CHECK_THROWS_WITH(eval::score_features(x.data(), 2, 4, late.values, {{{0}, {1}}}), Catch::Contains("is not finite"));
  write(true);
  CHECK_THROWS_WITH(eval::read_neuroid_assembly(path), Catch::Contains("coordinate 'region' must lie along 'neuroid'"));
  std::filesystem::remove(path);
}
