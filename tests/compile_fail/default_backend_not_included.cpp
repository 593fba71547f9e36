// Must not compile: an op run on the default backend (oneDNN) in a translation unit that includes only
// the op headers. The default backend is opt-in (<grcnn/backends/default.hpp>); the op headers declare
// it, and the dispatch names the header to include. With the header included it compiles.
#ifdef GRCNN_EXPECT_OK
#include <grcnn/backends/default.hpp>
#endif
#include <grcnn/ops/elementwise.hpp>

int main() {
  const grcnn::autograd::variable x(grcnn::tensor::zeros({1, 1, 2, 2}, grcnn::dtype::f32));
  return grcnn::ops::relu(x).value().dim(0) == 1 ? 0 : 1;
}
