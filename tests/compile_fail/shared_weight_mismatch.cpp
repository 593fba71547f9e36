// A GRCL that shares another's recurrent weights must have the same shapes: stage_2 (256 channels) cannot
// reuse stage_1's conv_g_r (128 channels). The diagnostic names the slot and both shapes.
#include <grcnn/nn/network.hpp>

using namespace grcnn::nn;
#ifdef GRCNN_EXPECT_OK
constexpr int planes2 = 32;  // 32 * 4 = 128 channels, as stage_1
#else
constexpr int planes2 = 64;
#endif
using shared_topology = topology<cifar_stem<64>, grcl<"stage_1", cifar_grcl({.in = 64, .planes = 32, .iterations = 2, .downsample = false})>,
                                 grcl<"stage_2", cifar_grcl({.in = 128, .planes = planes2, .iterations = 2, .downsample = false}), "stage_1">,
                                 classifier_head<planes2 * 4, 0>>;

int main() {
  network<shared_topology> net(10);
  return net.parameter_count() > 0 ? 0 : 1;
}
