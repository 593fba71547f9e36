// Must not compile: layer2 declares 128 input channels but layer1 produces 64 * 4 = 256. The error must
// name the position (2) and the name ("layer2") of the offending layer. With -DGRCNN_EXPECT_OK the same
// topology is correct and must compile (the control that proves the failure is the mismatch).
#include <grcnn/nn/topology.hpp>

#ifdef GRCNN_EXPECT_OK
constexpr int layer2_in = 256;
#else
constexpr int layer2_in = 128;
#endif

using namespace grcnn::nn;
using bad = topology<imagenet_stem<64>, grcl<"layer1", imagenet_grcl({.in = 64, .planes = 64, .iterations = 3, .downsample = true})>,
                     grcl<"layer2", imagenet_grcl({.in = layer2_in, .planes = 128, .iterations = 3, .downsample = false})>, classifier_head<512, 7>>;
static_assert(bad::checked);

int main() { return 0; }
