// Loading weights: a converted PyTorch checkpoint (tools/torch_to_safetensors.py) loads into the
// matching network with every name, shape and dtype checked; save/load round-trips; mismatches are
// all reported at once; weight-sharing variants tie PyTorch's duplicated keys.
#include <catch2/catch.hpp>

#include <grcnn/backends/default.hpp>
#include <grcnn/io/state_dict.hpp>
#include <grcnn/models/grcnn.hpp>
#include <grcnn/train/checkpoint.hpp>

using namespace grcnn;

TEST_CASE("a converted PyTorch checkpoint loads and round-trips", "[checkpoint]") {
  const io::tensor_dict converted = io::load_safetensors("converted_grcnn56_share.safetensors");
  const io::tensor_dict expected = io::load_safetensors("expected_grcnn56_share.safetensors");
  CHECK(converted.metadata.at("format") == "pt");
  models::grcnn56_share<> net(10);
  io::load_state_dict(net.state(), converted);
  const io::tensor_dict back = io::state_dict(net.state());
  REQUIRE(back.size() == expected.size());
  for (std::size_t i = 0; i < back.size(); ++i) {
    const auto& [name, t] = back.entries()[i];
    INFO(name);
    CHECK(name == expected.entries()[i].first);  // PyTorch's names in PyTorch's order
    CHECK(relative_error(t, expected.at(name)) == 0.0);
  }
  // The shared bottleneck is one tensor: loading wrote it once, and every iteration sees it.
  auto state = net.state();
  const auto find = [&](const std::string& n) {
    for (auto& e : state)
      if (e.name == n) return e;
    FAIL("no entry " << n);
    return state.front();
  };
  CHECK(find("stage_1.iter_1.2.weight").parameter->cell() == find("stage_1.iter_3.2.weight").parameter->cell());
  CHECK(net.parameter_count() == 3'411'274);
}

TEST_CASE("the converter strips a nested body's prefix (--strip model.)", "[checkpoint]") {
  const io::tensor_dict nested = io::load_safetensors("converted_nested.safetensors");
  const io::tensor_dict expected = io::load_safetensors("expected_grcnn56_share.safetensors");
  REQUIRE(nested.size() == expected.size());
  for (const auto& [name, t] : expected.entries()) {
    INFO(name);
    REQUIRE(nested.contains(name));
    CHECK(relative_error(nested.at(name), t) == 0.0);
  }
}

TEST_CASE("converted weights serve --init-weights, with or without the classifier", "[checkpoint]") {
  io::tensor_dict converted = io::load_safetensors("converted_grcnn56_share.safetensors");
  const io::tensor_dict model = train::model_state_from(converted);  // a plain state_dict: every entry kept
  CHECK(model.size() == converted.size());
  models::grcnn56_share<> net(10);
  io::load_state_dict(net.state(), model);
  // Another class count: the classifier is left as initialised, everything else loads.
  models::grcnn56_share<> wider(37);
  CHECK_THROWS_WITH(io::load_state_dict(wider.state(), model), Catch::Contains("'classifier.weight': file has shape [10, 768]"));
  io::load_state_dict(wider.state(), model, {.skip_prefixes = {"classifier"}});
  for (const auto& e : wider.state())
    if (e.name == "stage_2.conv_f.weight") CHECK(relative_error(e.value(), model.at(e.name)) == 0.0);
}

TEST_CASE("load_state_dict reports every mismatch in one error", "[checkpoint]") {
  models::grcnn56<> net(10);
  io::tensor_dict d = io::state_dict(net.state());
  io::tensor_dict broken;
  for (const auto& [name, t] : d.entries()) {
    if (name == "stage_1.conv_f.weight") continue;                                      // missing
    if (name == "classifier.weight") broken.add(name, tensor::zeros({5, 768}));         // wrong shape
    else if (name == "stage_2.bn_f.num_batches_tracked") broken.add(name, tensor::zeros({}));  // wrong dtype
    else broken.add(name, t);
  }
  broken.add("stage_9.extra", tensor::zeros({1}));  // unexpected
  // A valid entry with new values, which must not be applied when the load fails.
  io::tensor_dict tmp;
  for (const auto& [name, t] : broken.entries())
    tmp.add(name, name == "stage_3.conv_g_r.weight" ? tensor::full(t.dims(), 0.5) : t);
  broken = tmp;
  try {
    io::load_state_dict(net.state(), broken);
    FAIL("load_state_dict accepted a broken dictionary");
  } catch (const io_error& e) {
    const std::string msg = e.what();
    CHECK_THAT(msg, Catch::Contains("4 problem(s)") && Catch::Contains("missing 'stage_1.conv_f.weight'") &&
                        Catch::Contains("'classifier.weight': file has shape [5, 768], the network expects [10, 768]") &&
                        Catch::Contains("'stage_2.bn_f.num_batches_tracked': file has dtype f32") &&
                        Catch::Contains("unexpected 'stage_9.extra'"));
  }
  // All or nothing: the failed load changed no entry.
  const io::tensor_dict after = io::state_dict(net.state());
  for (const auto& [name, t] : d.entries()) CHECK(relative_error(after.at(name), t) == 0.0);
  CHECK_NOTHROW(io::load_state_dict(net.state(), d));
}

