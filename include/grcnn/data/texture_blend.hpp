#pragma once
// Texture and noise views for the paper's V1-V2 fine-tuning (textures_and_noise.py of the authors):
// view = (1 - a) * pre(x) + a * pre(T) in normalised space, T a texture (or noise image) drawn uniformly
// from a set, a ~ U(a_min, a_max): U(0.005, 0.5) for textures, U(0.05, 0.5) for noise. The authors'
// files are pre-resized to the input size (224); here each texture is resized (bilinear, as
// transforms.hpp) to the sample's size on first use and cached. A noise set is made from a texture set
// by phase randomisation (phase_noise.hpp), or read from a folder grcnn-make-noise wrote.
#include <map>
#include <memory>
#include <mutex>

#include "grcnn/data/augment.hpp"
#include "grcnn/data/phase_noise.hpp"
#include "grcnn/data/transforms.hpp"

namespace grcnn::data {

class texture_set {
 public:
  // Every .jpg/.jpeg/.png under `dir` (recursively, sorted by path).
  static texture_set from_folder(const std::filesystem::path& dir) {
    GRCNN_CHECK(std::filesystem::is_directory(dir), io_error, "textures: '", dir.string(), "' is not a folder");
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
      if (e.is_regular_file() && has_image_extension(e.path())) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    GRCNN_CHECK(!files.empty(), io_error, "textures: '", dir.string(), "' holds no .jpg, .jpeg or .png file");
    texture_set t;
    for (const auto& f : files) t.add(f.string(), decode_image(f));
    return t;
  }
  // The phase-randomised counterpart of every image of `source` (seeded: the same set every run).
  static texture_set phase_noise(const texture_set& source, phase::mode m, std::uint64_t seed) {
    texture_set t;
    std::mt19937_64 rng(seed);
    for (std::size_t i = 0; i < source.size(); ++i)
      t.add("noise(" + source.name(i) + ")", phase::randomise(source.image(i), m, rng));
    return t;
  }

  void add(std::string name, rgb_image img) {
    GRCNN_CHECK(img.width > 0 && img.height > 0, shape_error, "textures: '", name, "' is empty");
    names_.push_back(std::move(name));
    images_.push_back(std::move(img));
  }
  std::size_t size() const { return images_.size(); }
  const std::string& name(std::size_t i) const { return names_.at(i); }
  const rgb_image& image(std::size_t i) const { return images_.at(i); }

  // Texture i resized to width x height, normalised with mean/std (HWC f32); computed once per size.
  std::shared_ptr<const std::vector<float>> normalized(std::size_t i, int width, int height, const std::array<float, 3>& mean,
                                                       const std::array<float, 3>& stddev) const {
    const key k{i, width, height, mean, stddev};
    std::lock_guard lock(*mu_);
    auto it = cache_->find(k);
    if (it != cache_->end()) return it->second;
    const rgb_image& src = images_.at(i);
    const rgb_image r = src.width == width && src.height == height ? src : resize_bilinear(src, width, height);
    auto v = std::make_shared<std::vector<float>>(r.pixels.size());
    for (std::size_t p = 0; p < v->size(); ++p)
      (*v)[p] = (static_cast<float>(r.pixels[p]) / 255.0f - mean[p % 3]) / stddev[p % 3];
    cache_->emplace(k, v);
    return v;
  }

 private:
  using key = std::tuple<std::size_t, int, int, std::array<float, 3>, std::array<float, 3>>;
  std::vector<std::string> names_;
  std::vector<rgb_image> images_;
  std::shared_ptr<std::mutex> mu_ = std::make_shared<std::mutex>();
  std::shared_ptr<std::map<key, std::shared_ptr<const std::vector<float>>>> cache_ =
      std::make_shared<std::map<key, std::shared_ptr<const std::vector<float>>>>();
};

// The blend weight ranges of the authors' code.
inline constexpr std::pair<double, double> texture_alpha{0.005, 0.5}, noise_alpha{0.05, 0.5};

// A loader view blending each sample with a random member of `set` (a ~ U(alpha.first, alpha.second)).
inline view_fn blend_view(std::shared_ptr<const texture_set> set, std::pair<double, double> alpha) {
  GRCNN_CHECK(set && set->size() > 0, error, "blend view: no texture");
  GRCNN_CHECK(alpha.first >= 0 && alpha.first <= alpha.second && alpha.second <= 1, error, "blend view: alpha range [",
              alpha.first, ", ", alpha.second, "] outside [0, 1]");
  return [set, alpha](const rgb_image& img, augment_rng& rng, const std::array<float, 3>& mean, const std::array<float, 3>& stddev) {
    const std::size_t i = std::uniform_int_distribution<std::size_t>(0, set->size() - 1)(rng);
    const auto a = static_cast<float>(std::uniform_real_distribution<double>(alpha.first, alpha.second)(rng));
    const auto t = set->normalized(i, img.width, img.height, mean, stddev);
    std::vector<float> out(img.pixels.size());
    for (std::size_t p = 0; p < out.size(); ++p) {
      const float x = (static_cast<float>(img.pixels[p]) / 255.0f - mean[p % 3]) / stddev[p % 3];
      out[p] = (1.0f - a) * x + a * (*t)[p];
    }
    return out;
  };
}

}  // namespace grcnn::data
