#pragma once
// Layer descriptions as small named types. Channel counts, kernels, strides, iterations and options
// are compile-time values; batch, height and width stay run-time. A network is a flat list of these
// (nn::topology), checked at compile time.
#include <string_view>

#include "grcnn/core/error.hpp"
#include "grcnn/nn/fixed_string.hpp"

namespace grcnn::nn {

// Which original code a block follows: ImageNet (groups 32, BN momentum 0.1, conv_g_r left at
// PyTorch's default init, SK branches 3x3 dilation 1 and 2 with r = 16) or CIFAR (groups 16, momentum
// 0.05, conv_g_r ~ N(0, 0.01), an unused d_bn_1e registered, SK branches 3x3 and 1x1 with r = 32).
enum class code_style { imagenet, cifar };
enum class middle_kind { conv3x3, selective_kernel };

struct grcl_options {
  int in_channels = 64;
  int planes = 64;        // p: bottleneck width; the block outputs E = p * expansion channels
  int iterations = 3;     // T
  bool downsample = true; // the two-branch transition that halves the resolution
  int expansion = 4;
  int groups = 32;        // of conv_f, conv_g_f, conv_g_r (and SK branches)
  middle_kind middle = middle_kind::conv3x3;
  bool weight_sharing = false;  // one 1x1-3x3-1x1 bottleneck reused by every iteration (BN not shared)
  code_style style = code_style::imagenet;
  double bn_momentum = 0.1;

