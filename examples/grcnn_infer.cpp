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

#include <unistd.h>

#include <grcnn/backends/select.hpp>
#include <grcnn/data/class_names.hpp>
#include <grcnn/data/transforms.hpp>
#include <grcnn/io/state_dict.hpp>
#include <grcnn/models/registry.hpp>
#include <grcnn/models/vone_noise.hpp>
#include <grcnn/train/checkpoint.hpp>

#include "tool_main.hpp"

using namespace grcnn;

namespace {

// The memory a forward pass needs grows linearly with the batch and the pixels: measured on one probe
// image (the host allocator's peak during its pass) and scaled to the input, before the real pass
// allocates it. An 8192 x 8192 input would otherwise run the machine out of memory part way.
template <class Net>
double estimated_forward_bytes(Net& net, std::int64_t n, std::int64_t h, std::int64_t w) {
  // An accepted side of at least 64 when there is one (a fixed readout window may accept only a few sides).
  std::int64_t side = std::max<std::int64_t>(Net::min_input_size(), 64);
  while (side <= Net::max_checked_side && !Net::accepts_side(side)) ++side;
  if (side > Net::max_checked_side) side = Net::min_input_size();
  auto& a = host_allocator::instance();
  a.reset_peak();
  const std::size_t before = a.stats().bytes_in_use;
  nn::run_state counters;  // the probe must not advance the modules' counters (the VOneBlock's noise draws)
  net.save_run_state(counters);
  net.forward(autograd::variable(tensor::zeros({1, 3, side, side}, dtype::f32, layout::nhwc)));
  net.load_run_state(counters, "the memory probe");
  const double probe = static_cast<double>(a.stats().peak_bytes_in_use - before);
  return probe * static_cast<double>(n) * static_cast<double>(h) * static_cast<double>(w) / static_cast<double>(side * side);
}

// 75% of the machine's memory: what a forward pass may take by default.
std::int64_t default_max_forward_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<std::int64_t>(static_cast<double>(pages) * static_cast<double>(page) * 0.75)
                               : std::int64_t{16} << 30;
}

struct request {
  std::string weights, input, output, class_csv, vone_noise = "fresh", precision = "fp32", readout = "exact";
  std::vector<std::string> taps, images;
  std::int64_t max_input_pixels = 4096 * 4096;
  std::int64_t max_forward_bytes = default_max_forward_bytes();
};

// An input's size is checked before the network allocates its activations: the pixels against a limit,
// the sides against the architecture's minimum (below it no layer stack has a valid output).
void check_input_size(const tensor& x, std::int64_t max_pixels, std::int64_t min_side) {
  const std::int64_t n = x.dim(0), h = x.dim(2), w = x.dim(3);
  GRCNN_CHECK(n >= 1, shape_error, "'input' holds no image (", x.describe(), ")");
  GRCNN_CHECK(h >= min_side && w >= min_side, shape_error, "'input' is ", h, "x", w, " pixels; this architecture needs at least ",
              min_side, "x", min_side);
  std::int64_t pixels = 0;
  GRCNN_CHECK(!__builtin_mul_overflow(n, h * w, &pixels) && pixels <= max_pixels, shape_error, "'input' holds ", n, " x ", h,
              " x ", w, " pixels, above the limit of ", max_pixels, " (raise it with --max-input-pixels)");
}

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
  tools::activity reading("reading weights '" + req.weights + "'");
  // A plain state_dict or a training checkpoint's model part, as grcnn-train and grcnn-score read them.
  const io::tensor_dict w = train::model_state_from(io::load_safetensors(req.weights));
  GRCNN_CHECK(w.contains("classifier.bias"), io_error, "no 'classifier.bias' (not a GRCNN state_dict or checkpoint?)");
  const tensor& bias = w.at("classifier.bias");
  GRCNN_CHECK(bias.rank() == 1 && bias.dim(0) >= 1 && bias.dim(0) <= (std::int64_t{1} << 24), io_error,
              "'classifier.bias' is ", bias.describe(), "; a classifier needs [classes] with 1 to 2^24 classes");
  nn::network<Topology, B> net(static_cast<int>(bias.dim(0)));
  io::load_state_dict(net.state(), w);
  net.to_device(backends::backend_traits<B>::where);
  net.eval();
  net.set_precision(nn::parse_precision(req.precision));
  net.set_readout(nn::parse_readout(req.readout));
  models::apply_vone_noise(net, models::parse_vone_noise(req.vone_noise));

  tensor x;
  if (!req.images.empty()) {
    x = tensor::empty({static_cast<std::int64_t>(req.images.size()), 3, 224, 224}, dtype::f32, layout::nhwc);
    for (std::size_t i = 0; i < req.images.size(); ++i) {
      tools::activity decoding("decoding image '" + req.images[i] + "'");
      data::write_normalized(data::imagenet_eval_crop(data::decode_image(req.images[i])), x, static_cast<std::int64_t>(i));
    }
  } else {
    tools::activity reading_input("reading input '" + req.input + "'");
    const io::tensor_dict in = io::load_safetensors(req.input);
    x = in.at("input");
    GRCNN_CHECK(x.rank() == 4 && x.dim(1) == 3 && x.type() == dtype::f32, shape_error, "'input' must be f32 [N, 3, H, W], got ",
                x.describe());
    check_input_size(x, req.max_input_pixels, net.min_input_size(net.current_readout()));
    if constexpr (backends::backend_traits<B>::where == cpu_device) {  // the probe measures host memory
      autograd::no_grad_guard probe_ng;
      const double need = estimated_forward_bytes(net, x.dim(0), x.dim(2), x.dim(3));
      GRCNN_CHECK(need <= static_cast<double>(req.max_forward_bytes), shape_error, "'input' ", x.describe(),
                  " needs about ", data::limits_detail::gib(need), " for its forward pass (measured on a probe image and "
                  "scaled), above the limit of ", data::limits_detail::gib(static_cast<double>(req.max_forward_bytes)),
                  " (raise it with --max-forward-bytes, or use fewer or smaller images)");
    }
  }

  nn::tap_registry taps;
  std::map<std::string, std::vector<tensor>> captured;
  for (const auto& name : req.taps)
    taps.on(name, [&captured](const std::string& n, int, const tensor& v) {
      captured[n].push_back(v.to_layout(layout::plain).to_device(cpu_device).to_dtype(dtype::f32).clone());  // f32 under bf16 too
    });
  autograd::no_grad_guard ng;
  tools::activity running("running " + std::to_string(x.dim(0)) + " input(s) of " + std::to_string(x.dim(2)) + "x" +
                          std::to_string(x.dim(3)) + " pixels");
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
  tools::activity writing("writing '" + req.output + "'");
  io::save_safetensors(req.output, out);
  std::cout << "wrote logits " << logits.dims() << " and " << out.size() - 1 << " tap tensor(s) to " << req.output << "\n";
  return 0;
}

