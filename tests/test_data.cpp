// The data pipeline against torchvision/PIL (fixtures from tests/torch/make_data_fixtures.py):
// ImageFolder's classes and sample order, CIFAR and IDX parsing, RandomResizedCrop / flip / pad+crop /
// Normalize values, the loader's reproducibility (independent of worker count, resumable mid-epoch),
// a corrupt JPEG stopping the loader with the file's name (or being skipped and counted), and batches
// for a GPU in page-locked memory; IDX/CIFAR files and loader batches bounded before allocation.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <numeric>
#include <set>

#include <sys/resource.h>
#include <zlib.h>

#include <nlohmann/json.hpp>

#include <grcnn/backends/default.hpp>
#include <grcnn/data/augmix.hpp>
#include <grcnn/data/cifar.hpp>
#include <grcnn/data/image_folder.hpp>
#include <grcnn/data/loader.hpp>
#include <grcnn/data/mnist.hpp>
#include <grcnn/data/texture_blend.hpp>
#include <grcnn/core/tensor_math.hpp>
#include <grcnn/io/safetensors.hpp>

using namespace grcnn;
namespace fs = std::filesystem;

namespace {

const fs::path root = "data_fixtures";

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  REQUIRE(in);
  return nlohmann::json::parse(in);
}

const io::tensor_dict& transforms() {
  static const io::tensor_dict d = io::load_safetensors(root / "transforms.safetensors");
  return d;
}

// An HWC image stored as i64 [H, W, 3].
data::rgb_image image_of(const tensor& t) {
  data::rgb_image img;
  img.height = static_cast<int>(t.dim(0));
  img.width = static_cast<int>(t.dim(1));
  for (const auto v : t.values<std::int64_t>()) img.pixels.push_back(static_cast<std::uint8_t>(v));
  return img;
}

void check_same(const data::rgb_image& got, const tensor& want) {
  const data::rgb_image w = image_of(want);
  REQUIRE(got.width == w.width);
  REQUIRE(got.height == w.height);
  std::size_t differ = 0;
  for (std::size_t i = 0; i < got.pixels.size(); ++i) differ += got.pixels[i] != w.pixels[i];
  CHECK(differ == 0);
}

}  // namespace

TEST_CASE("ImageFolder lists classes and samples as torchvision does", "[data]") {
  const auto want = read_json(root / "folder.json");
  const data::image_folder f(root / "folder");
  REQUIRE(f.classes() == want["classes"].get<std::vector<std::string>>());
  REQUIRE(f.size() == want["samples"].size());
  for (std::size_t i = 0; i < f.size(); ++i) {
    INFO(i);
    CHECK(fs::relative(f.path(i), root / "folder").string() == want["samples"][i][0].get<std::string>());
    CHECK(f.get(i).label == want["samples"][i][1].get<std::int64_t>());
  }
  CHECK(f.num_classes() == 3);
  CHECK_THROWS_WITH(data::image_folder(root / "missing"), Catch::Contains("'data_fixtures/missing' is not a directory"));
}

TEST_CASE("CIFAR binaries and IDX files parse to the written images and labels", "[data]") {
  for (const bool c100 : {false, true}) {
    const fs::path dir = root / (c100 ? "cifar100" : "cifar10");
    const auto labels = read_json(dir / "labels.json");
    const data::cifar_dataset train(dir, c100, true), test(dir, c100, false);
    std::vector<std::int64_t> want_train, want_test;
    for (const auto& [file, list] : labels.items())
      for (const auto& l : list) (file.find("test") != std::string::npos ? want_test : want_train).push_back(l.get<std::int64_t>());
    REQUIRE(train.size() == want_train.size());
    REQUIRE(test.size() == want_test.size());
    CHECK(train.num_classes() == (c100 ? 100 : 10));
    // first.npy: a numpy header, then 32 x 32 x 3 bytes (HWC) of the first training image.
    std::ifstream npy(dir / "first.npy", std::ios::binary);
    std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(npy)), std::istreambuf_iterator<char>());
    REQUIRE(bytes.size() >= 3072);
    const std::vector<std::uint8_t> first(bytes.end() - 3072, bytes.end());
    CHECK(train.get(0).image.pixels == first);
    // json lists files in alphabetical order, which is also the order the dataset reads them
    for (std::size_t i = 0; i < want_train.size(); ++i) CHECK(train.get(i).label == want_train[i]);
  }
  const fs::path bad = "truncated_cifar.bin";
  {
    std::ofstream(bad, std::ios::binary) << std::string(100, 'x');
  }
  fs::create_directories("cifar_bad");
  fs::copy_file(bad, "cifar_bad/test_batch.bin", fs::copy_options::overwrite_existing);
  CHECK_THROWS_WITH(data::cifar_dataset("cifar_bad", false, false),
                    Catch::Contains("cifar_bad/test_batch.bin' has 100 bytes, not a whole number of 3073-byte records"));

  const auto mnist = data::open_mnist_style(root / "mnist", true, "mnist");
  REQUIRE(mnist->size() == 5);
  CHECK(mnist->labels() == std::vector<std::int64_t>{3, 1, 4, 1, 5});
  const data::sample s = mnist->get(2);
  CHECK(s.image.width == 28);
  CHECK(s.image.pixels[0] == s.image.pixels[1]);  // gray replicated to RGB
  CHECK_THROWS_WITH(data::open_mnist_style(root, true, "mnist"), Catch::Contains("train-images-idx3-ubyte.gz' nor the uncompressed file exists"));
}

