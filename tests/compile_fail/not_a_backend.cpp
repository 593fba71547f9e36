// Must not compile: an op run on a type that is not a backend policy (no name, fallback, dtypes); the
// dispatch says so in one assertion. With a real backend (reference<double>) it compiles.
#include <grcnn/backends/reference/reference.hpp>
#include <grcnn/ops/elementwise.hpp>

struct not_a_backend {};
#ifdef GRCNN_EXPECT_OK
using chosen = grcnn::backends::reference<double>;
#else
using chosen = not_a_backend;
#endif

int main() {
  const grcnn::autograd::variable x(grcnn::tensor::zeros({1, 1, 2, 2}));
  return grcnn::ops::relu<chosen>(x).value().dim(0) == 1 ? 0 : 1;
}
