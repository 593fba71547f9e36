// grcnn-make-noise: turns a folder of texture images into its phase-randomised counterpart (the noise
// images of the paper's V1 stage), keeping the folder structure:
//   grcnn-make-noise --in textures/ --out noise/ --mode uniform --size 224 --seed 0
// Each image (optionally resized to size x size first, as the authors pre-resize to 224) keeps its
// amplitude spectrum; its phase is replaced (grcnn/data/phase_noise.hpp). Output files are PNG named
// <mode>_<stem>.png. Deterministic for a seed: image k uses the generator seeded with (seed, k).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include <grcnn/data/loader.hpp>
#include <grcnn/data/phase_noise.hpp>
#include <grcnn/data/transforms.hpp>

#include "tool_main.hpp"

using namespace grcnn;

namespace {

int run_tool(int argc, char** argv) {
  CLI::App app{"grcnn-make-noise: phase-randomised noise images from a folder of textures"};
  std::string in, out, mode_name = "uniform";
  int size = 0;
  std::uint64_t seed = 0;
  app.add_option("--in", in, "folder of texture images (.jpg/.jpeg/.png, searched recursively)")->required()->check(CLI::ExistingDirectory);
  app.add_option("--out", out, "output folder (created; the input's sub-folders are kept)")->required();
  app.add_option("--mode", mode_name, "uniform | permute (the authors' package: 3-D FFT over H, W and colour) | per-channel (2-D FFT per channel, one shared random phase: each channel's amplitude spectrum and the colour correlations kept)")
      ->check(CLI::IsMember({"uniform", "permute", "per-channel"}))->capture_default_str();
  app.add_option("--size", size, "resize every image to size x size first (0: keep its size)")->check(CLI::NonNegativeNumber);
  app.add_option("--seed", seed, "seed")->capture_default_str();
  data::image_limits limits = data::default_image_limits();
  tools::add_limit_options(app, limits, /*arrays=*/false);
  CLI11_PARSE(app, argc, argv);
  data::set_default_image_limits(limits);
  {
    const data::phase::mode m = data::phase::parse_mode(mode_name);
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::recursive_directory_iterator(in))
      if (e.is_regular_file() && data::has_image_extension(e.path())) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    if (files.empty()) {
      std::cerr << "grcnn-make-noise: '" << in << "' holds no .jpg, .jpeg or .png file\n";
      return 1;
    }
    for (std::size_t k = 0; k < files.size(); ++k) {
      tools::activity doing("making noise from '" + files[k].string() + "'");
      data::rgb_image img = data::decode_image(files[k]);
      if (size > 0 && (img.width != size || img.height != size)) img = data::resize_bilinear(img, size, size);
      std::mt19937_64 rng(data::mix_seed(seed, k, 0x6e6f697365ull));
      const data::rgb_image noise = data::phase::randomise(img, m, rng);
      const auto rel = std::filesystem::relative(files[k], in);
      const auto dst = std::filesystem::path(out) / rel.parent_path() / (mode_name + "_" + rel.stem().string() + ".png");
      std::filesystem::create_directories(dst.parent_path());
      data::write_png(dst, noise);
      std::printf("%s -> %s (%dx%d)\n", files[k].string().c_str(), dst.string().c_str(), noise.width, noise.height);
    }
    std::printf("%zu noise images in %s\n", files.size(), out.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return tools::guarded_main("grcnn-make-noise", [&] { return run_tool(argc, argv); });
}