TEST_CASE("crops, flips, padding and normalisation match torchvision", "[data]") {
  const data::rgb_image src = image_of(transforms().at("source"));
  for (int k = 0; k < 4; ++k) {
    INFO("box " << k);
    const auto b = transforms().at("rrc." + std::to_string(k) + ".box").values<std::int64_t>();
    const data::crop_box box{static_cast<int>(b[0]), static_cast<int>(b[1]), static_cast<int>(b[2]), static_cast<int>(b[3])};
    check_same(data::resize_bilinear(data::crop(src, box), 24, 24), transforms().at("rrc." + std::to_string(k) + ".out"));
  }
  check_same(data::hflip(src), transforms().at("hflip"));
  check_same(data::crop(data::pad(src, 4), {3, 9, 32, 32}), transforms().at("pad4_crop"));
  tensor t = tensor::empty({1, 3, src.height, src.width}, dtype::f32, layout::nhwc);
  data::write_normalized(src, t, 0, {0.4914f, 0.4822f, 0.4465f}, {0.2023f, 0.1994f, 0.2010f});
  CHECK(relative_error(t.to_layout(layout::plain), transforms().at("normalized").reshape(t.dims())) <= 1e-6);
  CHECK_THROWS_WITH(data::crop(src, {40, 0, 10, 10}), Catch::Contains("outside a 61x47 image"));
}

TEST_CASE("AugMix's image operations give PIL's bytes", "[data][augmix]") {
  namespace am = data::augmix;
  const io::tensor_dict d = io::load_safetensors(root / "augmix.safetensors");
  for (const char* pic : {"photo", "low", "flat"}) {
    const std::string p = pic;
    const data::rgb_image src = image_of(d.at(p + ".source"));
    INFO("image " << p);
    check_same(am::autocontrast(src), d.at(p + ".autocontrast"));
    check_same(am::equalize(src), d.at(p + ".equalize"));
    for (int bits : {1, 3, 4, 8}) {
      INFO("posterize " << bits);
      check_same(am::posterize(src, bits), d.at(p + ".posterize." + std::to_string(bits)));
    }
    for (int thr : {0, 100, 200, 256}) {
      INFO("solarize " << thr);
      check_same(am::solarize(src, thr), d.at(p + ".solarize." + std::to_string(thr)));
    }
    const double degrees[] = {0, 7, -13, 30, 90, 180, 271};
    for (int k = 0; k < 7; ++k) {
      INFO("rotate " << degrees[k]);
      check_same(am::rotate(src, degrees[k]), d.at(p + ".rotate." + std::to_string(k)));
    }
    const double shears[] = {0.1, -0.27, 0.3};
    const double shifts[] = {3, -5, 7};
    for (int k = 0; k < 3; ++k) {
      INFO("shear " << shears[k] << ", translate " << shifts[k]);
      check_same(am::shear_x(src, shears[k]), d.at(p + ".shear_x." + std::to_string(k)));
      check_same(am::shear_y(src, shears[k]), d.at(p + ".shear_y." + std::to_string(k)));
      check_same(am::translate_x(src, shifts[k]), d.at(p + ".translate_x." + std::to_string(k)));
      check_same(am::translate_y(src, shifts[k]), d.at(p + ".translate_y." + std::to_string(k)));
    }
    const double factors[] = {0.1, 0.5, 1.0, 1.37, 1.9, 0.0};
    for (int k = 0; k < 6; ++k) {
      INFO("enhance factor " << factors[k]);
      check_same(am::color(src, factors[k]), d.at(p + ".color." + std::to_string(k)));
      check_same(am::contrast(src, factors[k]), d.at(p + ".contrast." + std::to_string(k)));
      check_same(am::brightness(src, factors[k]), d.at(p + ".brightness." + std::to_string(k)));
      check_same(am::sharpness(src, factors[k]), d.at(p + ".sharpness." + std::to_string(k)));
    }
  }
  data::rgb_image bad{4, 4, std::vector<std::uint8_t>(5)};
  CHECK_THROWS_WITH(am::equalize(bad), Catch::Contains("malformed image 4x4 with 5 bytes"));
  CHECK_THROWS_WITH(am::posterize(image_of(d.at("photo.source")), 9), Catch::Contains("bits 9 outside [0, 8]"));
}

TEST_CASE("AugMix mixes a plan's chains as augment_and_mix does", "[data][augmix]") {
  namespace am = data::augmix;
  const io::tensor_dict d = io::load_safetensors(root / "augmix.safetensors");
  const data::rgb_image src = image_of(d.at("photo.source"));
  am::plan p;
  p.chains = {{{am::op_kind::rotate, 7}, {am::op_kind::posterize, 3}},
              {{am::op_kind::shear_x, -0.1}},
              {{am::op_kind::equalize, 0}, {am::op_kind::translate_y, 4}, {am::op_kind::solarize, 128}}};
  p.weights = {0.2f, 0.5f, 0.3f};
  p.m = 0.37f;
  const auto got = am::mix(src, p, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f});
  const tensor& want = d.at("mix.chw");  // [3, H, W]
  const auto wv = want.values<double>();
  const std::size_t H = static_cast<std::size_t>(src.height), W = static_cast<std::size_t>(src.width);
  REQUIRE(wv.size() == got.size());
  double err = 0;
  for (std::size_t c = 0; c < 3; ++c)
    for (std::size_t i = 0; i < H * W; ++i) err = std::max(err, std::abs(wv[c * H * W + i] - got[i * 3 + c]));
  CHECK(err < 1e-6);
}