int run(int argc, char** argv) {
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
      ->check(CLI::IsMember(backends::known_backend_names()))
      ->capture_default_str();
  app.add_option("--precision", req.precision, "fp32 | bf16 (bf16 activations and convolutions on the f32 weights; f32 logits and taps)")
      ->check(CLI::IsMember({"fp32", "bf16"}))->capture_default_str();
  app.add_option("--readout", req.readout,
                 "exact | original | global: how the fixed AvgPool2d(7) readout (8 for CIFAR) takes the final map: "
                 "exactly 7x7 (inputs of 221-224 px for the ImageNet variants), as the original code (AvgPool2d(7) "
                 "over the top-left window of a 7-13 px map), or the mean of any map")
      ->check(CLI::IsMember({"exact", "original", "global"}))->capture_default_str();
  app.add_option("--taps", taps, "comma-separated module names whose outputs to write");
  app.add_option("--vone-noise", req.vone_noise,
                 "VOneBlock noise: fresh (a new draw per call, as VOneNet), off, or a seed that fixes it")
      ->check(parses(models::parse_vone_noise, "fresh|off|SEED"))
      ->capture_default_str();
  app.add_option("--classes-csv", req.class_csv, "ImageNet class names (class_index,wnid,class_name,...)");
  app.add_option("--max-input-pixels", req.max_input_pixels, "refuse --input tensors with more pixels (N x H x W) than this")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--max-forward-bytes", req.max_forward_bytes,
                 "refuse --input tensors whose forward pass needs more memory (CPU; default: 75% of this machine's)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  data::image_limits limits = data::default_image_limits();
  tools::add_limit_options(app, limits, /*arrays=*/false);
  CLI11_PARSE(app, argc, argv);
  data::set_default_image_limits(limits);
  if (req.input.empty() == req.images.empty()) {
    std::cerr << "grcnn-infer: give either --input FILE.safetensors or --image FILE...\n";
    return 2;
  }
  if (!req.output.empty() && std::filesystem::is_directory(req.output)) {  // before any work, not after it
    std::cerr << "grcnn-infer: --output '" << req.output << "' is a directory; give a file name\n";
    return 2;
  }
  if (!req.input.empty() && req.output.empty()) {
    std::cerr << "grcnn-infer: --input needs --output\n";
    return 2;
  }
  req.taps = tools::split_commas(taps);
  if (const std::string why = backends::unusable_reason(backend); !why.empty()) {
    std::cerr << "grcnn-infer: --backend " << backend << ": " << why << "\n";
    return 2;
  }
  return backends::with_backend(backend, [&]<class B>() {
    return models::with_variant(arch, [&]<class Topology>() { return infer<Topology, B>(req); });
  });
}

}  // namespace

int main(int argc, char** argv) {
  return tools::guarded_main("grcnn-infer", [&] { return run(argc, argv); });
}