// PyTorch's load_state_dict reads a one-element 1-d tensor into a 0-d entry (torch 0.3 had no 0-d tensors
// and stored scalars so) and fills a missing num_batches_tracked with 0 (checkpoints from before BatchNorm
// had it, torch < 0.4.1). Both are accepted and reported; nothing else is.
TEST_CASE("load_state_dict accepts PyTorch's old-checkpoint forms of num_batches_tracked, and nothing more", "[checkpoint]") {
  models::grcnn56<> source(10);
  const io::tensor_dict d = io::state_dict(source.state());
  const auto counter = [](std::int64_t v, grcnn::shape s) {
    tensor t = tensor::zeros(s, dtype::i64);
    static_cast<std::int64_t*>(t.raw())[0] = v;
    return t;
  };
  const std::string vec_name = "stage_2.bn_f.num_batches_tracked";
  std::size_t counters = 0;
  io::tensor_dict old;  // every counter missing but one, which is a one-element 1-d tensor holding 7
  for (const auto& [name, t] : d.entries()) {
    if (name.ends_with("num_batches_tracked")) {
      ++counters;
      if (name == vec_name) old.add(name, counter(7, {1}));
      continue;
    }
    old.add(name, t);
  }
  REQUIRE(counters > 10);
  models::grcnn56<> net(10);
  for (auto& e : net.state())  // non-zero counters, so that filling 0 is seen
    if (e.name.ends_with("num_batches_tracked")) e.value() = counter(3, {});
  const io::load_report r = io::load_state_dict(net.state(), old, {.print_notes = false});
  CHECK(r.scalars_from_vectors == std::vector<std::string>{vec_name});
  CHECK(r.counters_filled.size() == counters - 1);
  CHECK_THAT(r.note("old.pt"), Catch::Contains("read one-element 1-d tensors as 0-d for 1 entry ('" + vec_name + "')") &&
                                   Catch::Contains("set 0 for the missing num_batches_tracked of " +
                                                   std::to_string(counters - 1) + " entries"));
  for (const auto& e : net.state()) {
    INFO(e.name);
    if (e.name == vec_name) {
      CHECK(e.value().dims().rank() == 0);
      CHECK(static_cast<const std::int64_t*>(e.value().raw())[0] == 7);
    } else if (e.name.ends_with("num_batches_tracked")) {
      CHECK(static_cast<const std::int64_t*>(e.value().raw())[0] == 0);
    } else {
      CHECK(relative_error(e.value(), d.at(e.name)) == 0.0);
    }
  }
  CHECK(io::load_state_dict(net.state(), d).accommodated() == false);  // an exact file: nothing to report
  CHECK(io::load_report{}.note().empty());

  // Everything else is refused as before: a 1-d tensor of two elements for a 0-d entry, a 1-d float where
  // an i64 counter is, and a missing entry that is not a batch counter.
  const auto edited = [&](const std::string& target, const tensor& value, bool drop = false) {
    io::tensor_dict e;
    for (const auto& [name, t] : d.entries())
      if (name != target) e.add(name, t);
      else if (!drop) e.add(name, value);
    return e;
  };
  CHECK_THROWS_WITH(io::load_state_dict(net.state(), edited(vec_name, counter(1, {2}))),
                    Catch::Contains("'" + vec_name + "': file has shape [2], the network expects []"));
  CHECK_THROWS_WITH(io::load_state_dict(net.state(), edited(vec_name, tensor::zeros({1}))),
                    Catch::Contains("'" + vec_name + "': file has dtype f32"));
  CHECK_THROWS_WITH(io::load_state_dict(net.state(), edited("stage_2.bn_f.running_var", tensor(), true)),
                    Catch::Contains("missing 'stage_2.bn_f.running_var'"));
}

TEST_CASE("shared weights with different values in the file are rejected", "[checkpoint]") {
  models::grcnn56_share<> net(10);
  io::tensor_dict d = io::state_dict(net.state());
  io::tensor_dict edited;
  for (const auto& [name, t] : d.entries())
    edited.add(name, name == "stage_2.iter_4.5.weight" ? tensor::zeros(t.dims()) : t);
  CHECK_THROWS_WITH(io::load_state_dict(net.state(), edited),
                    Catch::Contains("'stage_2.iter_4.5.weight' is shared with 'stage_2.iter_1.5.weight'"));
}