TEST_CASE("AugMix plans follow the original's distributions", "[data][augmix]") {
  namespace am = data::augmix;
  std::mt19937_64 rng(5);
  const int n = 20000;
  std::array<double, 3> wsum{}, depth_count{};
  double msum = 0, max_weight_error = 0;
  std::array<int, 9> op_count{};
  int flips = 0, signed_ops = 0;
  for (int i = 0; i < n; ++i) {
    const am::plan p = am::sample_plan(am::options{.severity = 3}, 32, rng);
    REQUIRE(p.chains.size() == 3);
    double total = 0;
    for (int k = 0; k < 3; ++k) {
      wsum[k] += p.weights[k];
      total += p.weights[k];
      REQUIRE(p.chains[k].size() >= 1);
      REQUIRE(p.chains[k].size() <= 3);
      depth_count[p.chains[k].size() - 1] += 1;
      for (const auto& s : p.chains[k]) {
        op_count[static_cast<std::size_t>(s.kind)]++;
        switch (s.kind) {
          case am::op_kind::posterize: CHECK((s.param >= 3 && s.param <= 4)); break;  // 4 - floor(l * 4 / 10), l < 3
          case am::op_kind::solarize: CHECK((s.param > 256 - 77 && s.param <= 256)); break;
          case am::op_kind::rotate: CHECK(std::abs(s.param) <= 9); break;
          case am::op_kind::shear_x:
          case am::op_kind::shear_y: CHECK((std::abs(s.param) >= 0.003 - 1e-12 && std::abs(s.param) <= 0.09 + 1e-12)); break;
          case am::op_kind::translate_x:
          case am::op_kind::translate_y: CHECK(std::abs(s.param) <= 3); break;
          default: break;
        }
        if (s.kind == am::op_kind::shear_x || s.kind == am::op_kind::shear_y) {
          ++signed_ops;
          flips += s.param < 0;
        }
      }
    }
    max_weight_error = std::max(max_weight_error, std::abs(total - 1.0));
    msum += p.m;
    CHECK((p.m >= 0 && p.m <= 1));
  }
  CHECK(max_weight_error < 1e-6);  // the chain weights sum to 1
  for (double w : wsum) CHECK(std::abs(w / n - 1.0 / 3) < 0.01);  // Dirichlet(1,1,1): mean 1/3 each
  CHECK(std::abs(msum / n - 0.5) < 0.01);                          // Beta(1,1): mean 1/2
  for (double c : depth_count) CHECK(std::abs(c / (3.0 * n) - 1.0 / 3) < 0.01);
  const int ops = std::accumulate(op_count.begin(), op_count.end(), 0);
  for (int c : op_count) CHECK(std::abs(static_cast<double>(c) / ops - 1.0 / 9) < 0.01);
  CHECK(std::abs(static_cast<double>(flips) / signed_ops - 0.5) < 0.02);
  CHECK_THROWS_WITH(am::sample_plan(am::options{.severity = 0}, 32, rng), Catch::Contains("severity 0 outside [1, 10]"));
}

TEST_CASE("RandomResizedCrop boxes follow torchvision's distribution", "[data]") {
  data::augment_rng rng(1);
  double area = 0, ratio = 0, top = 0, left = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const data::crop_box b = data::random_resized_crop_box(200, 100, rng);
    REQUIRE(b.width > 0);
    REQUIRE(b.height > 0);
    REQUIRE(b.left + b.width <= 200);
    REQUIRE(b.top + b.height <= 100);
    area += static_cast<double>(b.width) * b.height / 20000.0 / n;
    ratio += static_cast<double>(b.width) / b.height / n;
    top += b.top / static_cast<double>(n);
    left += b.left / static_cast<double>(n);
  }
  // torchvision's get_params over 20000 draws on the same image size: the same distribution.
  const auto want = transforms().at("rrc_stats").values<double>();
  CHECK(area == Approx(want[0]).margin(0.01));
  CHECK(ratio == Approx(want[1]).margin(0.01));
  CHECK(top == Approx(want[2]).margin(1.0));
  CHECK(left == Approx(want[3]).margin(2.0));
  // A very wide image never fits a sampled box: the fallback is the centre crop clamped to ratio 4/3.
  const data::crop_box f = data::random_resized_crop_box(1000, 10, rng, 0.9, 1.0);
  CHECK(f.height == 10);
  CHECK(f.width == 13);
  CHECK(f.left == (1000 - 13) / 2);
}

namespace {
// An in-memory dataset of distinct images (each pixel encodes the index), so batches can be traced.
class numbered final : public data::dataset {
 public:
  explicit numbered(std::size_t n) : n_(n) {}
  std::size_t size() const override { return n_; }
  std::int64_t num_classes() const override { return 10; }
  std::string describe() const override { return "numbered"; }
  data::sample get(std::size_t i) const override {
    check_index(i);
    data::sample s;
    s.image.width = s.image.height = 8;
    s.image.pixels.assign(192, static_cast<std::uint8_t>(i));
    for (std::size_t p = 0; p < 64; ++p) s.image.pixels[p * 3 + 1] = static_cast<std::uint8_t>(p * 4);
    s.label = static_cast<std::int64_t>(i % 10);
    return s;
  }

