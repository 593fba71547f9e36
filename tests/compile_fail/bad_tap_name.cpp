// A compile-time tap whose name the topology does not have must be rejected, naming the request and the
// nearest valid names (layer2 of grcnn55 has three iterations: iter_9 does not exist).
#include <grcnn/models/grcnn.hpp>

int main() {
  grcnn::models::grcnn55<> net(10);
#ifdef GRCNN_EXPECT_OK
  net.tap<"layer2.iter_3.8">([](const grcnn::tensor&) {});
#else
  net.tap<"layer2.iter_9.8">([](const grcnn::tensor&) {});
#endif
  return 0;
}
