#pragma once
// Training checkpoints: one safetensors file holding the model's state_dict ("model.<name>"), the
// optimizer's state ("optimizer.*") and, in the metadata, where training stands (epoch, iteration,
// global step), the trainer's RNG state and the run's settings. Written atomically (temporary file,
// fsync, rename); a folder of them is rotated (the last k kept, plus best.safetensors).
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>

#include "grcnn/io/state_dict.hpp"
#include "grcnn/train/optimizer.hpp"

namespace grcnn::train {

// Where a run stands: the next iteration to run is `iteration` of `epoch` (0-based).
struct training_position {
  long epoch = 0;
  long iteration = 0;
  long global_step = 0;
};

struct checkpoint_contents {
  training_position position;
  std::string rng_state;                     // the trainer's generator, as its stream text
  std::map<std::string, std::string> extra;  // settings and results (arch, best accuracy, ...)
};

inline void save_checkpoint(const std::filesystem::path& path, const nn::state_list& model, const optimizer& opt,
                            const checkpoint_contents& c) {
  io::tensor_dict d;
  const io::tensor_dict weights = io::state_dict(model);  // named: a temporary would die before the loop
  for (const auto& [name, t] : weights.entries()) d.add("model." + name, t);
  d.metadata = c.extra;
  opt.save_state(d, "optimizer");
  d.metadata["format"] = "grcnn-checkpoint-1";
  d.metadata["epoch"] = std::to_string(c.position.epoch);
  d.metadata["iteration"] = std::to_string(c.position.iteration);
  d.metadata["global_step"] = std::to_string(c.position.global_step);
  d.metadata["rng"] = c.rng_state;
  io::save_safetensors(path, d);
}

// The model part of a file: a checkpoint's "model.*" entries (prefix removed), or every entry of a
// plain state_dict file (e.g. converted official weights).
inline io::tensor_dict model_state_from(const io::tensor_dict& file) {
  io::tensor_dict m;
  m.origin_ = file.origin_;
  const auto fmt = file.metadata.find("format");
  const bool checkpoint = fmt != file.metadata.end() && fmt->second == "grcnn-checkpoint-1";
  for (const auto& [name, t] : file.entries()) {
    if (!checkpoint)
      m.add(name, t);
    else if (name.rfind("model.", 0) == 0)
      m.add(name.substr(6), t);
  }
  return m;
}

// Restores model and optimizer (all-or-nothing for the model) and returns the rest.
inline checkpoint_contents load_checkpoint(const std::filesystem::path& path, const nn::state_list& model, optimizer& opt) {
  io::tensor_dict d = io::load_safetensors(path);
  d.origin_ = path.string();
  const auto fmt = d.metadata.find("format");
  GRCNN_CHECK(fmt != d.metadata.end() && fmt->second == "grcnn-checkpoint-1", io_error, "checkpoint: '", path.string(),
              "' is not a grcnn training checkpoint (no format marker); use --init-weights for plain weights");
  auto number = [&](const char* key) {
    const auto it = d.metadata.find(key);
    GRCNN_CHECK(it != d.metadata.end(), io_error, "checkpoint: '", path.string(), "' lacks '", key, "'");
    try {
      std::size_t used = 0;
      const long v = std::stol(it->second, &used);
      if (used == it->second.size()) return v;
    } catch (const std::exception&) {
    }
    throw io_error("checkpoint: '" + path.string() + "' has a malformed '" + key + "': '" + it->second + "'");
  };
  checkpoint_contents c;
  c.position = {number("epoch"), number("iteration"), number("global_step")};
  c.rng_state = d.metadata.count("rng") ? d.metadata.at("rng") : "";
  c.extra = d.metadata;
  io::load_state_dict(model, model_state_from(d));
  opt.load_state(d, "optimizer");
  return c;
}

// checkpoint-<global step>.safetensors files in a folder, newest last; keeps the last `keep` of them.
class checkpoint_folder {
 public:
  checkpoint_folder(std::filesystem::path dir, int keep) : dir_(std::move(dir)), keep_(keep) {
    GRCNN_CHECK(keep >= 1, error, "checkpoints: keep at least one, got ", keep);
    std::filesystem::create_directories(dir_);
  }
  std::filesystem::path path_for(long global_step) const {
    return dir_ / ("checkpoint-" + std::to_string(global_step) + ".safetensors");
  }
  std::filesystem::path best() const { return dir_ / "best.safetensors"; }
  std::vector<std::pair<long, std::filesystem::path>> list() const {
    std::vector<std::pair<long, std::filesystem::path>> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      const std::string n = e.path().filename().string();
      constexpr std::string_view pre = "checkpoint-", post = ".safetensors";
      if (n.size() <= pre.size() + post.size() || n.rfind(pre, 0) != 0 || !n.ends_with(post)) continue;
      const std::string digits = n.substr(pre.size(), n.size() - pre.size() - post.size());
      if (digits.empty() || digits.size() > 18 ||
          !std::all_of(digits.begin(), digits.end(), [](unsigned char ch) { return std::isdigit(ch) != 0; }))
        continue;
      out.emplace_back(std::stol(digits), e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  std::filesystem::path latest() const {
    const auto l = list();
    GRCNN_CHECK(!l.empty(), io_error, "checkpoints: no checkpoint-<step>.safetensors in '", dir_.string(), "' to resume from");
    return l.back().second;
  }
  // Keeps the newest `keep` checkpoints up to step `newest` (the one just written is always kept);
  // files of later steps (left by a run resumed from an older checkpoint) are not touched.
  void rotate(long newest) const {
    auto l = list();
    std::erase_if(l, [&](const auto& e) { return e.first > newest; });
    for (std::size_t i = 0; i + static_cast<std::size_t>(keep_) < l.size(); ++i) std::filesystem::remove(l[i].second);
  }

 private:
  std::filesystem::path dir_;
  int keep_;
};

}  // namespace grcnn::train