 private:
  std::size_t n_;
};

std::vector<tensor> epoch_batches(const data::dataset& d, int workers, long epoch, std::size_t first = 0) {
  data::pipeline p;
  p.steps = {data::random_crop(8, 2), data::random_horizontal_flip()};
  data::loader l(d, p, {.batch_size = 7, .workers = workers, .prefetch = 3, .seed = 42});
  l.start_epoch(epoch, first);
  std::vector<tensor> out;
  while (auto b = l.next()) out.push_back(b->images);
  return out;
}
}  // namespace

TEST_CASE("the loader is reproducible whatever the worker count, and resumable mid-epoch", "[data][loader]") {
  const numbered d(100);
  const auto one = epoch_batches(d, 1, 3), four = epoch_batches(d, 4, 3), again = epoch_batches(d, 2, 3);
  REQUIRE(one.size() == 14);  // 100 / 7, last partial batch dropped
  REQUIRE(four.size() == one.size());
  for (std::size_t b = 0; b < one.size(); ++b) {
    CHECK(relative_error(one[b], four[b]) == 0.0);
    CHECK(relative_error(one[b], again[b]) == 0.0);
  }
  const auto resumed = epoch_batches(d, 3, 3, 5);
  REQUIRE(resumed.size() == one.size() - 5);
  for (std::size_t b = 0; b < resumed.size(); ++b) CHECK(relative_error(resumed[b], one[b + 5]) == 0.0);
  // Another epoch: another order and other augmentations.
  const auto other = epoch_batches(d, 2, 4);
  CHECK(relative_error(other[0], one[0]) > 0.0);
  // Every sample appears once per epoch: the red channel carries the index.
  data::loader l(d, {}, {.batch_size = 10, .shuffle = true, .workers = 2, .seed = 1});
  std::vector<int> seen(100, 0);
  std::vector<std::int64_t> labels;
  l.start_epoch(0);
  while (auto b = l.next())
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(b->size()); ++i) {
      const float red = b->images.data<float>()[i * 192];
      const int index = static_cast<int>(std::lround((red * 0.229f + 0.485f) * 255.0f));
      ++seen[static_cast<std::size_t>(index)];
      CHECK(b->labels[static_cast<std::size_t>(i)] == index % 10);
    }
  CHECK(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));
}

namespace {
// A stand-in GPU runtime in host memory: enough to see which memory the loader and the copies use.
class counting_runtime final : public device_runtime {
 public:
  int pinned_allocations = 0, pinned_frees = 0, uploads_from_pinned = 0;
  std::set<const void*> pinned_blocks;
  std::mutex mu;
  void* allocate(std::size_t bytes) override { return std::malloc(bytes); }
  void deallocate(void* p, std::size_t) override { std::free(p); }
  void copy(void* dst, device dst_dev, const void* src, device src_dev, std::size_t bytes) override {
    std::lock_guard lock(mu);
    if (dst_dev.kind != device_kind::cpu && src_dev.kind == device_kind::cpu && pinned_blocks.count(src)) ++uploads_from_pinned;
    std::memcpy(dst, src, bytes);
  }
  void* allocate_pinned(std::size_t bytes) override {  // called from the loader's workers
    std::lock_guard lock(mu);
    ++pinned_allocations;
    void* p = std::malloc(bytes);
    pinned_blocks.insert(p);
    return p;
  }
  void deallocate_pinned(void* p, std::size_t) override {
    std::lock_guard lock(mu);
    ++pinned_frees;
    pinned_blocks.erase(p);
    std::free(p);
  }
  void zero(void* p, std::size_t bytes) override { std::memset(p, 0, bytes); }
  void permute_4d(std::size_t, const void*, void*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, bool) override {
    FAIL("not used by this test");
  }
  void fill_normal(dtype, void*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, bool, std::uint64_t,
                   std::uint64_t) override {
    FAIL("not used by this test");
  }
  void add_inplace(dtype, void*, const void*, std::size_t) override { FAIL("not used by this test"); }
  void synchronize() override {}
  device_memory_stats memory_stats() const override { return {}; }
};
}  // namespace

TEST_CASE("for a GPU the loader writes batches into page-locked memory, which uploads read directly", "[data][loader]") {
  counting_runtime gpu;
  struct registration {  // restores the slot however the test ends
    device_runtime* before = grcnn::detail::runtimes()[static_cast<int>(device_kind::cuda)];
    explicit registration(device_runtime* r) { register_device_runtime(device_kind::cuda, r); }
    ~registration() { register_device_runtime(device_kind::cuda, before); }
  } installed(&gpu);
  {
    const numbered d(30);
    std::vector<tensor> host;
    for (device target : {cpu_device, cuda_device}) {
      data::loader l(d, {}, {.batch_size = 10, .shuffle = false, .workers = 2, .seed = 1, .pinned_for = target});
      l.start_epoch(0);
      while (auto b = l.next()) {
        CHECK(b->images.pinned() == (target == cuda_device));
        CHECK(b->images.on_host());
        if (target == cpu_device) {
          host.push_back(b->images);
          continue;
        }
        const tensor up = b->images.to_device(cuda_device);  // what to_backend does first
        CHECK(relative_error(up.to_device(cpu_device), host[b->index]) == 0.0);  // the same pixels
      }
    }
    CHECK(gpu.pinned_allocations == 3);
    CHECK(gpu.uploads_from_pinned == 3);
    CHECK(gpu.pinned_frees == 3);  // every batch returned its block
    CHECK(tensor::empty_pinned({2, 3}, dtype::f32, layout::plain, cpu_device).pinned() == false);
    CHECK_THROWS_WITH(tensor::empty_pinned({2, 3}, dtype::f32, layout::nhwc, cuda_device), Catch::Contains("rank-4"));
  }
}

