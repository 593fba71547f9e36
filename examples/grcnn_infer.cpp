// grcnn-infer: eval-mode inference of a ready-made GRCNN from safetensors weights.
//   grcnn-infer --arch grcnn55 --weights W.safetensors --input X.safetensors --output Y.safetensors
//               [--backend cpu] [--taps layer1,layer3.conv_f,...]
// reads tensor "input" (N, 3, H, W f32, NCHW) and writes "logits" plus every requested tap under its
// module name (NCHW f32; a module run once per iteration writes "<name>.<step>" for each step).
#include <CLI/CLI.hpp>

#include <iostream>
#include <sstream>

#include <grcnn/io/state_dict.hpp>
#include <grcnn/models/registry.hpp>

using namespace grcnn;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

template <class Topology>
int infer(const std::string& weights, const std::string& input, const std::string& output,
          const std::vector<std::string>& tap_names) {
  const io::tensor_dict w = io::load_safetensors(weights);
  const int classes = static_cast<int>(w.at("classifier.bias").dim(0));
  nn::network<Topology> net(classes);
  io::load_state_dict(net.state(), w);
  net.eval();

  const io::tensor_dict in = io::load_safetensors(input);
  const tensor& x = in.at("input");
  GRCNN_CHECK(x.rank() == 4 && x.dim(1) == 3 && x.type() == dtype::f32, shape_error, "grcnn-infer: 'input' in '", input,
              "' must be f32 [N, 3, H, W], got ", x.describe());

  nn::tap_registry taps;
  std::map<std::string, std::vector<tensor>> captured;
  for (const auto& name : tap_names)
    taps.on(name, [&captured](const std::string& n, int, const tensor& v) { captured[n].push_back(v.to_layout(layout::plain).clone()); });
  autograd::no_grad_guard ng;
  const tensor logits = net.forward(autograd::variable(x.to_layout(layout::nhwc)), &taps).value();

  std::vector<std::pair<std::string, tensor>> out{{"logits", logits}};
  for (const auto& name : tap_names) {
    const auto& list = captured[name];
    GRCNN_CHECK(!list.empty(), error, "grcnn-infer: no module named '", name, "' produced an output in ",
                "this architecture (names are PyTorch's, e.g. layer1, layer3.conv_f, layer2.iter_3.8, lastact.1)");
    if (list.size() == 1)
      out.emplace_back(name, list[0]);
    else
      for (std::size_t k = 0; k < list.size(); ++k) out.emplace_back(name + "." + std::to_string(k), list[k]);
  }
  io::save_safetensors(output, out);
  std::cout << "wrote logits " << logits.dims() << " and " << out.size() - 1 << " tap tensor(s) to " << output << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"grcnn-infer: eval-mode GRCNN inference from safetensors weights"};
  std::string arch, weights, input, output, backend = "cpu", taps;
  app.add_option("--arch", arch, "architecture")->required()->check(CLI::IsMember(models::variant_names()));
  app.add_option("--weights", weights, "safetensors weights (PyTorch state_dict names)")->required()->check(CLI::ExistingFile);
  app.add_option("--input", input, "safetensors file with tensor 'input' (N, 3, H, W) f32 NCHW")->required()->check(CLI::ExistingFile);
  app.add_option("--output", output, "safetensors file to write 'logits' and the taps to")->required();
  app.add_option("--backend", backend, "cpu (oneDNN); cuda arrives with the CUDA backend")->check(CLI::IsMember({"cpu"}));
  app.add_option("--taps", taps, "comma-separated module names whose outputs to write");
  CLI11_PARSE(app, argc, argv);
  try {
    return models::with_variant(arch, [&]<class Topology>() { return infer<Topology>(weights, input, output, split(taps)); });
  } catch (const grcnn::error& e) {
    std::cerr << "grcnn-infer: " << e.what() << "\n";
    return 1;
  }
}