  constexpr int out_channels() const { return planes * expansion; }
};

// What a published GRCL varies, by name (designated initialisers); the rest follows from the code style:
//   imagenet_grcl({.in = 64, .planes = 64, .iterations = 3, .sk = true})
struct grcl_shape {
  int in = 64;
  int planes = 64;
  int iterations = 3;
  bool downsample = true;  // end with the transition that halves the resolution
  bool sk = false;         // selective-kernel middle convolution (expansion 2 instead of 4)
  bool share = false;      // one bottleneck reused by every iteration
};

constexpr grcl_options imagenet_grcl(grcl_shape s) {
  return {s.in, s.planes, s.iterations, s.downsample, s.sk ? 2 : 4, 32,
          s.sk ? middle_kind::selective_kernel : middle_kind::conv3x3, s.share, code_style::imagenet, 0.1};
}
constexpr grcl_options cifar_grcl(grcl_shape s) {
  return {s.in, s.planes, s.iterations, s.downsample, s.sk ? 2 : 4, 16,
          s.sk ? middle_kind::selective_kernel : middle_kind::conv3x3, s.share, code_style::cifar, 0.05};
}
// The next stage of a published network: same code style, middle kind, sharing and groups as `previous`,
// fed by its output channels, so a stage's input is never written twice.
constexpr grcl_options next_grcl(const grcl_options& previous, int planes, int iterations, bool downsample) {
  grcl_options o = previous;
  o.in_channels = previous.out_channels();
  o.planes = planes;
  o.iterations = iterations;
  o.downsample = downsample;
  return o;
}

// A gated recurrent convolutional layer named Name (its PyTorch module name, e.g. "layer1"). SharesWith
// names an earlier GRCL whose recurrent weights this one reuses (cross-layer sharing): its conv_g_r and
// its bottleneck convolutions (iteration t's, or with weight sharing its one bottleneck); batch norms stay
// this layer's own. The shapes must agree, which the graph checks at compile time.
template <fixed_string Name, grcl_options O, fixed_string SharesWith = "">
struct grcl {
  static constexpr fixed_string name_string = Name;
  static constexpr std::string_view name = Name.view();
  static constexpr fixed_string shares_with = SharesWith;
  static constexpr grcl_options options = O;
  static constexpr int in_channels = O.in_channels;
  static constexpr int out_channels = O.out_channels();
  static_assert(O.iterations >= 1, "grcnn: a GRCL needs at least one iteration");
  static_assert(O.planes >= 1 && O.expansion >= 1, "grcnn: a GRCL needs positive planes and expansion");
  static_assert(O.in_channels % O.groups == 0, "grcnn: a GRCL's in_channels must be divisible by its groups");
  static_assert(O.out_channels() % O.groups == 0, "grcnn: a GRCL's planes * expansion must be divisible by its groups");
  static_assert(O.middle != middle_kind::selective_kernel || O.planes % O.groups == 0,
                "grcnn: a selective-kernel GRCL's planes must be divisible by its groups");
};

// ImageNet stem: conv1 (3 -> Out, 7x7, stride 2, pad 3) + bn1 + relu + maxpool (3, 2, 1) + conv2
// (Out -> Out, 3x3, pad 1). No BN/ReLU after conv2: the GRCLs are pre-activation.
template <int Out = 64>
struct imagenet_stem {
  static constexpr fixed_string name_string = "stem";
  static constexpr std::string_view name = "stem";
  static constexpr int in_channels = 3;
  static constexpr int out_channels = Out;
  static constexpr double bn_momentum = 0.1;
};

// CIFAR stem: conv_3x3 (3 -> Out, 3x3, pad 1, stride Stride: 1 in the original; 2 halves small
// inputs at once, as grcnn_small does), nothing else.
template <int Out = 64, int Stride = 1>
struct cifar_stem {
  static_assert(Stride >= 1, "grcnn: the stem's stride must be positive");
  static constexpr int stride = Stride;
  static constexpr fixed_string name_string = "stem";
  static constexpr std::string_view name = "stem";
  static constexpr int in_channels = 3;
  static constexpr int out_channels = Out;
};

// The VOneBlock stem (Dapello et al. 2020) and its 1x1 bottleneck: a fixed Gabor bank of simple and
// complex cells sampled from macaque V1 statistics (nn/gabor.hpp), the k_exc gain, stochastic noise,
// then bottleneck (simple + complex -> out_channels, trainable). Defaults are VOneNet()'s.
enum class vone_noise { none, neuronal, gaussian };
struct vone_options {
  int simple_channels = 256;
  int complex_channels = 256;
  int kernel_size = 25;  // odd; padding kernel_size / 2
  int stride = 4;
  int out_channels = 64;  // of the bottleneck
  double image_size = 224, visual_degrees = 8;  // pixels per degree = image_size / visual_degrees
  double sf_corr = 0.75, sf_max = 9, sf_min = 0;
  double k_exc = 25;
  vone_noise noise = vone_noise::neuronal;
  double noise_scale = 0.35, noise_level = 0.07;
  unsigned gabor_seed = 0;
  constexpr int channels() const { return simple_channels + complex_channels; }
};

template <vone_options O = vone_options{}>
struct vone_stem {
  static constexpr fixed_string name_string = "stem";
  static constexpr std::string_view name = "stem";
  static constexpr vone_options options = O;
  static constexpr int in_channels = 3;
  static constexpr int out_channels = O.out_channels;
  static_assert(O.simple_channels >= 0 && O.complex_channels >= 0 && O.channels() >= 1,
                "grcnn: a VOneBlock needs at least one simple or complex channel");
  static_assert(O.kernel_size >= 1 && O.kernel_size % 2 == 1, "grcnn: the VOneBlock's Gabor kernels need an odd size");
  static_assert(O.stride >= 1 && O.out_channels >= 1, "grcnn: the VOneBlock needs a positive stride and bottleneck width");
  static_assert(O.image_size > 0 && O.visual_degrees > 0, "grcnn: the VOneBlock needs a positive image size and field of view");
  static_assert(O.noise_scale > 0 && O.k_exc >= 0, "grcnn: the VOneBlock needs a positive noise scale and a non-negative k_exc");
};

// How a head with a fixed Pool x Pool window (AvgPool2d(7) in the ImageNet code, AvgPool2d(8) in the
// CIFAR code) reads a final map, chosen at run time (network::set_readout):
//   exact     the map must be Pool x Pool (the default: other input sizes are refused up front);
//   original  what the original code does: AvgPool2d(Pool) with stride Pool, which takes maps of Pool to
//             2 Pool - 1 pixels a side and averages their top-left Pool x Pool window;
//   global    the mean of the whole map, any size.
// A Pool = 0 head averages the whole map in every mode.
enum class readout { exact, original, global };
constexpr std::string_view name_of(readout r) {
  return r == readout::exact ? "exact" : r == readout::original ? "original" : "global";
}
inline readout parse_readout(std::string_view s) {
  if (s == "exact") return readout::exact;
  if (s == "original") return readout::original;
  if (s == "global") return readout::global;
  throw error(::grcnn::detail::concat("unknown readout '", s, "' (expected exact, original or global)"));
}

// Readout: lastact (BN + ReLU), avgpool (fixed Pool x Pool window, as the original code; Pool = 0
// averages the whole final map, for inputs of any size), flatten, classifier (Linear In -> classes;
// the class count is a run-time value).
template <int In, int Pool, double Momentum = 0.1>
struct classifier_head {
  static constexpr fixed_string name_string = "head";
  static constexpr std::string_view name = "head";
  static constexpr int in_channels = In;
  static constexpr int out_channels = In;  // before the classifier, whose width is run-time
  static constexpr int pool = Pool;
  static constexpr double bn_momentum = Momentum;
  static_assert(Pool >= 0, "grcnn: the classifier head's pool window must be positive, or 0 for a global average");
};

}  // namespace grcnn::nn
