// Tensors, the caching allocator, the tape and the error contract.
#include <catch2/catch.hpp>

#include "support/random.hpp"
#include <grcnn/backends/default.hpp>
#include <grcnn/ops.hpp>

using namespace grcnn;
using autograd::variable;

TEST_CASE("tensors convert between layouts and dtypes in logical order", "[tensor]") {
  std::vector<double> v(2 * 3 * 2 * 2);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i);
  const tensor a = tensor::from_values(shape{2, 3, 2, 2}, v);
  const tensor n = a.to_layout(layout::nhwc);
  CHECK(n.memory_layout() == layout::nhwc);
  CHECK(n.values<double>() == v);
  CHECK(static_cast<const double*>(n.raw())[1] == 4.0);  // (n0, h0, w0, c1) sits next to c0
  CHECK(n.to_layout(layout::plain).values<double>() == v);
  const tensor f = a.to_dtype(dtype::f32);
  CHECK(f.type() == dtype::f32);
  CHECK(f.values<double>() == v);
  CHECK(a.clone().storage_id() != a.storage_id());
  CHECK(a.reshape({6, 4}).storage_id() == a.storage_id());
  CHECK_THROWS_WITH(n.reshape({6, 4}), Catch::Contains("needs a plain tensor"));
  CHECK_THROWS_WITH(a.reshape({5, 5}), Catch::Contains("changes the size"));
  CHECK_THROWS_AS(f.data<double>(), dtype_error);
}

TEST_CASE("bf16 rounds to nearest even and keeps NaN", "[tensor]") {
  CHECK(static_cast<float>(bf16(1.0f)) == 1.0f);
  CHECK(static_cast<float>(bf16(1.0f + 1.0f / 256)) == 1.0f);             // tie goes to even
  CHECK(static_cast<float>(bf16(1.0f + 3.0f / 256)) == 1.0f + 1.0f / 64);  // tie goes to even (up)
  CHECK(std::isnan(static_cast<float>(bf16(std::nanf("")))));
  const tensor t = tensor::from_values(shape{3}, std::vector<float>{0.1f, -2.5f, 3e5f}, dtype::bf16);
  const auto back = t.values<float>();
  CHECK(back[0] == Approx(0.1f).epsilon(4e-3));
  CHECK(back[1] == -2.5f);
}

TEST_CASE("the tape accumulates gradients of a weight used at several steps", "[autograd]") {
  std::mt19937 rng(1);
  variable x(testing::uniform({2, 3, 5, 5}, rng, -1, 1, dtype::f32, layout::nhwc), true);
  variable w(testing::uniform({3, 3, 1, 1}, rng, -1, 1, dtype::f32), true);
  const auto p = ops::conv2d_params::square(1, 0);
  // Shared weight: y = conv(conv(x, w), w)
  const variable y = ops::conv2d(ops::conv2d(x, w, p), w, p);
  const tensor labels = tensor::from_values<std::int64_t>({2}, std::vector<std::int64_t>{0, 2});
  autograd::backward(ops::cross_entropy(ops::global_avg_pool(y), labels));
  const tensor g_shared = w.grad().clone();
  // Same computation with two independent copies of w: the shared gradient is their sum.
  variable w1(w.value().clone(), true), w2(w.value().clone(), true);
  const variable y2 = ops::conv2d(ops::conv2d(x, w1, p), w2, p);
  autograd::backward(ops::cross_entropy(ops::global_avg_pool(y2), labels));
  tensor sum = w1.grad().clone();
  add_inplace(sum, w2.grad());
  CHECK(relative_error(g_shared, sum) < 1e-6);
  CHECK(autograd::current_tape().size() == 0);
}

TEST_CASE("no_grad records nothing; saved tensors are released by backward", "[autograd]") {
  std::mt19937 rng(2);
  variable x(testing::uniform({2, 4}, rng, -1, 1, dtype::f32), true);
  {
    autograd::no_grad_guard ng;
    const variable y = ops::sigmoid(x);
    CHECK(!y.requires_grad());
    CHECK(autograd::current_tape().size() == 0);
  }
  variable y = ops::sigmoid(x);
  CHECK(autograd::current_tape().size() == 1);
  const tensor held = y.value();
  const long before = held.use_count();  // held + y + the tape's saved copy
  autograd::backward(y, tensor::full({2, 4}, 1.0));
  CHECK(held.use_count() == before - 1);
  CHECK(autograd::current_tape().size() == 0);
  const auto yv = held.values<double>(), gv = x.grad().values<double>();
  for (std::size_t i = 0; i < yv.size(); ++i) CHECK(gv[i] == Approx(yv[i] * (1 - yv[i])).epsilon(1e-6));
}

