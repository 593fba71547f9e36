// grcnn-infer: eval-mode inference of a ready-made GRCNN from safetensors weights.
//   grcnn-infer --arch grcnn55 --weights W.safetensors --input X.safetensors --output Y.safetensors
//               [--backend cpu|cuda] [--precision fp32|bf16] [--taps layer1,layer3.conv_f,...]
// reads tensor "input" (N, 3, H, W f32, NCHW) and writes "logits" plus every requested tap under its
// module name (NCHW f32; a module run once per iteration writes "<name>.<step>" for each step).
//   grcnn-infer --arch grcnn55 --weights W.safetensors --image a.jpg b.png ...
// decodes JPEG/PNG files, applies the ImageNet evaluation preprocessing (Resize 256, CenterCrop 224,
// Normalize; PIL-exact) and prints the top-5 classes with their names.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <sstream>

#ifdef GRCNN_HAVE_CUDA
#include <grcnn/backends/cuda/cuda.hpp>
#include <grcnn/backends/cuda/device.hpp>
#endif
#include <grcnn/data/class_names.hpp>
#include <grcnn/data/transforms.hpp>
#include <grcnn/io/state_dict.hpp>
#include <grcnn/models/registry.hpp>
#include <grcnn/models/vone_noise.hpp>

using namespace grcnn;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

struct request {
  std::string weights, input, output, class_csv, vone_noise = "fresh", precision = "fp32";
  std::vector<std::string> taps, images;
};

// A CLI11 validator from a parser that throws.
template <class Parse>
CLI::Validator parses(Parse parse, std::string what) {
  return CLI::Validator(
      [parse](std::string& v) {
        try {
          parse(v);
          return std::string();
        } catch (const std::exception& e) {
          return std::string(e.what());
        }
      },
      what);
}

// Top-5 of each image's logits, with ImageNet class names when the model has 1000 classes.
void print_top5(const tensor& logits, const std::vector<std::string>& images, const std::string& class_csv) {
  const auto K = logits.dim(1);
  std::vector<data::imagenet_class> names;
  if (K == 1000) names = data::read_imagenet_classes(class_csv);
  const auto v = logits.values<float>();
  for (std::size_t i = 0; i < images.size(); ++i) {
    const float* row = v.data() + i * static_cast<std::size_t>(K);
    float mx = row[0];
    for (std::int64_t k = 1; k < K; ++k) mx = std::max(mx, row[k]);
    double z = 0;
    for (std::int64_t k = 0; k < K; ++k) z += std::exp(static_cast<double>(row[k] - mx));
    std::vector<std::int64_t> order(static_cast<std::size_t>(K));
    std::iota(order.begin(), order.end(), 0);
    const auto top = std::min<std::int64_t>(5, K);
    std::partial_sort(order.begin(), order.begin() + top, order.end(), [&](auto a, auto b) { return row[a] > row[b]; });
    std::cout << images[i] << "\n";
    for (std::int64_t r = 0; r < top; ++r) {
      const auto k = order[static_cast<std::size_t>(r)];
      std::printf("  %d. %6.2f%%  class %4lld  %s\n", static_cast<int>(r + 1), 100.0 * std::exp(row[k] - mx) / z,
                  static_cast<long long>(k), names.empty() ? "" : names[static_cast<std::size_t>(k)].name.c_str());
    }
  }
}

