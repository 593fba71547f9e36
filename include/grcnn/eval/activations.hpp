#pragma once
// A model's activations to a stimulus set, as Brain-Score records them: each stimulus presented as the
// benchmark shows it (data/screen.hpp), an eval-mode forward pass in batches, named taps (PyTorch module
// names), each output flattened C, H, W row-major per stimulus. A module called once per recurrent step
// (a shared conv_g_r) keeps its last call, as Brain-Score's hooks do; every_step records each call as
// "<name>.<step>" instead. Stored as safetensors: one f32 tensor [stimuli, C, H, W] per layer, the
// stimulus ids in the metadata.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "grcnn/autograd/tape.hpp"
#include "grcnn/backends/backend.hpp"
#include "grcnn/core/error.hpp"
#include "grcnn/data/screen.hpp"
#include "grcnn/data/stimulus_set.hpp"
#include "grcnn/io/safetensors.hpp"
#include "grcnn/nn/module.hpp"

namespace grcnn::eval {

struct layer_activations {
  std::string name;
  std::vector<std::int64_t> shape;  // per stimulus, e.g. {C, H, W}
  std::vector<float> values;        // stimuli x features, row-major
  std::int64_t features() const {
    std::int64_t f = 1;
    for (auto d : shape) f *= d;
    return f;
  }
};

struct activation_set {
  std::vector<std::string> stimulus_ids;
  std::vector<layer_activations> layers;