TEST_CASE("a user-defined op joins the tape at run time", "[autograd]") {
  // loss = sum(x^3), written by a user with record_op.
  variable x(tensor::from_values(shape{3}, std::vector<double>{1, -2, 0.5}), true);
  auto v = x.value().values<double>();
  double s = 0;
  for (double e : v) s += e * e * e;
  variable loss = variable::result(tensor::scalar(s, dtype::f64), true);
  autograd::record_op("sum_cubes", {&x}, {&loss}, {x.value()}, nullptr,
                      [](autograd::node& n, std::span<const tensor> og, std::span<tensor> ig) {
                        auto xv = n.saved[0].values<double>();
                        const double g = og[0].item();
                        for (auto& e : xv) e = 3 * e * e * g;
                        ig[0] = tensor::from_values(n.saved[0].dims(), xv);
                      });
  autograd::backward(loss);
  CHECK(x.grad().values<double>() == std::vector<double>{3, 12, 0.75});
}

// An op that declares adds_into may receive its input's gradient so far and add into it (batch norm on the
// GPU does: x feeds several ops in a GRCL); the tape then adds nothing itself. x feeds "times5" (which can
// add), "times2" and "pair" (which takes x twice, so it is never handed x's gradient).
TEST_CASE("an op can add its gradient into its input's gradient so far", "[autograd]") {
  variable x(tensor::from_values(shape{3}, std::vector<double>{1, -2, 0.5}), true);
  auto scaled = [&](const char* name, double k, unsigned adds_into, std::vector<int>* handed) {
    auto v = x.value().values<double>();
    for (auto& e : v) e *= k;
    variable y = variable::result(tensor::from_values(shape{3}, v), true);
    autograd::record_op(name, {&x}, {&y}, {}, nullptr,
                        [k, handed](autograd::node&, std::span<const tensor> og, std::span<tensor> ig) {
                          if (handed) handed->push_back(ig[0].defined());
                          auto g = og[0].values<double>();
                          if (ig[0].defined()) {  // add into the gradient so far, in place
                            double* d = ig[0].data<double>();
                            for (std::size_t i = 0; i < g.size(); ++i) d[i] += k * g[i];
                          } else {
                            for (auto& e : g) e *= k;
                            ig[0] = tensor::from_values(shape{3}, g);
                          }
                        },
                        adds_into);
    return y;
  };
  std::vector<int> handed, handed_pair;
  const variable b = scaled("times5", 5, 1u, &handed);  // recorded first: its backward runs last
  const variable a = scaled("times2", 2, 0u, nullptr);
  variable pair = variable::result(tensor::from_values(shape{3}, x.value().values<double>()), true);
  autograd::record_op("pair", {&x, &x}, {&pair}, {}, nullptr,
                      [&handed_pair](autograd::node&, std::span<const tensor> og, std::span<tensor> ig) {
                        handed_pair.push_back(ig[0].defined() || ig[1].defined());
                        ig[0] = og[0].clone();
                        ig[1] = og[0].clone();
                      },
                      3u);
  const variable s = ops::add(ops::add(a, b), pair);
  autograd::backward(s, tensor::full({3}, 1.0, dtype::f64));
  CHECK(handed == std::vector<int>{1});  // x's gradient so far (from "times2" and "pair") was handed over
  CHECK(handed_pair == std::vector<int>{0});
  CHECK(x.grad().values<double>() == std::vector<double>{9, 9, 9});  // 5 + 2 + 1 + 1
}

TEST_CASE("after warm-up a training step calls neither the system allocator nor oneDNN setup", "[allocator]") {
  std::mt19937 rng(3);
  variable x(testing::uniform({4, 3, 12, 12}, rng, -1, 1, dtype::f32, layout::nhwc));
  variable w(testing::uniform({8, 3, 3, 3}, rng, -0.3, 0.3, dtype::f32), true);
  variable g(tensor::full({8}, 1.0), true), b(tensor::zeros({8}), true);
  variable fw(testing::uniform({5, 8}, rng, -0.3, 0.3, dtype::f32), true), fb(tensor::zeros({5}), true);
  tensor rm = tensor::zeros({8}), rv = tensor::full({8}, 1.0);
  const tensor labels = tensor::from_values<std::int64_t>({4}, std::vector<std::int64_t>{0, 1, 2, 3});
  auto step = [&] {
    const variable h = ops::max_pool2d(ops::batch_norm(ops::conv2d(x, w, ops::conv2d_params::square(1, 1)), g, b, rm, rv,
                                                       {.fuse_relu = true}),
                                       3, 2, 1);
    autograd::backward(ops::cross_entropy(ops::linear(ops::global_avg_pool(h), fw, fb), labels));
    for (variable* p : {&w, &g, &b, &fw, &fb}) p->zero_grad();
  };
  step();
  step();
  const auto before = host_allocator::instance().stats();
  const std::size_t plans = backends::onednn_detail::stats().plans_created;
  for (int i = 0; i < 3; ++i) step();
  const auto after = host_allocator::instance().stats();
  CHECK(backends::onednn_detail::stats().plans_created == plans);  // no primitive is created in the steady state
  INFO("cache hits over 3 steps: " << after.cache_hits - before.cache_hits);
  CHECK(after.system_allocations == before.system_allocations);
  CHECK(after.cache_hits > before.cache_hits);
}

