// Hostile inputs and hostile outputs (issue 21): outputs that never clobber or lie, strict JSON and
// safetensors, overflow-checked window arithmetic, input sizes refused with the minimum named, text
// files with a byte-order mark, an evaluation with nothing to evaluate.
#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/random.hpp"
#include <grcnn/backends/default.hpp>
#include <grcnn/eval/neuroid_assembly.hpp>
#include <grcnn/eval/splits.hpp>
#include <grcnn/io/json.hpp>
#include <grcnn/io/netcdf.hpp>
#include <grcnn/io/output_file.hpp>
#include <grcnn/io/safetensors.hpp>
#include <grcnn/io/text_file.hpp>
#include <grcnn/models/grcnn.hpp>
#include <grcnn/train/superclass.hpp>
#include <grcnn/train/trainer.hpp>

using namespace grcnn;
namespace fs = std::filesystem;

namespace {

// A fresh folder per test case.
fs::path scratch(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("grcnn_test_hardening_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}
std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}
// Files in a folder whose name holds ".tmp" (left-over temporaries).
std::size_t temporaries(const fs::path& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().filename().string().find(".tmp") != std::string::npos;
  return n;
}
void write_raw(const fs::path& p, const std::string& header, const std::string& data) {
  std::ofstream o(p, std::ios::binary);
  for (int i = 0; i < 8; ++i) o.put(static_cast<char>(static_cast<std::uint64_t>(header.size()) >> (8 * i)));
  o << header << data;
}

// Lowers the file-size limit for a scope: writes beyond it fail with EFBIG (SIGXFSZ ignored), the way a
// full disk makes them fail, without needing a small file system.
struct file_size_limit {
  rlimit old{};
  void (*old_handler)(int);
  explicit file_size_limit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &old);
    old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit r = old;
    r.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &r);
  }
  ~file_size_limit() {
    setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
  }
};

}  // namespace

TEST_CASE("output_file writes regular files atomically and keeps an existing file's mode", "[hardening][output]") {
  const auto dir = scratch("atomic");
  const auto p = dir / "a.json";
  io::write_file(p, "first\n");
  CHECK(slurp(p) == "first\n");
  ::chmod(p.c_str(), 0640);
  io::write_file(p, "second\n");
  CHECK(slurp(p) == "second\n");
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);
  {  // not committed (an exception on the way): the old file stays, no temporary is left
    io::output_file f(p);
    f.write("partial");
  }
  CHECK(slurp(p) == "second\n");
  CHECK(temporaries(dir) == 0);
}

TEST_CASE("output_file writes through symbolic links and into devices, refuses folders", "[hardening][output]") {
  const auto dir = scratch("links");
  fs::create_directories(dir / "real");
  const auto target = dir / "real" / "out.txt";
  io::write_file(target, "old");
  fs::create_symlink("real/out.txt", dir / "link1");  // relative, resolved from the link's folder
  fs::create_symlink(dir / "link1", dir / "link2");    // a chain
  io::write_file(dir / "link2", "new");
  CHECK(fs::is_symlink(dir / "link1"));
  CHECK(fs::is_symlink(dir / "link2"));
  CHECK(slurp(target) == "new");
  // A dangling link: its target is created.
  fs::create_symlink("real/fresh.txt", dir / "dangling");
  io::write_file(dir / "dangling", "made");
  CHECK(fs::is_symlink(dir / "dangling"));
  CHECK(slurp(dir / "real" / "fresh.txt") == "made");
  // A device node stays a device node.
  io::write_file("/dev/null", "discarded");
  CHECK(fs::is_character_file("/dev/null"));
  // A folder is refused by name.
  CHECK_THROWS_WITH(io::write_file(dir / "real", "x", "summary"), Catch::Contains("is a directory") && Catch::Contains("summary"));
  // A link loop is an error, not a hang.
  fs::create_symlink(dir / "loop_b", dir / "loop_a");
  fs::create_symlink(dir / "loop_a", dir / "loop_b");
  CHECK_THROWS_WITH(io::write_file(dir / "loop_a", "x"), Catch::Contains("too many levels of symbolic links"));
  CHECK(temporaries(dir) == 0);
  CHECK(temporaries(dir / "real") == 0);
}