  std::int64_t stimuli() const { return static_cast<std::int64_t>(stimulus_ids.size()); }
  const layer_activations& layer(const std::string& name) const {
    for (const auto& l : layers)
      if (l.name == name) return l;
    std::string names;
    for (const auto& l : layers) names += (names.empty() ? "" : ", ") + l.name;
    throw error("activations: no layer '" + name + "' (recorded: " + names + ")");
  }
  // The rows of the given stimulus ids, in that order (an id not recorded is an error).
  std::vector<std::int64_t> rows_of(const std::vector<std::string>& ids) const {
    std::map<std::string, std::int64_t> at;
    for (std::size_t i = 0; i < stimulus_ids.size(); ++i) at[stimulus_ids[i]] = static_cast<std::int64_t>(i);
    std::vector<std::int64_t> r;
    for (const auto& id : ids) {
      const auto it = at.find(id);
      GRCNN_CHECK(it != at.end(), error, "activations: stimulus '", id, "' was not recorded");
      r.push_back(it->second);
    }
    return r;
  }
};

struct activation_options {
  std::vector<std::string> layers;  // tap names (PyTorch module names)
  bool every_step = false;          // record each call of a module called several times
  int batch_size = 64;              // Brain-Score's
  data::screen_options screen;
};

// Runs `net` (put in eval mode here) over the stimuli. Net: an nn::network of any topology and backend.
template <class Net>
activation_set extract_activations(Net& net, const data::stimulus_set& stimuli, const activation_options& o) {
  using B = typename Net::backend;
  GRCNN_CHECK(!o.layers.empty(), error, "extract_activations: no layers requested");
  std::vector<std::string> layers;  // each name once, in the order first asked
  for (const auto& name : o.layers)
    if (std::find(layers.begin(), layers.end(), name) == layers.end()) layers.push_back(name);
  GRCNN_CHECK(o.batch_size >= 1, error, "extract_activations: batch size must be at least 1, got ", o.batch_size);
  net.eval();
  activation_set out;
  out.stimulus_ids = stimuli.ids;
  std::map<std::string, std::size_t> slot;  // output layer name -> index in out.layers
  std::map<std::string, std::map<int, tensor>> batch;  // tap name -> step -> output of this batch
  nn::tap_registry taps;
  for (const auto& name : layers)
    taps.on(name, [&batch](const std::string& n, int step, const tensor& v) {
      batch[n][step] = v.to_layout(layout::plain).to_device(cpu_device).clone();
    });
  autograd::no_grad_guard ng;
  const auto N = static_cast<std::int64_t>(stimuli.size());
  const int S = o.screen.input_size;
  for (std::int64_t b0 = 0; b0 < N; b0 += o.batch_size) {
    const auto n = std::min<std::int64_t>(o.batch_size, N - b0);
    tensor x = tensor::empty({n, 3, S, S}, dtype::f32, layout::nhwc);
    for (std::int64_t i = 0; i < n; ++i)
      data::write_normalized(data::present_stimulus(data::decode_image(stimuli.paths[static_cast<std::size_t>(b0 + i)]), o.screen),
                             x, i);
    batch.clear();
    net.forward(autograd::variable(backends::to_backend<B>(x)), &taps);
    for (const auto& name : layers) {
      const auto it = batch.find(name);
      GRCNN_CHECK(it != batch.end() && !it->second.empty(), error, "extract_activations: no module named '", name,
                  "' produced an output (names are PyTorch's, e.g. layer1, layer3.conv_f, layer2.iter_3.8, ",
                  "layer1.conv_g_r, classifier)");
      std::vector<std::pair<std::string, const tensor*>> outputs;
      if (o.every_step && it->second.size() > 1)
        for (const auto& [step, t] : it->second) outputs.emplace_back(name + "." + std::to_string(step), &t);
      else
        outputs.emplace_back(name, &it->second.rbegin()->second);  // the last call
      for (const auto& [out_name, t] : outputs) {
        auto s = slot.find(out_name);
        if (s == slot.end()) {
          layer_activations l;
          l.name = out_name;
          l.shape.assign(t->dims().begin() + 1, t->dims().end());
          l.values.reserve(static_cast<std::size_t>(N * l.features()));
          s = slot.emplace(out_name, out.layers.size()).first;
          out.layers.push_back(std::move(l));
        }
        auto& l = out.layers[s->second];
        GRCNN_CHECK(t->dim(0) == n && t->numel() == n * l.features(), shape_error, "extract_activations: layer '",
                    out_name, "' changed shape between batches (", t->describe(), ")");
        const auto v = t->template values<float>();
        l.values.insert(l.values.end(), v.begin(), v.end());
      }
    }
  }
  return out;
}

inline void save_activations(const std::filesystem::path& path, const activation_set& a) {
  std::vector<std::pair<std::string, tensor>> tensors;
  for (const auto& l : a.layers) {
    std::vector<std::int64_t> dims{a.stimuli()};
    dims.insert(dims.end(), l.shape.begin(), l.shape.end());
    tensor t = tensor::empty(shape::from_range(dims.begin(), dims.end()), dtype::f32, layout::plain);
    std::copy(l.values.begin(), l.values.end(), t.data<float>());
    tensors.emplace_back(l.name, std::move(t));
  }
  io::save_safetensors(path, tensors, {{"format", "grcnn-activations"}, {"stimulus_ids", nlohmann::json(a.stimulus_ids).dump()}});
}

inline activation_set load_activations(const std::filesystem::path& path) {
  const auto d = io::load_safetensors(path);
  const auto it = d.metadata.find("stimulus_ids");
  GRCNN_CHECK(it != d.metadata.end(), io_error, path.string(), ": no 'stimulus_ids' metadata (not written by save_activations)");
  activation_set a;
  try {
    a.stimulus_ids = nlohmann::json::parse(it->second).get<std::vector<std::string>>();
  } catch (const std::exception& e) {
    throw io_error(detail::concat(path.string(), ": metadata 'stimulus_ids' is not a JSON list of strings: ", e.what()));
  }
  for (const auto& [name, t] : d.entries()) {
    GRCNN_CHECK(t.type() == dtype::f32 && t.rank() >= 2 && t.dim(0) == a.stimuli(), io_error, path.string(), ": layer '",
                name, "' must be f32 [", a.stimuli(), ", ...], got ", t.describe());
    layer_activations l;
    l.name = name;
    l.shape.assign(t.dims().begin() + 1, t.dims().end());
    l.values = t.values<float>();
    a.layers.push_back(std::move(l));
  }
  return a;
}

}  // namespace grcnn::eval
