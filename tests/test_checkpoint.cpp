// Loading weights: a converted PyTorch checkpoint (tools/torch_to_safetensors.py) loads into the
// matching network with every name, shape and dtype checked; save/load round-trips; mismatches are
// all reported at once; weight-sharing variants tie PyTorch's duplicated keys.
#include <catch2/catch.hpp>

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

TEST_CASE("shared weights with different values in the file are rejected", "[checkpoint]") {
  models::grcnn56_share<> net(10);
  io::tensor_dict d = io::state_dict(net.state());
  io::tensor_dict edited;
  for (const auto& [name, t] : d.entries())
    edited.add(name, name == "stage_2.iter_4.5.weight" ? tensor::zeros(t.dims()) : t);
  CHECK_THROWS_WITH(io::load_state_dict(net.state(), edited),
                    Catch::Contains("'stage_2.iter_4.5.weight' is shared with 'stage_2.iter_1.5.weight'"));
}