TEST_CASE("failed writes say why and leave no temporary file", "[hardening][output]") {
  const auto dir = scratch("failures");
  // A full device: the write is checked, errno's text is in the message.
  CHECK_THROWS_WITH(io::write_file("/dev/full", std::string(1 << 16, 'x'), "grcnn-score --out"),
                    Catch::Contains("No space left on device") && Catch::Contains("/dev/full"));
  // A missing folder.
  CHECK_THROWS_WITH(io::write_file(dir / "no" / "such" / "f.json", "x"), Catch::Contains("No such file or directory"));
  // A write that runs out of room half way: the old file is untouched and the temporary removed.
  const auto p = dir / "checkpoint-7.safetensors";
  io::write_file(p, "previous");
  std::mt19937 rng(1);
  const tensor big = testing::uniform({64, 1024}, rng, -1, 1, dtype::f32);  // 256 KiB
  {
    file_size_limit limit(64 * 1024);
    CHECK_THROWS_WITH(io::save_safetensors(p, {{"w", big}}), Catch::Contains("File too large") && Catch::Contains(p.string()));
  }
  CHECK(slurp(p) == "previous");
  CHECK(temporaries(dir) == 0);
  // Without the limit the same write succeeds and reads back.
  io::save_safetensors(p, {{"w", big}});
  CHECK(io::load_safetensors(p).at("w").values<float>() == big.values<float>());
  CHECK(temporaries(dir) == 0);
}

