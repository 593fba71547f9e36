// Must not compile: 48 channels are not divisible by the 32 groups of the GRCL's grouped convs.
#include <grcnn/nn/topology.hpp>

using namespace grcnn::nn;
#ifdef GRCNN_EXPECT_OK
using layer = grcl<"layer1", imagenet_grcl({.in = 64, .planes = 64, .iterations = 3, .downsample = true})>;
#else
using layer = grcl<"layer1", imagenet_grcl({.in = 48, .planes = 64, .iterations = 3, .downsample = true})>;
#endif
using net = topology<imagenet_stem<layer::in_channels>, layer, classifier_head<layer::out_channels, 7>>;
static_assert(net::checked);

int main() { return 0; }