TEST_CASE("shape and dtype errors name the op, the expected and the actual shapes", "[errors]") {
  variable x(tensor::zeros({2, 3, 8, 8}));
  variable w(tensor::zeros({4, 2, 3, 3}));
  CHECK_THROWS_WITH(ops::conv2d(x, w, ops::conv2d_params::square(1, 1)),
                    Catch::Contains("conv2d") && Catch::Contains("[4, 3, kh, kw]") && Catch::Contains("f32[4, 2, 3, 3]"));
  CHECK_THROWS_AS(ops::conv2d(x, w, ops::conv2d_params::square(1, 1)), shape_error);
  variable wd(tensor::zeros({4, 3, 3, 3}, dtype::f64));
  CHECK_THROWS_AS(ops::conv2d(x, wd, ops::conv2d_params::square(1, 1)), dtype_error);
  CHECK_THROWS_WITH(ops::add(x, variable(tensor::zeros({2, 3, 8, 7}))),
                    Catch::Contains("add") && Catch::Contains("[2, 3, 8, 8]") && Catch::Contains("[2, 3, 8, 7]"));
  CHECK_THROWS_WITH(ops::add(x, variable(tensor::zeros({2, 3, 8, 8}, dtype::f32, layout::nhwc))), Catch::Contains("layout"));
  CHECK_THROWS_WITH(ops::linear(variable(tensor::zeros({2, 5})), variable(tensor::zeros({3, 4}))),
                    Catch::Contains("linear") && Catch::Contains("[M, 5]"));
  CHECK_THROWS_WITH(ops::cross_entropy(variable(tensor::zeros({2, 5})),
                                       tensor::from_values<std::int64_t>({2}, std::vector<std::int64_t>{1, 5})),
                    Catch::Contains("label 5") && Catch::Contains("[0, 5)"));
  tensor rm = tensor::zeros({3}), rv = tensor::zeros({4});
  variable gm(tensor::zeros({3})), bt(tensor::zeros({3}));
  CHECK_THROWS_WITH(ops::batch_norm(x, gm, bt, rm, rv), Catch::Contains("running_var") && Catch::Contains("[3]"));
  CHECK_THROWS_WITH(ops::max_pool2d(variable(tensor::zeros({1, 1, 2, 2})), 5, 1), Catch::Contains("larger than input"));
}

TEST_CASE("a failing backward leaves an empty tape; a consumed graph cannot be walked twice", "[autograd]") {
  variable x(tensor::from_values(shape{2}, std::vector<double>{1, 2}), true);
  variable y = ops::sigmoid<backends::reference<double>>(x);
  variable z = variable::result(tensor::scalar(0.0, dtype::f64), true);
  autograd::record_op("fails", {&y}, {&z}, {}, nullptr, [](autograd::node&, std::span<const tensor>, std::span<tensor>) {
    throw grcnn::error("user op failed");
  });
  CHECK(autograd::current_tape().size() == 2);
  CHECK_THROWS_WITH(autograd::backward(z), Catch::Contains("user op failed"));
  CHECK(autograd::current_tape().size() == 0);
  CHECK(!x.grad().defined());

  variable a = ops::sigmoid<backends::reference<double>>(x);
  autograd::backward(a, tensor::full({2}, 1.0, dtype::f64));
  CHECK_THROWS_WITH(autograd::backward(a, tensor::full({2}, 1.0, dtype::f64)), Catch::Contains("no longer on the tape"));
}

TEST_CASE("reshaping a channels-last [N, C, 1, 1] tensor keeps the element order", "[tensor]") {
  const tensor t = tensor::from_values(shape{2, 4, 1, 1}, std::vector<double>{0, 1, 2, 3, 4, 5, 6, 7}, dtype::f64,
                                       layout::nhwc);
  const tensor r = t.reshape({2, 2, 2, 1});
  CHECK(r.memory_layout() == layout::plain);
  CHECK(r.values<double>() == std::vector<double>{0, 1, 2, 3, 4, 5, 6, 7});
  CHECK(t.reshape({2, 4}).values<double>() == std::vector<double>{0, 1, 2, 3, 4, 5, 6, 7});
}