TEST_CASE("safetensors: duplicate keys, bytes outside every tensor, out-of-range numbers, folders", "[hardening][io]") {
  const auto dir = scratch("safetensors");
  const auto p = dir / "bad.safetensors";
  const std::string data(8, '\0');
  write_raw(p, R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", data);
  CHECK_THROWS_WITH(io::load_safetensors(p), Catch::Contains("'x' twice"));
  write_raw(p, R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data);
  CHECK_THROWS_WITH(io::load_safetensors(p), Catch::Contains("bytes [0, 4)") && Catch::Contains("belong to no tensor"));
  write_raw(p, R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", data);
  CHECK_THROWS_WITH(io::load_safetensors(p), Catch::Contains("bytes [4, 8) at the end"));
  write_raw(p, R"({"x":{"dtype":"F32","shape":[1e999],"data_offsets":[0,8]}})", data);
  CHECK_THROWS_WITH(io::load_safetensors(p), Catch::Contains("not valid JSON") && Catch::Contains(p.string()));
  write_raw(p, R"({"x":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,8]}})", data);
  CHECK_THROWS_WITH(io::load_safetensors(p), Catch::Contains("out-of-range extent"));
  CHECK_THROWS_WITH(io::load_safetensors(dir), Catch::Contains("is a directory"));
  // Two tensors that tile the section, one empty, still read.
  write_raw(p,
            R"({"e":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
            R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
            data);
  CHECK(io::load_safetensors(p).size() == 3);
}

TEST_CASE("JSON inputs: duplicate keys at any depth are refused, naming the key and the file", "[hardening][io]") {
  CHECK_THROWS_WITH(io::parse_json(R"({"a": {"b": 1, "b": 2}})", "f.json"), Catch::Contains("'b' twice") && Catch::Contains("f.json"));
  CHECK_THROWS_WITH(io::parse_json(R"([{"k": 1}, {"k": 2, "k": 3}])", "g.json"), Catch::Contains("'k' twice"));
  CHECK(io::parse_json(R"([{"k": 1}, {"k": 2}])", "h.json").size() == 2);  // the same key in two objects is fine
  CHECK_THROWS_WITH(io::parse_json("[1e400]", "n.json"), Catch::Contains("not valid JSON"));
  const auto dir = scratch("json");
  std::ofstream(dir / "splits.json") << R"({"splits": [{"train": ["a"], "test": ["b"], "train": ["b"]}]})";
  CHECK_THROWS_WITH(eval::read_split_file(dir / "splits.json", {"a", "b"}), Catch::Contains("'train' twice"));
}

TEST_CASE("window arithmetic is checked: no overflow, no kernel that does not fit", "[hardening][ops]") {
  std::mt19937 rng(2);
  const autograd::variable x(testing::uniform({1, 1, 2, 2}, rng, -1, 1, dtype::f32));
  // Truncating division used to turn (2 - 4) / 3 + 1 into a 1x1 output.
  const autograd::variable w(testing::uniform({1, 1, 4, 4}, rng, -1, 1, dtype::f32));
  CHECK_THROWS_WITH(ops::conv2d(x, w, {.stride_h = 3, .stride_w = 3}), Catch::Contains("does not fit"));
  // Padding near INT_MAX (a hostile file's or caller's): 2 * pad overflowed int; now 64-bit and exact.
  ops::conv2d_params p;
  p.pad_h = p.pad_w = 2147483647;
  const ops::conv2d_problem pr = ops::make_conv2d_problem(x.value(), tensor::zeros({1, 1, 1, 1}, dtype::f32), nullptr, p);
  CHECK(pr.y.dims[2] == 2 + 2 * std::int64_t{2147483647});
}

TEST_CASE("tensor sizes: negative extents and byte counts beyond 64 bits are refused before allocation", "[hardening][core]") {
  CHECK_THROWS_WITH(tensor::empty({2, -3}, dtype::f32), Catch::Contains("negative extent"));
  CHECK_THROWS_WITH(tensor::empty({std::int64_t{1} << 31, std::int64_t{1} << 31}, dtype::f64), Catch::Contains("overflows"));
  CHECK_THROWS_WITH(tensor::empty({std::int64_t{1} << 40, std::int64_t{1} << 40}, dtype::f32), Catch::Contains("overflows"));
}

namespace {
// A tiny ImageNet-style topology (7x7 stem, maxpool, downsampling GRCL, fixed 2x2 readout).
using tiny_imagenet = nn::topology<nn::imagenet_stem<32>, nn::grcl<"layer1", nn::imagenet_grcl({.in = 32, .planes = 8, .iterations = 1, .downsample = true})>,
                                   nn::classifier_head<32, 2>>;
template <class Net>
bool forward_works(Net& net, std::int64_t side) {
  std::mt19937 rng(static_cast<unsigned>(side));
  try {
    net.forward(autograd::variable(testing::uniform({1, 3, side, side}, rng, -1, 1, dtype::f32, layout::nhwc)));
    return true;
  } catch (const shape_error&) {
    return false;
  }
}
}  // namespace

TEST_CASE("text inputs: a UTF-8 byte-order mark is dropped, folders refused", "[hardening][io]") {
  const auto dir = scratch("bom");
  std::ofstream(dir / "sc.csv", std::ios::binary) << "\xEF\xBB\xBF" << "class_index,superclass_index,superclass_name\r\n"
                                                  << "0,0,animal\r\n1,1,thing\r\n2,0,animal\r\n";
  const train::superclass_map m = train::read_superclass_csv(dir / "sc.csv");
  CHECK(m.classes() == 3);
  CHECK(m.names == std::vector<std::string>{"animal", "thing"});
  CHECK_THROWS_WITH(io::open_text_file(dir, "id list"), Catch::Contains("id list") && Catch::Contains("is a directory"));
  std::ofstream(dir / "ids.txt", std::ios::binary) << "\xEF\xBB\xBF" << "n1\nn2\n";
  CHECK(eval::read_id_list(dir / "ids.txt") == std::vector<std::string>{"n1", "n2"});
}

namespace {
// Every sample unreadable, as a folder of corrupt files would be.
class unreadable final : public data::dataset {
 public:
  std::size_t size() const override { return 5; }
  data::sample get(std::size_t i) const override {
    throw io_error("image: 'broken_" + std::to_string(i) + ".png' is neither a JPEG nor a PNG file");
  }
  std::int64_t num_classes() const override { return 10; }
  std::string describe() const override { return "unreadable test set"; }
};
}  // namespace

TEST_CASE("an evaluation over zero readable images is an error, not 0% accuracy", "[hardening][train]") {
  models::grcnn_small<> net(10);
  unreadable d;
  data::loader l(d, data::pipeline{}, {.batch_size = 2, .shuffle = false, .drop_last = false, .workers = 1, .skip_corrupt = true});
  auto loss = [](const autograd::variable& logits, const std::vector<std::int64_t>& y) {
    return ops::cross_entropy(logits, tensor::from_values(shape{static_cast<std::int64_t>(y.size())}, y));
  };
  CHECK_THROWS_WITH(train::evaluate_network(net, l, loss),
                    Catch::Contains("no readable image among the 5 sample(s)") && Catch::Contains("5 unreadable"));
}

namespace {

// A classic-format netCDF header built byte by byte (big-endian, the format's grammar), for mutations.
struct cdf_bytes {
  int version = 1;
  std::string b;
  void u32(std::uint64_t v) {
    for (int i = 3; i >= 0; --i) b.push_back(static_cast<char>(v >> (8 * i)));
  }
  void u64(std::uint64_t v) {
    for (int i = 7; i >= 0; --i) b.push_back(static_cast<char>(v >> (8 * i)));
  }
  void size(std::uint64_t v) { version == 5 ? u64(v) : u32(v); }
  void name(const std::string& s) {
    size(s.size());
    b += s;
    b.append((4 - s.size() % 4) % 4, '\0');
  }
};
// dims: x (3), rec (unlimited); global attribute title = "ab"; variable v(rec, x) float with attribute
// units = "m", data after the header. Offsets of some fields are recorded for the mutations.
struct cdf_sample {
  cdf_bytes h;
  std::size_t dim_count_at = 0, first_name_at = 0, dimid_at = 0, var_type_at = 0, var_count_at = 0, att_type_at = 0;
  explicit cdf_sample(int version) {
    h.version = version;
    h.b = std::string("CDF") + static_cast<char>(version);
    h.size(1);                              // numrecs
    h.u32(0x0A), dim_count_at = h.b.size(), h.size(2);
    first_name_at = h.b.size(), h.name("x"), h.size(3);
    h.name("rec"), h.size(0);
    h.u32(0x0C), h.size(1), h.name("title"), att_type_at = h.b.size(), h.u32(2), h.size(2), h.b += std::string("ab\0\0", 4);
    h.u32(0x0B), var_count_at = h.b.size(), h.size(1), h.name("v"), h.size(2), h.size(1), dimid_at = h.b.size(), h.size(0);
    h.u32(0x0C), h.size(1), h.name("units"), h.u32(2), h.size(1), h.b += std::string("m\0\0\0", 4);
    var_type_at = h.b.size(), h.u32(5), h.size(12);
    const std::size_t begin = h.b.size() + (version == 1 ? 4 : 8);
    version == 1 ? h.u32(begin) : h.u64(begin);
    h.b.append(12, '\0');                    // one record of 3 floats
  }
  void set32(std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) h.b[at + i] = static_cast<char>(v >> (8 * (3 - i)));
  }
  void set_size(std::size_t at, std::uint64_t v) {
    const int w = h.version == 5 ? 8 : 4;
    for (int i = 0; i < w; ++i) h.b[at + i] = static_cast<char>(v >> (8 * (w - 1 - i)));
  }
};
std::string netcdf_open_error(const fs::path& p, const std::string& bytes) {
  {
    std::ofstream o(p, std::ios::binary);
    o << bytes;
  }
  try {
    io::netcdf_file f(p);
    return {};
  } catch (const io_error& e) {
    return e.what();
  }
}

}  // namespace

TEST_CASE("netCDF classic headers that crash libnetcdf are refused before nc_open, naming the byte", "[hardening][io]") {
  const auto dir = scratch("netcdf");
  const auto p = dir / "a.nc";
  for (int version : {1, 2, 5}) {
    INFO("CDF-" << version);
    const cdf_sample good(version);
    REQUIRE(netcdf_open_error(p, good.h.b).empty());
    {
      io::netcdf_file f(p);
      const auto v = f.variable("v");
      CHECK(v.shape == std::vector<std::size_t>{1, 3});
      CHECK(f.text_attribute("", "title") == "ab");
      CHECK(f.text_attribute("v", "units") == "m");
    }
    auto mutated = [&](auto&& change) {
      cdf_sample s(version);
      change(s);
      return netcdf_open_error(p, s.h.b);
    };
    // The classes of header fault behind libnetcdf 4.9.0's crashes (tests/fuzz/thirdparty/assembly).
    CHECK_THAT(mutated([](cdf_sample& s) { s.set_size(s.first_name_at, ~std::uint64_t{0}); }),
               Catch::Contains("name length") && Catch::Contains("of dimension 0") && Catch::Contains("at byte"));
    CHECK_THAT(mutated([](cdf_sample& s) { s.set_size(s.dim_count_at, 0xfffffffu); }),
               Catch::Contains("dimensions declared, more than the"));
    CHECK_THAT(mutated([](cdf_sample& s) { s.set_size(s.var_count_at, 0xb000008u); }),
               Catch::Contains("variables declared"));
    CHECK_THAT(mutated([](cdf_sample& s) { s.set_size(s.dimid_at, 7); }),
               Catch::Contains("dimension id 7 of variable 0 'v': the file has 2 dimensions"));
    CHECK_THAT(mutated([](cdf_sample& s) { s.set_size(s.dimid_at, 1); }),
               Catch::Contains("uses the unlimited dimension at position 1"));
    CHECK_THAT(mutated([](cdf_sample& s) { s.set32(s.var_type_at, 99); }), Catch::Contains("type 99 of variable 0 'v'"));
    CHECK_THAT(mutated([](cdf_sample& s) { s.set_size(s.att_type_at + 4, ~std::uint64_t{0} >> 1); }),
               Catch::Contains("values of global attribute 0 do not fit"));
    if (version != 5)
      CHECK_THAT(mutated([](cdf_sample& s) { s.set32(s.att_type_at, 10); }),
                 Catch::Contains("type 10 of global attribute 0 is not a CDF-"));
    CHECK_THAT(mutated([](cdf_sample& s) { s.h.b[3] = 3; }), Catch::Contains("format version 3"));

    // Every truncation and every byte of the header set to 0xff or 0x80: an io_error or a good open,
    // never a crash (the test process would die).
    std::size_t refused = 0;
    for (std::size_t n = 0; n < good.h.b.size(); ++n) refused += !netcdf_open_error(p, good.h.b.substr(0, n)).empty();
    CHECK(refused >= good.h.b.size() - 12);  // only the data record may be cut without harm
    for (std::size_t i = 4; i + 12 < good.h.b.size(); ++i)
      for (unsigned char byte : {0xffu, 0x80u}) {
        auto s = good.h.b;
        s[i] = static_cast<char>(byte);
        INFO("byte " << i << " set to " << static_cast<int>(byte));
        netcdf_open_error(p, s);
      }
    // And random rewrites of 1 to 4 header bytes.
    std::mt19937 rng(20261205u + static_cast<unsigned>(version));
    for (int trial = 0; trial < 300; ++trial) {
      auto s = good.h.b;
      const int k = 1 + static_cast<int>(rng() % 4);
      for (int j = 0; j < k; ++j) s[4 + rng() % (s.size() - 16)] = static_cast<char>(rng());
      INFO("random trial " << trial);
      netcdf_open_error(p, s);
    }
  }
  fs::remove_all(dir);
}

TEST_CASE("netCDF-4 files that crash libhdf5 are refused through the child-process probe", "[hardening][io]") {
  // Reproducers found by fuzz_assembly (tests/fuzz/README.md): Debian 12's libhdf5 1.10.8 segfaults on
  // the second inside nc_open. Whatever the library does with them, this process survives and the
  // error names the file.
  const fs::path corpus = fs::path(GRCNN_SOURCE_DIR) / "tests/fuzz/corpus/assembly";
  for (const char* name : {"crash-hdf5-segv-H5HG_read-memcpy-overlap.nc", "crash-hdf5-invalid-free-H5G__link_release_table.nc"}) {
    INFO(name);
    try {
      io::netcdf_file f(corpus / name);
      FAIL("opened");
    } catch (const io_error& e) {
      CHECK_THAT(e.what(), Catch::Contains(name));
    }
  }
  // The probe reads what the parent reads and leaves well-formed files to it.
  io::netcdf_file good(corpus / "hvm-cut-netcdf4.nc");
  CHECK(!good.variable_names().empty());
  io::netcdf_file unisolated(corpus / "hvm-cut-netcdf4.nc", io::netcdf_open_options{.isolate = false});
  CHECK(unisolated.variable_names() == good.variable_names());
}

// Networks in the same binary as the netCDF cases above: with this binary's heap layout, libhdf5 1.10.8's
// invalid free on crash-hdf5-invalid-free-H5G__link_release_table.nc went unnoticed in the probe child,
// the parent then opened the file itself and aborted at exit (io/netcdf_probe.hpp now keeps the parent
// from opening any file the child could not). Run as one binary, this stays a regression test of that.
TEST_CASE("input sides: the topology's arithmetic agrees with the ops, the minimum is named", "[hardening][models]") {
  autograd::no_grad_guard ng;
  models::grcnn_small<> small(10);
  small.eval();
  CHECK(small.min_input_size() == 7);  // the stem's output must halve twice: (7 - 1) / 2 + 1 = 4
  // The topology's own answer agrees with running the ops (the check is bypassed by comparing both ways).
  for (std::int64_t side = 1; side <= 40; ++side) CHECK(small.accepts_side(side) == forward_works(small, side));
  std::mt19937 rng(3);
  CHECK_THROWS_WITH(small.forward(autograd::variable(testing::uniform({1, 3, 5, 5}, rng, -1, 1, dtype::f32, layout::nhwc))),
                    Catch::Contains("below this architecture's minimum of 7"));
  CHECK_THROWS_WITH(small.forward(autograd::variable(testing::uniform({1, 3, 28, 28}, rng, -1, 1, dtype::f32, layout::nhwc))),
                    Catch::Contains("nearest accepted sizes are 24 and 31"));

  nn::network<tiny_imagenet> tiny(4);
  tiny.eval();
  for (std::int64_t side = 1; side <= 40; ++side) CHECK(tiny.accepts_side(side) == forward_works(tiny, side));
  CHECK(tiny.min_input_size() == 13);
  // ImageNet models: 224 gives the 7x7 map of AvgPool2d(7).
  static_assert(models::grcnn55<>::accepts_side(224));
  static_assert(!models::grcnn55<>::accepts_side(256));
  CHECK(models::grcnn55<>::min_input_size() == 221);  // stem to 56, three halvings to 7
}

TEST_CASE("a classifier with no class is refused at construction", "[hardening][models]") {
  CHECK_THROWS_WITH(models::grcnn_small<>(0), Catch::Contains("at least one class"));
  CHECK_THROWS_WITH(models::grcnn_small<>(-3), Catch::Contains("at least one class"));
}
