// Trains one step of a conv + BN + linear model through the installed headers and checks the loss falls.
#include <grcnn/backends/default.hpp>  // defines the default (oneDNN) backend the ops run on
#include <grcnn/ops.hpp>
#include <iostream>

int main() {
  using namespace grcnn;
  using autograd::variable;
  std::vector<float> pixels(2 * 3 * 6 * 6);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<float>((i * 37) % 11) / 11.0f - 0.5f;
  variable x(tensor::from_values(shape{2, 3, 6, 6}, pixels, dtype::f32, layout::nhwc));
  std::vector<float> weights(4 * 3 * 3 * 3);
  for (std::size_t i = 0; i < weights.size(); ++i) weights[i] = static_cast<float>((i * 13) % 7) / 7.0f - 0.4f;
  variable w(tensor::from_values(shape{4, 3, 3, 3}, weights), true), g(tensor::full({4}, 1.0), true), b(tensor::zeros({4}), true);
  variable fw(tensor::full({2, 4}, 0.1), true);
  tensor rm = tensor::zeros({4}), rv = tensor::full({4}, 1.0);
  const tensor labels = tensor::from_values<std::int64_t>({2}, std::vector<std::int64_t>{0, 1});
  double first = 0, last = 0;
  for (int step = 0; step < 2; ++step) {
    auto h = ops::batch_norm(ops::conv2d(x, w, ops::conv2d_params::square(1, 1)), g, b, rm, rv, {.fuse_relu = true});
    auto loss = ops::cross_entropy(ops::linear(ops::global_avg_pool(h), fw), labels);
    autograd::backward(loss);
    (step == 0 ? first : last) = loss.value().item();
    auto wv = fw.value().values<float>(), gv = fw.grad().values<float>();
    for (std::size_t i = 0; i < wv.size(); ++i) wv[i] -= 0.5f * gv[i];
    fw.value().assign(wv);
    fw.zero_grad();
  }
  std::cout << "consumer: loss " << first << " -> " << last << "\n";
  return last < first ? 0 : 1;
}
