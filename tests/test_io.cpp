// safetensors: round trips of every dtype and a clear error for each kind of malformed file.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "support/random.hpp"
#include <grcnn/backends/default.hpp>
#include <grcnn/io/safetensors.hpp>
#include <grcnn/io/state_dict.hpp>

using namespace grcnn;

namespace {
std::filesystem::path temp_file(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("grcnn_test_io_" + name);
}
void write_raw(const std::filesystem::path& p, std::uint64_t header_len, const std::string& header,
               const std::string& data) {
  std::ofstream o(p, std::ios::binary);
  for (int i = 0; i < 8; ++i) o.put(static_cast<char>(header_len >> (8 * i)));
  o << header << data;
}
}  // namespace

TEST_CASE("safetensors round-trips every dtype, layouts written in logical order", "[io]") {
  std::mt19937 rng(4);
  const tensor f32 = testing::uniform({2, 3, 4, 5}, rng, -1, 1, dtype::f32, layout::nhwc);
  const tensor f64 = testing::uniform({7}, rng);
  const tensor b16 = testing::uniform({3, 3}, rng, -1, 1, dtype::bf16);
  const tensor i64 = tensor::from_values<std::int64_t>({3}, std::vector<std::int64_t>{-1, 0, 1LL << 40});
  const tensor scalar = tensor::scalar(42, dtype::i64);
  const tensor h16 = testing::uniform({2, 5}, rng, -3, 3, dtype::f16);
  const auto path = temp_file("roundtrip.safetensors");
  io::save_safetensors(path, {{"a", f32}, {"b", f64}, {"c", b16}, {"d", i64}, {"num_batches_tracked", scalar}, {"h", h16}},
                       {{"format", "pt"}});
  const io::tensor_dict d = io::load_safetensors(path);
  REQUIRE(d.size() == 6);
  CHECK(d.at("h").type() == dtype::f16);
  CHECK(d.at("h").values<double>() == h16.values<double>());
  CHECK(d.metadata.at("format") == "pt");
  CHECK(d.entries()[0].first == "a");
  CHECK(d.at("a").values<double>() == f32.values<double>());
  CHECK(d.at("a").memory_layout() == layout::plain);
  CHECK(d.at("b").values<double>() == f64.values<double>());
  CHECK(d.at("c").type() == dtype::bf16);
  CHECK(d.at("c").values<double>() == b16.values<double>());
  CHECK(d.at("d").values<std::int64_t>() == i64.values<std::int64_t>());
  CHECK(d.at("num_batches_tracked").dims().rank() == 0);
  CHECK(d.at("num_batches_tracked").item() == 42);
  CHECK_THROWS_WITH(d.at("missing"), Catch::Contains("missing") && Catch::Contains(path.string()));
}

TEST_CASE("safetensors reads F16 bit for bit", "[io]") {
  const auto path = temp_file("f16.safetensors");
  // 1.0, -2.0, 0.5, 65504 (max half), smallest subnormal 2^-24
  const unsigned char halves[] = {0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38, 0xff, 0x7b, 0x01, 0x00};
  const std::string header = R"({"h":{"dtype":"F16","shape":[5],"data_offsets":[0,10]}})";
  write_raw(path, header.size(), header, std::string(reinterpret_cast<const char*>(halves), 10));
  const auto d = io::load_safetensors(path);
  CHECK(d.at("h").type() == dtype::f16);
  CHECK(d.at("h").values<double>() == std::vector<double>{1.0, -2.0, 0.5, 65504.0, std::ldexp(1.0, -24)});
  io::save_safetensors(path, {{"h", d.at("h")}});
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(bytes.substr(bytes.size() - 10) == std::string(reinterpret_cast<const char*>(halves), 10));
}

TEST_CASE("f16 conversion rounds to nearest even, with subnormals, overflow and NaN", "[io]") {
  CHECK(f16(1.0f).bits == 0x3c00);
  CHECK(f16(-2.0f).bits == 0xc000);
  CHECK(f16(65504.0f).bits == 0x7bff);
  CHECK(f16(65520.0f).bits == 0x7c00);                  // halfway to the next step rounds up to infinity
  CHECK(f16(1.0f + std::ldexp(1.0f, -11)).bits == 0x3c00);  // tie to even
  CHECK(f16(1.0f + 3 * std::ldexp(1.0f, -11)).bits == 0x3c02);
  CHECK(f16(std::ldexp(1.0f, -24)).bits == 0x0001);      // smallest subnormal
  CHECK(f16(std::ldexp(1.0f, -25)).bits == 0x0000);      // tie to even: zero
  CHECK(f16(std::ldexp(1.5f, -25)).bits == 0x0001);
  CHECK(std::isnan(static_cast<float>(f16(std::nanf("")))));
  for (std::uint32_t b = 0; b < 0x7c00; b += 7) {  // every finite half survives f16 -> f32 -> f16
    f16 h;
    h.bits = static_cast<std::uint16_t>(b);
    CHECK(f16(static_cast<float>(h)).bits == h.bits);
  }
}