TEST_CASE("a corrupt JPEG stops the loader with its file name, or is skipped and counted", "[data][loader]") {
  const std::string bad = read_json(root / "corrupt.json")["bad"].get<std::string>();
  const data::image_folder f(root / "corrupt");
  data::pipeline p;
  p.steps = {data::resize_then_center_crop(16, 16)};
  {
    data::loader l(f, p, {.batch_size = 2, .shuffle = false, .workers = 2});
    l.start_epoch(0);
    try {
      while (l.next()) {
      }
      FAIL("the corrupt JPEG was decoded");
    } catch (const io_error& e) {
      CHECK_THAT(e.what(), Catch::Contains(fs::path(bad).filename().string()) && Catch::Contains("corrupt/b/1.jpg"));
    }
  }
  data::loader l(f, p, {.batch_size = 2, .shuffle = false, .workers = 2, .skip_corrupt = true});
  l.start_epoch(0);
  std::size_t images = 0, skipped_batches = 0;
  while (auto b = l.next()) {
    images += b->size();
    skipped_batches += !b->skipped.empty();
  }
  CHECK(images == 5);
  CHECK(l.skipped_total() == 1);
  CHECK(skipped_batches == 1);
}

// ---- texture/noise: phase randomisation, texture sets, blend views ---------------------------

TEST_CASE("phase randomisation reproduces the authors' numpy algorithm", "[data][phase]") {
  namespace ph = data::phase;
  const io::tensor_dict d = io::load_safetensors(root / "phase.safetensors");
  const data::rgb_image img = image_of(d.at("image"));
  const std::vector<double> phase = d.at("new_phase").values<double>();
  const data::rgb_image got = ph::image_with_phase(img, phase);
  const data::rgb_image want = image_of(d.at("expected"));
  std::size_t off_by_one = 0, worse = 0;
  for (std::size_t i = 0; i < got.pixels.size(); ++i) {
    const int diff = std::abs(int(got.pixels[i]) - int(want.pixels[i]));
    off_by_one += diff == 1;
    worse += diff > 1;
  }
  CHECK(worse == 0);
  CHECK(off_by_one <= 2);  // a value at .5 may round either way after a different FFT's last bits
  CHECK_THROWS_WITH(ph::image_with_phase(img, std::vector<double>(5)), Catch::Contains("5 phase values for a 12x10x3 image"));
}

TEST_CASE("phase randomisation keeps the amplitude spectrum and scrambles the phase", "[data][phase]") {
  namespace ph = data::phase;
  const data::rgb_image img = data::decode_image(fs::path(GRCNN_SOURCE_DIR) / "data/textures/brick.png");
  const data::rgb_image small = data::resize_bilinear(img, 24, 20);
  std::mt19937_64 rng(5);
  const std::array<int, 3> n{small.height, small.width, 3};
  auto spectrum = [&](ph::field f, std::initializer_list<int> axes) {
    ph::fftn(f, n, axes, false);
    return f;
  };
  const ph::field original = spectrum(ph::to_field(small), {0, 1, 2});
  // uniform: the complex image before the modulus has exactly the original amplitudes
  std::vector<double> phase(small.pixels.size());
  std::uniform_real_distribution<double> u(-3.14159, 3.14159);
  for (auto& p : phase) p = u(rng);
  const ph::field mixed = spectrum(ph::field_with_phase(small, phase), {0, 1, 2});
  double worst = 0, scale = 0;
  for (std::size_t i = 0; i < mixed.size(); ++i) {
    worst = std::max(worst, std::abs(std::abs(mixed[i]) - std::abs(original[i])));
    scale = std::max(scale, std::abs(original[i]));
  }
  CHECK(worst / scale < 1e-6);
  // per channel: a real image with every channel's 2-D amplitude spectrum kept
  const ph::field per = ph::per_channel_field(small, rng);
  double imag = 0;
  for (const auto& v : per) imag = std::max(imag, std::abs(v.imag()));
  CHECK(imag < 1e-6);
  const ph::field a2 = spectrum(ph::to_field(small), {0, 1}), b2 = spectrum(per, {0, 1});
  worst = 0;
  for (std::size_t i = 0; i < a2.size(); ++i) worst = std::max(worst, std::abs(std::abs(a2[i]) - std::abs(b2[i])));
  CHECK(worst / scale < 1e-6);
  // the new phase is uncorrelated with the old one (circular correlation of the angles)
  double c = 0, count = 0;
  for (std::size_t i = 0; i < a2.size(); ++i)
    if (std::abs(a2[i]) > 1e-9 * scale) {
      c += std::cos(std::arg(a2[i]) - std::arg(b2[i]));
      ++count;
    }
  CHECK(std::abs(c / count) < 0.1);
  // every mode gives an image of the same size, different from the source, reproducible from a seed
  for (auto m : {ph::mode::uniform, ph::mode::permute, ph::mode::per_channel}) {
    std::mt19937_64 r1(9), r2(9);
    const data::rgb_image x = ph::randomise(small, m, r1), y = ph::randomise(small, m, r2);
    CHECK(x.pixels == y.pixels);
    CHECK(x.pixels != small.pixels);
  }
  CHECK_THROWS_WITH(ph::parse_mode("pink"), Catch::Contains("unknown mode 'pink'"));
}

