// Evaluation against sklearn 1.2 (tests/torch/make_eval_fixtures.py): PLS2 regression as Brain-Score
// fits it, on the feature matrix and in the kernel form, predictions within 1e-8.
#include <catch2/catch.hpp>

#include <grcnn/eval/consistency.hpp>
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
           {28, 0.5, "28_0.5"}, {25, 0.5, "25_0.5"}, {2560, 0.9, "2560_0.9"}}) {
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