template <class Topology, class B>
int infer(const request& req) {
  const io::tensor_dict w = io::load_safetensors(req.weights);
  const int classes = static_cast<int>(w.at("classifier.bias").dim(0));
  nn::network<Topology, B> net(classes);
  io::load_state_dict(net.state(), w);
  net.to_device(backends::backend_traits<B>::where);
  net.eval();
  net.set_precision(nn::parse_precision(req.precision));
  models::apply_vone_noise(net, models::parse_vone_noise(req.vone_noise));

  tensor x;
  if (!req.images.empty()) {
    x = tensor::empty({static_cast<std::int64_t>(req.images.size()), 3, 224, 224}, dtype::f32, layout::nhwc);
    for (std::size_t i = 0; i < req.images.size(); ++i)
      data::write_normalized(data::imagenet_eval_crop(data::decode_image(req.images[i])), x, static_cast<std::int64_t>(i));
  } else {
    const io::tensor_dict in = io::load_safetensors(req.input);
    x = in.at("input");
  }
  const std::string& input = req.input;
  GRCNN_CHECK(x.rank() == 4 && x.dim(1) == 3 && x.type() == dtype::f32, shape_error, "grcnn-infer: 'input' in '", input,
              "' must be f32 [N, 3, H, W], got ", x.describe());

  nn::tap_registry taps;
  std::map<std::string, std::vector<tensor>> captured;
  for (const auto& name : req.taps)
    taps.on(name, [&captured](const std::string& n, int, const tensor& v) {
      captured[n].push_back(v.to_layout(layout::plain).to_device(cpu_device).to_dtype(dtype::f32).clone());  // f32 under bf16 too
    });
  autograd::no_grad_guard ng;
  const tensor logits = net.forward(autograd::variable(backends::to_backend<B>(x)), &taps).value().to_device(cpu_device);

  if (!req.images.empty()) print_top5(logits, req.images, req.class_csv);
  if (req.output.empty()) return 0;
  std::vector<std::pair<std::string, tensor>> out{{"logits", logits}};
  for (const auto& name : req.taps) {
    const auto& list = captured[name];
    GRCNN_CHECK(!list.empty(), error, "grcnn-infer: no module named '", name, "' produced an output in ",
                "this architecture (names are PyTorch's, e.g. layer1, layer3.conv_f, layer2.iter_3.8, lastact.1)");
    if (list.size() == 1)
      out.emplace_back(name, list[0]);
    else
      for (std::size_t k = 0; k < list.size(); ++k) out.emplace_back(name + "." + std::to_string(k), list[k]);
  }
  io::save_safetensors(req.output, out);
  std::cout << "wrote logits " << logits.dims() << " and " << out.size() - 1 << " tap tensor(s) to " << req.output << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"grcnn-infer: eval-mode GRCNN inference from safetensors weights"};
  std::string arch, backend = "cpu", taps;
  request req;
  req.class_csv = GRCNN_IMAGENET_CLASSES;
  app.add_option("--arch", arch, "architecture")->required()->check(CLI::IsMember(models::variant_names()));
  app.add_option("--weights", req.weights, "safetensors weights (PyTorch state_dict names)")->required()->check(CLI::ExistingFile);
  auto* input = app.add_option("--input", req.input, "safetensors file with tensor 'input' (N, 3, H, W) f32 NCHW")
                    ->check(CLI::ExistingFile);
  auto* images = app.add_option("--image", req.images, "JPEG/PNG files: ImageNet preprocessing, prints the top-5 classes")
                     ->check(CLI::ExistingFile);
  input->excludes(images);
  app.add_option("--output", req.output, "safetensors file to write 'logits' and the taps to (required with --input)");
  app.add_option("--backend", backend, "cpu (oneDNN) or cuda (needs a build with GRCNN_ENABLE_CUDA and a GPU)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  app.add_option("--precision", req.precision, "fp32 | bf16 (bf16 activations and convolutions on the f32 weights; f32 logits and taps)")
      ->check(CLI::IsMember({"fp32", "bf16"}))->capture_default_str();
  app.add_option("--taps", taps, "comma-separated module names whose outputs to write");
  app.add_option("--vone-noise", req.vone_noise,
                 "VOneBlock noise: fresh (a new draw per call, as VOneNet), off, or a seed that fixes it")
      ->check(parses(models::parse_vone_noise, "fresh|off|SEED"))
      ->capture_default_str();
  app.add_option("--classes-csv", req.class_csv, "ImageNet class names (class_index,wnid,class_name,...)");
  CLI11_PARSE(app, argc, argv);
  if (req.input.empty() == req.images.empty()) {
    std::cerr << "grcnn-infer: give either --input FILE.safetensors or --image FILE...\n";
    return 2;
  }
  if (!req.input.empty() && req.output.empty()) {
    std::cerr << "grcnn-infer: --input needs --output\n";
    return 2;
  }
  req.taps = split(taps);
  try {
    if (backend == "cuda") {
#ifdef GRCNN_HAVE_CUDA
      if (const auto probe = grcnn::cuda::probe(); probe.device_count == 0) {
        std::cerr << "grcnn-infer: --backend cuda: no usable GPU (" << probe.reason << ")\n";
        return 2;
      }
      return models::with_variant(arch, [&]<class Topology>() { return infer<Topology, backends::cuda>(req); });
#else
      std::cerr << "grcnn-infer: --backend cuda: this build has no CUDA component (configure with GRCNN_ENABLE_CUDA=ON)\n";
      return 2;
#endif
    }
    return models::with_variant(arch, [&]<class Topology>() { return infer<Topology, backends::cpu>(req); });
  } catch (const grcnn::error& e) {
    std::cerr << "grcnn-infer: " << e.what() << "\n";
    return 1;
  }
}