// Channel statistics of an 8-bit RGB image: means, standard deviations and the three correlations.
struct colour_stats {
  std::array<double, 3> mean{}, sd{}, corr{};  // corr: (R, G), (R, B), (G, B)
};
colour_stats colour_stats_of(const data::rgb_image& img) {
  const std::size_t n = img.pixels.size() / 3;
  colour_stats s;
  std::array<double, 6> cross{};
  for (std::size_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) s.mean[static_cast<std::size_t>(c)] += img.pixels[i * 3 + static_cast<std::size_t>(c)] / double(n);
  std::array<double, 3> var{};
  for (std::size_t i = 0; i < n; ++i) {
    std::array<double, 3> d{};
    for (std::size_t c = 0; c < 3; ++c) d[c] = img.pixels[i * 3 + c] - s.mean[c];
    for (std::size_t c = 0; c < 3; ++c) var[c] += d[c] * d[c] / double(n);
    cross[0] += d[0] * d[1] / double(n), cross[1] += d[0] * d[2] / double(n), cross[2] += d[1] * d[2] / double(n);
  }
  for (std::size_t c = 0; c < 3; ++c) s.sd[c] = std::sqrt(var[c]);
  s.corr = {cross[0] / (s.sd[0] * s.sd[1]), cross[1] / (s.sd[0] * s.sd[2]), cross[2] / (s.sd[1] * s.sd[2])};
  return s;
}

// The standard phase-scrambled noise (Portilla-Simoncelli; Freeman et al.): each channel keeps its amplitude
// spectrum and one random phase serves all three, so the colour structure survives while the image
// content does not.
TEST_CASE("per-channel phase noise keeps each channel's amplitude and the colour correlations", "[data][phase]") {
  namespace ph = data::phase;
  // A coloured, smooth random image with correlated channels (R and G alike, B partly opposed), in 40-215.
  const int H = 48, W = 40;
  std::mt19937_64 rng(5);
  std::normal_distribution<double> g(0, 1);
  std::vector<double> a(static_cast<std::size_t>(H * W)), b(a.size());
  for (auto& v : a) v = g(rng);
  for (auto& v : b) v = g(rng);
  const auto smooth = [&](std::vector<double> f) {
    for (int pass = 0; pass < 3; ++pass) {
      std::vector<double> o(f.size());
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) {
          double t = 0;
          for (int dy = -1; dy <= 1; ++dy)
            for (int dx = -1; dx <= 1; ++dx) t += f[static_cast<std::size_t>(((y + dy + H) % H) * W + (x + dx + W) % W)];
          o[static_cast<std::size_t>(y * W + x)] = t / 9;
        }
      f = o;
    }
    return f;
  };
  a = smooth(a), b = smooth(b);
  data::rgb_image img{W, H, std::vector<std::uint8_t>(static_cast<std::size_t>(H * W * 3))};
  const auto byte = [](double v) { return static_cast<std::uint8_t>(std::clamp(std::nearbyint(v), 40.0, 215.0)); };
  for (std::size_t i = 0; i < a.size(); ++i) {
    img.pixels[i * 3] = byte(128 + 60 * a[i]);
    img.pixels[i * 3 + 1] = byte(120 + 50 * a[i] + 20 * b[i]);
    img.pixels[i * 3 + 2] = byte(110 - 30 * a[i] + 40 * b[i]);
  }
  std::mt19937_64 draw(17);
  const data::rgb_image noise = ph::randomise(img, ph::mode::per_channel, draw);
  // Each channel's 2-D amplitude spectrum after rounding to bytes: relative L2 error <= 5e-3.
  const std::array<int, 3> n{H, W, 3};
  ph::field fa = ph::to_field(img), fb = ph::to_field(noise);
  ph::fftn(fa, n, {0, 1}, false);
  ph::fftn(fb, n, {0, 1}, false);
  for (std::size_t c = 0; c < 3; ++c) {
    double num = 0, den = 0;
    for (std::size_t i = c; i < fa.size(); i += 3) {
      const double d = std::abs(fb[i]) - std::abs(fa[i]);
      num += d * d, den += std::norm(fa[i]);
    }
    INFO("channel " << c);
    WARN("per-channel phase noise, channel " << c << ": amplitude spectrum error after rounding " << std::sqrt(num / den));
    CHECK(std::sqrt(num / den) <= 5e-3);
  }
  const colour_stats before = colour_stats_of(img), after = colour_stats_of(noise);
  WARN("colour correlations (RG, RB, GB) before " << before.corr[0] << ", " << before.corr[1] << ", " << before.corr[2]
       << "; after " << after.corr[0] << ", " << after.corr[1] << ", " << after.corr[2]);
  for (std::size_t c = 0; c < 3; ++c) {
    INFO("channel " << c);
    CHECK(std::abs(after.mean[c] - before.mean[c]) <= 0.5);
    CHECK(std::abs(after.sd[c] - before.sd[c]) <= 0.01 * before.sd[c]);
    CHECK(std::abs(after.corr[c] - before.corr[c]) <= 0.01);
  }
  REQUIRE(before.corr[0] > 0.8);    // the test image has strong colour structure...
  REQUIRE(before.corr[1] < -0.05);  // ...both ways
  // The content is gone: the noise is uncorrelated with the image, pixel by pixel.
  double c0 = 0, s0 = 0, s1 = 0;
  for (std::size_t i = 0; i < img.pixels.size(); i += 3) {
    const double x = img.pixels[i] - before.mean[0], y = noise.pixels[i] - after.mean[0];
    c0 += x * y, s0 += x * x, s1 += y * y;
  }
  CHECK(std::abs(c0 / std::sqrt(s0 * s1)) < 0.3);
  // A grey image stays grey: the three channels get the same phase (odd sides too: 47 x 39, whose
  // spectra have no self-mirrored Nyquist row or column).
  data::rgb_image grey{W - 1, H - 1, {}};
  for (int y = 0; y < H - 1; ++y)
    for (int x = 0; x < W - 1; ++x)
      for (int c = 0; c < 3; ++c) grey.pixels.push_back(img.pixels[static_cast<std::size_t>((y * W + x) * 3)]);
  const ph::field grey_field = ph::per_channel_field(grey, draw);
  double imag = 0;
  for (const auto& v : grey_field) imag = std::max(imag, std::abs(v.imag()));
  CHECK(imag < 1e-9);  // real before rounding
  const data::rgb_image grey_noise = ph::randomise(grey, ph::mode::per_channel, draw);
  REQUIRE(grey_noise.pixels.size() == grey.pixels.size());
  for (std::size_t i = 0; i < grey_noise.pixels.size(); i += 3) {
    REQUIRE(grey_noise.pixels[i + 1] == grey_noise.pixels[i]);
    REQUIRE(grey_noise.pixels[i + 2] == grey_noise.pixels[i]);
  }
}

