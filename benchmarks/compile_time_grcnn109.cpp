// The translation unit whose compile time benchmarks/compile_time.sh reports: grcnn109 forward and
// backward on the oneDNN backend (network, every op kernel, the tape), nothing else (22 iterations in layer3: 45 graph nodes).
#include <grcnn/backends/default.hpp>
#include <grcnn/models/grcnn.hpp>

int main() {
  grcnn::models::grcnn109<> net(1000);
  const grcnn::autograd::variable x(grcnn::tensor::zeros({2, 3, 224, 224}, grcnn::dtype::f32, grcnn::layout::nhwc));
  const grcnn::tensor labels = grcnn::tensor::zeros({2}, grcnn::dtype::i64);
  grcnn::autograd::backward(grcnn::ops::cross_entropy(net.forward(x), labels));
  return net.parameters().front()->grad().defined() ? 0 : 1;
}
