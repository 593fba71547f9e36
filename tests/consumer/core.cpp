// grcnn::core alone: the default (oneDNN) backend and a ready-made model, one forward pass in eval mode.
#include <grcnn/backends/default.hpp>
#include <grcnn/models/grcnn.hpp>

#include <cmath>
#include <iostream>
#include <vector>

#include "no_foreign_headers.hpp"

int main() {
  using namespace grcnn;
  models::grcnn_small<> net(/*classes=*/10, /*seed=*/7);
  net.eval();
  std::vector<float> pixels(2 * 3 * 16 * 16);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<float>((i * 37) % 11) / 11.0f - 0.5f;
  const autograd::variable x(tensor::from_values(shape{2, 3, 16, 16}, pixels, dtype::f32, layout::nhwc));
  autograd::no_grad_guard no_grad;
  const auto logits = net.forward(x).value().values<float>();
  bool finite = logits.size() == 2 * 10;
  for (float v : logits) finite = finite && std::isfinite(v);
  std::cout << "core consumer: grcnn_small, " << net.parameter_count() << " parameters, " << logits.size()
            << " logits" << (finite ? "" : " (not all finite)") << "\n";
  return finite ? 0 : 1;
}