TEST_CASE("blend views mix each image with a texture in normalised space", "[data][phase]") {
  auto set = std::make_shared<data::texture_set>();
  data::rgb_image flat{8, 8, std::vector<std::uint8_t>(8 * 8 * 3, 200)};
  set->add("flat", flat);
  const data::view_fn v = data::blend_view(set, data::texture_alpha);
  data::rgb_image img{8, 8, std::vector<std::uint8_t>(8 * 8 * 3, 40)};
  const std::array<float, 3> mean{0.5f, 0.5f, 0.5f}, sd{0.25f, 0.25f, 0.25f};
  data::augment_rng rng(3);
  double lo = 1, hi = 0, sum = 0;
  const int draws = 2000;
  for (int k = 0; k < draws; ++k) {
    const std::vector<float> out = v(img, rng, mean, sd);
    const float x = (40 / 255.f - 0.5f) / 0.25f, t = (200 / 255.f - 0.5f) / 0.25f;
    const double a = (out[0] - x) / (t - x);
    for (float o : out) REQUIRE(o == out[0]);
    lo = std::min(lo, a), hi = std::max(hi, a), sum += a;
  }
  CHECK(lo >= 0.005 - 1e-6);
  CHECK(hi <= 0.5 + 1e-6);
  CHECK(sum / draws == Approx(0.2525).margin(0.01));  // the mean of U(0.005, 0.5)
  // the shipped textures load (grayscale replicated to RGB) and give a seeded noise set
  const auto tex = data::texture_set::from_folder(fs::path(GRCNN_SOURCE_DIR) / "data/textures");
  CHECK(tex.size() == 3);
  CHECK_THROWS_WITH(data::texture_set::from_folder(root / "missing"), Catch::Contains("is not a folder"));
  CHECK_THROWS_WITH(data::blend_view(set, {0.6, 0.5}), Catch::Contains("alpha range"));
}

TEST_CASE("extra views make view-major multi-view batches", "[data][loader]") {
  const data::image_folder f(root / "folder");
  data::pipeline p;
  p.steps = {data::resize_then_center_crop(16, 16)};
  data::augmix::options o;
  o.image_size = 16;
  p.views = {data::augmix::view(o), data::augmix::view(o)};
  data::loader l(f, p, {.batch_size = 2, .shuffle = false, .workers = 1});
  l.start_epoch(0);
  const auto b = l.next();
  REQUIRE(b);
  CHECK(b->views == 3);
  CHECK(b->images.dims() == shape{6, 3, 16, 16});
  // the clean view equals the plain pipeline's batch
  data::pipeline plain;
  plain.steps = p.steps;
  data::loader l0(f, plain, {.batch_size = 2, .shuffle = false, .workers = 1});
  l0.start_epoch(0);
  const auto b0 = l0.next();
  const auto all = b->images.values<float>(), clean = b0->images.values<float>();
  CHECK(std::equal(clean.begin(), clean.end(), all.begin()));
  CHECK(!std::equal(clean.begin(), clean.end(), all.begin() + static_cast<std::ptrdiff_t>(clean.size())));
}

// ---- sizes checked before allocation (limits.hpp) --------------------------------------------

namespace {
double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // kilobytes on Linux
}
std::string idx_header(std::initializer_list<std::uint32_t> dims) {
  std::string h{'\0', '\0', '\x08', static_cast<char>(dims.size())};
  for (const std::uint32_t d : dims)
    for (int i = 0; i < 4; ++i) h += static_cast<char>((d >> (24 - 8 * i)) & 0xFF);
  return h;
}
void write_gz(const fs::path& p, const std::string& bytes) {
  gzFile f = gzopen(p.string().c_str(), "wb");
  REQUIRE(f);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  gzclose(f);
}
// Samples of one size, made on the fly.
class sized_images final : public data::dataset {
 public:
  sized_images(int w, int h, std::size_t n) : w_(w), h_(h), n_(n) {}
  std::size_t size() const override { return n_; }
  data::sample get(std::size_t i) const override {
    check_index(i);
    return {data::rgb_image{w_, h_, std::vector<std::uint8_t>(static_cast<std::size_t>(w_) * h_ * 3, 50)}, 0};
  }
  std::int64_t num_classes() const override { return 1; }
  std::string describe() const override { return "sized images"; }

