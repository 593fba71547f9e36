#pragma once
// Ready-made GRCNN topologies (Wang & Hu 2021; Jianf-Wang/GRCNN), each with a configurable class count:
//   grcnn::models::grcnn55<> net(1000);  net.eval();  auto logits = net.forward(x);
#include <array>

#include "grcnn/nn/network.hpp"

namespace grcnn::models {

// ImageNet models: iterations per GRCL, planes p of layer1 (doubled per stage), plain (expansion 4) or SK
// (expansion 2), each iteration with its own bottleneck or one shared.
struct imagenet_spec {
  std::array<int, 4> iterations;
  int planes = 64;
  bool sk = false;
  bool share = false;
};
template <imagenet_spec S>
struct imagenet_stages {
  static constexpr nn::grcl_options layer1 =
      nn::imagenet_grcl({.in = 64, .planes = S.planes, .iterations = S.iterations[0], .sk = S.sk, .share = S.share});
  static constexpr nn::grcl_options layer2 = nn::next_grcl(layer1, 2 * S.planes, S.iterations[1], true);
  static constexpr nn::grcl_options layer3 = nn::next_grcl(layer2, 4 * S.planes, S.iterations[2], true);
  static constexpr nn::grcl_options layer4 = nn::next_grcl(layer3, 8 * S.planes, S.iterations[3], false);
  using type = nn::topology<nn::imagenet_stem<64>, nn::grcl<"layer1", layer1>, nn::grcl<"layer2", layer2>,
                            nn::grcl<"layer3", layer3>, nn::grcl<"layer4", layer4>,
                            nn::classifier_head<layer4.out_channels(), 7>>;
};
template <imagenet_spec S>
using imagenet_topology = typename imagenet_stages<S>::type;

using grcnn55_stages = imagenet_stages<imagenet_spec{.iterations = {3, 3, 4, 3}}>;
using grcnn55_topology = grcnn55_stages::type;
using grcnn109_topology = imagenet_topology<imagenet_spec{.iterations = {3, 3, 22, 3}}>;
using skgrcnn55_topology = imagenet_topology<imagenet_spec{.iterations = {3, 3, 4, 3}, .planes = 128, .sk = true}>;
using skgrcnn109_topology = imagenet_topology<imagenet_spec{.iterations = {3, 3, 22, 3}, .planes = 128, .sk = true}>;
using grcnn55_share_topology = imagenet_topology<imagenet_spec{.iterations = {3, 3, 4, 3}, .share = true}>;
using grcnn109_share_topology = imagenet_topology<imagenet_spec{.iterations = {3, 3, 22, 3}, .share = true}>;

// VOne-GRCNN55 (the authors' Brain-Score submission vonegrcnn_47e): VOneNet's VOneBlock with its
// defaults (256 simple + 256 complex Gabor channels, 25x25 at stride 4, neuronal noise) and the 1x1
// bottleneck to 64 channels at 56x56 replace conv1/bn1/maxpool/conv2; the GRCNN-55 body and readout
// follow. 26,836,072 parameters, 24,916,072 trainable (the Gabor banks are fixed).
using vone_grcnn55_topology =
    nn::topology<nn::vone_stem<nn::vone_options{}>, nn::grcl<"layer1", grcnn55_stages::layer1>,
                 nn::grcl<"layer2", grcnn55_stages::layer2>,
                 nn::grcl<"layer3", grcnn55_stages::layer3>,
                 nn::grcl<"layer4", grcnn55_stages::layer4>,
                 nn::classifier_head<grcnn55_stages::layer4.out_channels(), 7>>;

// CIFAR models (32x32 inputs): three GRCLs stage_1..3 with their own planes, groups 16, BN momentum 0.05.
struct cifar_spec {
  std::array<int, 3> iterations;
  std::array<int, 3> planes;
  bool sk = false;
  bool share = false;
};
template <cifar_spec S>
struct cifar_stages {
  static constexpr nn::grcl_options stage_1 =
      nn::cifar_grcl({.in = 64, .planes = S.planes[0], .iterations = S.iterations[0], .sk = S.sk, .share = S.share});
  static constexpr nn::grcl_options stage_2 = nn::next_grcl(stage_1, S.planes[1], S.iterations[1], true);
  static constexpr nn::grcl_options stage_3 = nn::next_grcl(stage_2, S.planes[2], S.iterations[2], false);
  using type = nn::topology<nn::cifar_stem<64>, nn::grcl<"stage_1", stage_1>, nn::grcl<"stage_2", stage_2>,
                            nn::grcl<"stage_3", stage_3>, nn::classifier_head<stage_3.out_channels(), 8, 0.05>>;
};
template <cifar_spec S>
using cifar_topology = typename cifar_stages<S>::type;

using grcnn56_topology = cifar_topology<cifar_spec{.iterations = {3, 5, 7}, .planes = {128, 160, 192}}>;
using grcnn56_share_topology = cifar_topology<cifar_spec{.iterations = {3, 5, 7}, .planes = {128, 160, 192}, .share = true}>;
using grcnn110_topology = cifar_topology<cifar_spec{.iterations = {6, 9, 18}, .planes = {128, 160, 192}}>;
using grcnn110_share_topology = cifar_topology<cifar_spec{.iterations = {6, 9, 18}, .planes = {128, 160, 192}, .share = true}>;
using grcnn110_sk_topology = cifar_topology<cifar_spec{.iterations = {6, 9, 18}, .planes = {192, 320, 448}, .sk = true}>;
using grcnn110_sk_share_topology =
    cifar_topology<cifar_spec{.iterations = {6, 9, 18}, .planes = {192, 320, 448}, .sk = true, .share = true}>;

// A small CIFAR-style GRCNN (194,026 parameters with 10 classes) for quick runs on 28-32 px images
// such as Fashion-MNIST (padded to 32): a 32-channel stem with stride 2 (32 -> 16: the GRCLs run at 16,
// 8 and 4 pixels), three GRCLs (p = 16, 32, 48; T = 1, 2, 2) and a global-average readout. Its two
// downsampling GRCLs need even sizes, so it takes sides 7-8, 15-16, 23-24, 31-32, ... (min_input_size()
// and accepts_side() say which; 28 itself is refused with the nearest accepted sizes).
struct grcnn_small_stages {
  static constexpr nn::grcl_options stage_1 = nn::cifar_grcl({.in = 32, .planes = 16, .iterations = 1});
  static constexpr nn::grcl_options stage_2 = nn::next_grcl(stage_1, 32, 2, true);
  static constexpr nn::grcl_options stage_3 = nn::next_grcl(stage_2, 48, 2, false);
};
using grcnn_small_topology =
    nn::topology<nn::cifar_stem<32, 2>, nn::grcl<"stage_1", grcnn_small_stages::stage_1>,
                 nn::grcl<"stage_2", grcnn_small_stages::stage_2>, nn::grcl<"stage_3", grcnn_small_stages::stage_3>,
                 nn::classifier_head<grcnn_small_stages::stage_3.out_channels(), 0, 0.05>>;

template <class B = backends::default_backend> using grcnn55 = nn::network<grcnn55_topology, B>;
template <class B = backends::default_backend> using grcnn109 = nn::network<grcnn109_topology, B>;
template <class B = backends::default_backend> using skgrcnn55 = nn::network<skgrcnn55_topology, B>;
template <class B = backends::default_backend> using skgrcnn109 = nn::network<skgrcnn109_topology, B>;
template <class B = backends::default_backend> using grcnn55_share = nn::network<grcnn55_share_topology, B>;
template <class B = backends::default_backend> using grcnn109_share = nn::network<grcnn109_share_topology, B>;
template <class B = backends::default_backend> using vone_grcnn55 = nn::network<vone_grcnn55_topology, B>;
template <class B = backends::default_backend> using grcnn56 = nn::network<grcnn56_topology, B>;
template <class B = backends::default_backend> using grcnn56_share = nn::network<grcnn56_share_topology, B>;
template <class B = backends::default_backend> using grcnn110 = nn::network<grcnn110_topology, B>;
template <class B = backends::default_backend> using grcnn110_share = nn::network<grcnn110_share_topology, B>;
template <class B = backends::default_backend> using grcnn110_sk = nn::network<grcnn110_sk_topology, B>;
template <class B = backends::default_backend> using grcnn110_sk_share = nn::network<grcnn110_sk_share_topology, B>;
template <class B = backends::default_backend> using grcnn_small = nn::network<grcnn_small_topology, B>;

}  // namespace grcnn::models
