// Evaluation against sklearn 1.2 (tests/torch/make_eval_fixtures.py): PLS2 regression as Brain-Score
// fits it, on the feature matrix and in the kernel form, predictions within 1e-8.
#include <catch2/catch.hpp>

#include <grcnn/eval/pls.hpp>
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
}  // namespace

TEST_CASE("PLS regression predicts as sklearn's PLSRegression(scale=False)", "[eval][pls]") {
  for (const auto& name : cases) {
    INFO(name);
    const auto X = as_matrix(fixtures().at(name + ".x_train")), Y = as_matrix(fixtures().at(name + ".y_train"));
    const auto Xt = as_matrix(fixtures().at(name + ".x_test")), want = as_matrix(fixtures().at(name + ".pred"));
    const int k = static_cast<int>(fixtures().at(name + ".components").values<std::int64_t>()[0]);
    eval::pls_regression pls({.components = k});
    pls.fit(X, Y);
    CHECK(rel(pls.predict(Xt), want) < 1e-8);
    std::vector<int> iters;
    for (auto v : fixtures().at(name + ".n_iter").values<std::int64_t>()) iters.push_back(static_cast<int>(v));
    CHECK(pls.n_iter() == iters);
  }
}

TEST_CASE("kernel PLS gives sklearn's predictions from the centred kernels", "[eval][pls]") {
  for (const auto& name : cases) {
    INFO(name);
    const tensor xt = fixtures().at(name + ".x_train"), xs = fixtures().at(name + ".x_test");
    const auto Y = as_matrix(fixtures().at(name + ".y_train")), want = as_matrix(fixtures().at(name + ".pred"));
    const int k = static_cast<int>(fixtures().at(name + ".components").values<std::int64_t>()[0]);
    const auto a = xt.values<double>(), b = xs.values<double>();
    eval::matrix K, Kt;
    eval::centred_kernels(a.data(), xt.dim(0), xt.dim(1), b.data(), xs.dim(0), K, Kt, 64);  // several feature blocks
    eval::kernel_pls pls({.components = k});
    pls.fit(K, Y);
    CHECK(rel(pls.predict(Kt), want) < 1e-8);
    std::vector<int> iters;
    for (auto v : fixtures().at(name + ".n_iter").values<std::int64_t>()) iters.push_back(static_cast<int>(v));
    CHECK(pls.n_iter() == iters);
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