 private:
  int w_, h_;
  std::size_t n_;
};
}  // namespace

TEST_CASE("IDX and CIFAR files declaring more than they hold fail without allocating it", "[data][limits]") {
  const double rss_before = peak_rss_mb();
  // 16 bytes: a rank-3 header declaring 2048 x 1024 x 1024 = 2^31 values, and nothing after it.
  const std::string header = idx_header({2048, 1024, 1024});
  REQUIRE(header.size() == 16);
  std::ofstream("grcnn_bomb-idx3-ubyte", std::ios::binary) << header;
  CHECK_THROWS_WITH(data::read_idx("grcnn_bomb-idx3-ubyte"),
                    Catch::Contains("is truncated or corrupt: it declares 2048 x 1024 x 1024 = 2147483648 values but the file "
                                    "holds at most 0 (16 bytes, 16 of them header)"));
  write_gz("grcnn_bomb-idx3-ubyte.gz", header);
  CHECK_THROWS_WITH(data::read_idx("grcnn_bomb-idx3-ubyte.gz"),
                    Catch::Contains("truncated or corrupt: it declares 2048 x 1024 x 1024 = 2147483648 values but the file holds "
                                    "at most") &&
                        Catch::Contains("compressed bytes, expanding at most 1032-fold"));
  // A gzip stream within the 1032:1 bound that still ends early: read in chunks, it fails on arrival.
  std::string noise(1000, '\0');  // incompressible, so the declared 500000 values pass the 1032:1 bound
  std::uint32_t x = 12345;
  for (auto& c : noise) c = static_cast<char>((x = x * 1664525u + 1013904223u) >> 24);
  write_gz("grcnn_short-idx1-ubyte.gz", idx_header({500'000}) + noise);
  CHECK_THROWS_WITH(data::read_idx("grcnn_short-idx1-ubyte.gz"), Catch::Contains("is truncated: 1000 of 500000 values read"));
  CHECK(peak_rss_mb() - rss_before < 200);

  // The hard cap, and files within it.
  const std::string sixteen = idx_header({16}) + std::string(16, '\2');
  std::ofstream("grcnn_16-idx1-ubyte", std::ios::binary) << sixteen;
  write_gz("grcnn_16-idx1-ubyte.gz", sixteen);
  for (const char* f : {"grcnn_16-idx1-ubyte", "grcnn_16-idx1-ubyte.gz"}) {
    INFO(f);
    const data::idx_array a = data::read_idx(f);
    CHECK(a.values == std::vector<std::uint8_t>(16, 2));
    CHECK_THROWS_WITH(data::read_idx(f, {.max_array_bytes = 10}),
                      Catch::Contains("declares 16 = 16 values, above the limit of 10 bytes (raise it with --max-array-bytes)"));
  }

  // CIFAR: a file cut inside a record names its size; a set above max_array_bytes is refused unread.
  fs::create_directories("cifar_cut");
  std::ofstream("cifar_cut/test_batch.bin", std::ios::binary) << std::string(2 * 3073 - 5, '\0');
  CHECK_THROWS_WITH(data::cifar_dataset("cifar_cut", false, false),
                    Catch::Contains("has 6141 bytes, not a whole number of 3073-byte records (truncated"));
  fs::create_directories("cifar_two");
  std::ofstream("cifar_two/test_batch.bin", std::ios::binary) << std::string(2 * 3073, '\0');
  CHECK(data::cifar_dataset("cifar_two", false, false).size() == 2);
  CHECK_THROWS_WITH(data::cifar_dataset("cifar_two", false, false, {.max_array_bytes = 3073}),
                    Catch::Contains("above the limit of 3073 bytes (raise it with --max-array-bytes)"));
}

TEST_CASE("the loader refuses a batch above max_batch_bytes and names a sample a transform refused", "[data][limits][loader]") {
  const sized_images big(64, 64, 8);
  data::pipeline none;
  {  // 4 x (4 + 1) x 64 x 64 x 3 = 245760 bytes
    data::scoped_image_limits low({.max_batch_bytes = 200'000});
    for (const bool skip : {false, true}) {  // a limit is not a corrupt sample: skipping does not hide it
      data::loader l(big, none, {.batch_size = 4, .shuffle = false, .workers = 1, .skip_corrupt = skip});
      l.start_epoch(0);
      CHECK_THROWS_WITH(l.next(), Catch::Contains("loader: sized images: a batch of 4 x 1 view(s) of 64 x 64 images needs 245760 "
                                                      "bytes, above the limit of 200000 bytes") &&
                                      Catch::Contains("raise it with --max-batch-bytes"));
    }
  }
  data::loader ok(big, none, {.batch_size = 4, .shuffle = false, .workers = 1});
  ok.start_epoch(0);
  CHECK(ok.next()->size() == 4);

  // 1 x 2000 strips: Resize(256) would make 256 x 512000 images.
  const sized_images strips(1, 2000, 4);
  data::pipeline p;
  p.steps = {data::resize_then_center_crop(256, 224)};
  data::loader l(strips, p, {.batch_size = 2, .shuffle = false, .workers = 1});
  l.start_epoch(0);
  CHECK_THROWS_WITH(l.next(), Catch::Contains("sized images sample 0: resize: a 1 x 2000 image resized to 256 x 512000"));
}
