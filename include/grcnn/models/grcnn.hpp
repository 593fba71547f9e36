#pragma once
// Ready-made GRCNN topologies (Wang & Hu 2021; Jianf-Wang/GRCNN), each with a configurable class count:
//   grcnn::models::grcnn55<> net(1000);  net.eval();  auto logits = net.forward(x);
#include "grcnn/nn/network.hpp"

namespace grcnn::models {

using nn::cifar_grcl;
using nn::imagenet_grcl;

// ImageNet models: iterations per GRCL, planes p; plain (expansion 4) or SK (expansion 2).
template <int T1, int T2, int T3, int T4, int P, bool SK, bool Share>
using imagenet_topology =
    nn::topology<nn::imagenet_stem<64>, nn::grcl<"layer1", imagenet_grcl(64, P, T1, true, SK, Share)>,
                 nn::grcl<"layer2", imagenet_grcl(P * (SK ? 2 : 4), 2 * P, T2, true, SK, Share)>,
                 nn::grcl<"layer3", imagenet_grcl(2 * P * (SK ? 2 : 4), 4 * P, T3, true, SK, Share)>,
                 nn::grcl<"layer4", imagenet_grcl(4 * P * (SK ? 2 : 4), 8 * P, T4, false, SK, Share)>,
                 nn::classifier_head<8 * P * (SK ? 2 : 4), 7>>;

using grcnn55_topology = imagenet_topology<3, 3, 4, 3, 64, false, false>;
using grcnn109_topology = imagenet_topology<3, 3, 22, 3, 64, false, false>;
using skgrcnn55_topology = imagenet_topology<3, 3, 4, 3, 128, true, false>;
using skgrcnn109_topology = imagenet_topology<3, 3, 22, 3, 128, true, false>;
using grcnn55_share_topology = imagenet_topology<3, 3, 4, 3, 64, false, true>;
using grcnn109_share_topology = imagenet_topology<3, 3, 22, 3, 64, false, true>;

// VOne-GRCNN55 (the authors' Brain-Score submission vonegrcnn_47e): VOneNet's VOneBlock with its
// defaults (256 simple + 256 complex Gabor channels, 25x25 at stride 4, neuronal noise) and the 1x1
// bottleneck to 64 channels at 56x56 replace conv1/bn1/maxpool/conv2; the GRCNN-55 body and readout
// follow. 26,836,072 parameters, 24,916,072 trainable (the Gabor banks are fixed).
using vone_grcnn55_topology =
    nn::topology<nn::vone_stem<nn::vone_options{}>, nn::grcl<"layer1", imagenet_grcl(64, 64, 3, true)>,
                 nn::grcl<"layer2", imagenet_grcl(256, 128, 3, true)>, nn::grcl<"layer3", imagenet_grcl(512, 256, 4, true)>,
                 nn::grcl<"layer4", imagenet_grcl(1024, 512, 3, false)>, nn::classifier_head<2048, 7>>;

// CIFAR models (32x32 inputs): three GRCLs stage_1..3, groups 16, BN momentum 0.05.
template <int T1, int T2, int T3, int P1, int P2, int P3, bool SK, bool Share>
using cifar_topology =
    nn::topology<nn::cifar_stem<64>, nn::grcl<"stage_1", cifar_grcl(64, P1, T1, true, SK, Share)>,
                 nn::grcl<"stage_2", cifar_grcl(P1 * (SK ? 2 : 4), P2, T2, true, SK, Share)>,
                 nn::grcl<"stage_3", cifar_grcl(P2 * (SK ? 2 : 4), P3, T3, false, SK, Share)>,
                 nn::classifier_head<P3 * (SK ? 2 : 4), 8, 0.05>>;

using grcnn56_topology = cifar_topology<3, 5, 7, 128, 160, 192, false, false>;
using grcnn56_share_topology = cifar_topology<3, 5, 7, 128, 160, 192, false, true>;
using grcnn110_topology = cifar_topology<6, 9, 18, 128, 160, 192, false, false>;
using grcnn110_share_topology = cifar_topology<6, 9, 18, 128, 160, 192, false, true>;
using grcnn110_sk_topology = cifar_topology<6, 9, 18, 192, 320, 448, true, false>;
using grcnn110_sk_share_topology = cifar_topology<6, 9, 18, 192, 320, 448, true, true>;

// A small CIFAR-style GRCNN (194,026 parameters with 10 classes) for quick runs on 28-32 px images
// such as Fashion-MNIST (padded to 32): a 32-channel stem with stride 2 (32 -> 16: the GRCLs run at 16,
// 8 and 4 pixels), three GRCLs (p = 16, 32, 48; T = 1, 2, 2) and a global-average readout. Its two
// downsampling GRCLs need even sizes, so it takes sides 7-8, 15-16, 23-24, 31-32, ... (min_input_size()
// and accepts_side() say which; 28 itself is refused with the nearest accepted sizes).
using grcnn_small_topology =
    nn::topology<nn::cifar_stem<32, 2>, nn::grcl<"stage_1", cifar_grcl(32, 16, 1, true)>,
                 nn::grcl<"stage_2", cifar_grcl(64, 32, 2, true)>, nn::grcl<"stage_3", cifar_grcl(128, 48, 2, false)>,
                 nn::classifier_head<192, 0, 0.05>>;

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