TEST_CASE("malformed safetensors files raise errors that say what is wrong", "[io]") {
  const auto p = temp_file("bad.safetensors");
  const std::string good = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string data(8, '\0');

  CHECK_THROWS_WITH(io::load_safetensors(temp_file("does_not_exist")), Catch::Contains("cannot open"));
  { std::ofstream o(p, std::ios::binary); o << "abc"; }
  CHECK_THROWS_WITH(io::load_safetensors(p), Catch::Contains("shorter than the 8-byte header length"));
  write_raw(p, 1ULL << 40, good, data);
  CHECK_THROWS_WITH(io::load_safetensors(p), Catch::Contains("declares a header of"));
  write_raw(p, good.size() + 100, good, data);
  CHECK_THROWS_WITH(io::load_safetensors(p), Catch::Contains("truncated"));
  write_raw(p, 10, "{\"x\": [1,", data);
  CHECK_THROWS_WITH(io::load_safetensors(p), Catch::Contains("not valid JSON"));
  const std::string out_of_range = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})";
  write_raw(p, out_of_range.size(), out_of_range, data);
  CHECK_THROWS_WITH(io::load_safetensors(p), Catch::Contains("outside the 8-byte data section"));
  const std::string wrong_size = R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})";
  write_raw(p, wrong_size.size(), wrong_size, data);
  CHECK_THROWS_WITH(io::load_safetensors(p), Catch::Contains("needs 12 bytes"));
  const std::string bad_dtype = R"({"x":{"dtype":"U7","shape":[2],"data_offsets":[0,8]}})";
  write_raw(p, bad_dtype.size(), bad_dtype, data);
  CHECK_THROWS_WITH(io::load_safetensors(p), Catch::Contains("unsupported dtype U7"));
  const std::string overlap =
      R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  write_raw(p, overlap.size(), overlap, data);
  CHECK_THROWS_WITH(io::load_safetensors(p), Catch::Contains("overlap"));
  const std::string huge = R"({"x":{"dtype":"F32","shape":[4611686018427387905,4],"data_offsets":[0,8]}})";
  write_raw(p, huge.size(), huge, data);
  CHECK_THROWS_WITH(io::load_safetensors(p), Catch::Contains("too large"));
  const std::string missing = R"({"x":{"dtype":"F32","shape":[2]}})";
  write_raw(p, missing.size(), missing, data);
  CHECK_THROWS_WITH(io::load_safetensors(p), Catch::Contains("needs dtype, shape and data_offsets"));
  write_raw(p, good.size(), good, data);
  CHECK(io::load_safetensors(p).at("x").numel() == 2);
}

// Weights trained into NaN (or a corrupted file) must not load silently: every floating parameter and
// buffer is checked, and the error names the file, the tensor and its first non-finite element.
TEST_CASE("load_state_dict refuses NaN and Inf in parameters and buffers, naming the tensor", "[io]") {
  std::mt19937 rng(21);
  autograd::variable w(testing::uniform({4, 5}, rng, -1, 1, dtype::f32), true);
  tensor running_var = tensor::full({5}, 1.0), tracked = tensor::scalar(3, dtype::i64);
  const nn::state_list state{{"layer1.conv.weight", &w, nullptr},
                             {"layer1.bn.running_var", nullptr, &running_var},
                             {"layer1.bn.num_batches_tracked", nullptr, &tracked}};
  const std::vector<double> w_before = w.value().values<double>();
  const auto path = temp_file("nonfinite_state.safetensors");
  // The file: the network's state with `value` at element `index` of `name`, held in dtype t.
  auto load_with = [&](const std::string& name, std::int64_t index, double value, dtype t) {
    std::vector<std::pair<std::string, tensor>> entries;
    for (const auto& e : state) {
      tensor v = e.value().clone();
      if (v.type() != dtype::i64) v = v.to_dtype(t);
      if (e.name == name) {
        auto vals = v.values<double>();
        vals.at(static_cast<std::size_t>(index)) = value;
        v.assign(vals);
      }
      entries.emplace_back(e.name, v);
    }
    io::save_safetensors(path, entries);
    io::load_state_dict(state, io::load_safetensors(path));
  };
  for (dtype t : {dtype::f32, dtype::bf16, dtype::f64}) {
    INFO("file dtype " << name_of(t));
    CHECK_THROWS_WITH(load_with("layer1.conv.weight", 17, std::nan(""), t),
                      Catch::Contains("load_state_dict from '" + path.string() + "'") &&
                          Catch::Contains("tensor 'layer1.conv.weight' holds NaN at element 17"));
    CHECK_THROWS_WITH(load_with("layer1.conv.weight", 3, INFINITY, t),
                      Catch::Contains("tensor 'layer1.conv.weight' holds +Inf at element 3"));
    CHECK_THROWS_WITH(load_with("layer1.bn.running_var", 4, -INFINITY, t),
                      Catch::Contains("tensor 'layer1.bn.running_var' holds -Inf at element 4"));
    CHECK(w.value().values<double>() == w_before);  // all or nothing: nothing was loaded
    CHECK(running_var.values<double>() == std::vector<double>(5, 1.0));
  }
  // A finite f64 beyond f32's range becomes +Inf in the network's dtype: refused too.
  CHECK_THROWS_WITH(load_with("layer1.conv.weight", 0, 1e300, dtype::f64),
                    Catch::Contains("tensor 'layer1.conv.weight' overflows f32 at element 0"));
  // Finite values load.
  load_with("layer1.conv.weight", 17, 0.25, dtype::f32);
  CHECK(w.value().values<double>()[17] == 0.25);
  std::filesystem::remove(path);
}
