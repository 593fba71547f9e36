// The elementwise ops' kernels: ReLU, sigmoid, add, mul, the GRCL gate x + sigmoid(a + b) * y and its
// backward, fill, and the f32 <-> bf16 casts.
#include <cmath>
#include <cstdint>

#include "common.cuh"
#include "elementwise.cuh"

namespace grcnn::cuda {

using namespace detail;

namespace {

// ---- elementwise kernels (T: float or __nv_bfloat16 storage, f32 math) ----
// Their arithmetic per element (f32 between loads and stores); launch_map packs the memory accesses.
// PyTorch's ReLU: NaN stays NaN (fmaxf(x, 0) would give 0), and the gradient passes where y is NaN
// (threshold_backward: y <= 0 ? 0 : dy).
struct relu_op {
  __device__ void operator()(const float (&x)[1], float (&y)[1]) const { y[0] = x[0] <= 0.f ? 0.f : x[0]; }
};
struct relu_bwd_op {  // x: dy, y
  __device__ void operator()(const float (&x)[2], float (&y)[1]) const { y[0] = x[1] <= 0.f ? 0.f : x[0]; }
};
struct sigmoid_op {
  __device__ void operator()(const float (&x)[1], float (&y)[1]) const { y[0] = 1.f / (1.f + expf(-x[0])); }
};
struct sigmoid_bwd_op {  // x: dy, y
  __device__ void operator()(const float (&x)[2], float (&y)[1]) const { y[0] = x[0] * x[1] * (1.f - x[1]); }
};
struct mul_op {
  __device__ void operator()(const float (&x)[2], float (&y)[1]) const { y[0] = x[0] * x[1]; }
};
struct gate_op {  // x: x, a, b, y; out = x + sigmoid(a + b) * y
  __device__ void operator()(const float (&x)[4], float (&y)[1]) const {
    y[0] = x[0] + 1.f / (1.f + expf(-(x[1] + x[2]))) * x[3];
  }
};
struct gate_bwd_dy_op {  // x: dout, a, b; y: dy (no gate gradient wanted: y is not read)
  __device__ void operator()(const float (&x)[3], float (&y)[1]) const {
    y[0] = x[0] * (1.f / (1.f + expf(-(x[1] + x[2]))));
  }
};
struct gate_bwd_op {  // x: dout, a, b, y; y: dgate, dy
  __device__ void operator()(const float (&x)[4], float (&y)[2]) const {
    const float s = 1.f / (1.f + expf(-(x[1] + x[2]))), g = x[0];
    y[0] = g * x[3] * s * (1.f - s);
    y[1] = g * s;
  }
};
__global__ void k_fill(float* p, float v, std::int64_t n) {
  GRCNN_GRID_STRIDE(i, n) p[i] = v;
}
template <class From, class To>
__global__ void k_convert(const From* x, To* y, std::int64_t n) {
  GRCNN_GRID_STRIDE(i, n) st(y[i], ld(x[i]));
}

}  // namespace

#define GRCNN_LAUNCH(kernel, n, ...)                                             \
  do {                                                                           \
    GRCNN_PROFILE(#kernel);                                                      \
    if ((n) > 0) kernel<<<blocks_for(n), 256, 0, stream()>>>(__VA_ARGS__);       \
    check_last_launch(#kernel);                                                  \
  } while (0)

template <storage S>
void relu_forward(const S* x, S* y, std::int64_t n) {
  GRCNN_PROFILE("relu");
  launch_map<device_t<S>, 1, 1>("relu", relu_op{}, n, {dev(x)}, {dev(y)});
}
template <storage S>
void relu_backward(const S* dy, const S* y, S* dx, std::int64_t n) {
  GRCNN_PROFILE("relu backward");
  launch_map<device_t<S>, 2, 1>("relu backward", relu_bwd_op{}, n, {dev(dy), dev(y)}, {dev(dx)});
}
template <storage S>
void sigmoid_forward(const S* x, S* y, std::int64_t n) {
  GRCNN_PROFILE("sigmoid");
  launch_map<device_t<S>, 1, 1>("sigmoid", sigmoid_op{}, n, {dev(x)}, {dev(y)});
}
template <storage S>
void sigmoid_backward(const S* dy, const S* y, S* dx, std::int64_t n) {
  GRCNN_PROFILE("sigmoid backward");
  launch_map<device_t<S>, 2, 1>("sigmoid backward", sigmoid_bwd_op{}, n, {dev(dy), dev(y)}, {dev(dx)});
}
template <storage S>
void add_forward(const S* a, const S* b, S* y, std::int64_t n) {
  GRCNN_PROFILE("add");
  launch_map<device_t<S>, 2, 1>("add", add_op{}, n, {dev(a), dev(b)}, {dev(y)});
}
template <storage S>
void mul_forward(const S* a, const S* b, S* y, std::int64_t n) {
  GRCNN_PROFILE("mul");
  launch_map<device_t<S>, 2, 1>("mul", mul_op{}, n, {dev(a), dev(b)}, {dev(y)});
}
template <storage S>
void gated_update_forward(const S* x, const S* a, const S* b, const S* y, S* out, std::int64_t n) {
  GRCNN_PROFILE("gated update");
  launch_map<device_t<S>, 4, 1>("gated update", gate_op{}, n, {dev(x), dev(a), dev(b), dev(y)}, {dev(out)});
}
template <storage S>
void gated_update_backward(const S* dout, const S* a, const S* b, const S* y, S* dgate, S* dy, std::int64_t n) {
  GRCNN_PROFILE("gated update backward");
  if (!dgate)
    launch_map<device_t<S>, 3, 1>("gated update backward", gate_bwd_dy_op{}, n, {dev(dout), dev(a), dev(b)}, {dev(dy)});
  else
    launch_map<device_t<S>, 4, 2>("gated update backward", gate_bwd_op{}, n, {dev(dout), dev(a), dev(b), dev(y)},
                                  {dev(dgate), dev(dy)});
}
#define GRCNN_ELEMENTWISE_FOR(S)                                                                          \
  template void relu_forward<S>(const S*, S*, std::int64_t);                                             \
  template void relu_backward<S>(const S*, const S*, S*, std::int64_t);                                  \
  template void sigmoid_forward<S>(const S*, S*, std::int64_t);                                          \
  template void sigmoid_backward<S>(const S*, const S*, S*, std::int64_t);                               \
  template void add_forward<S>(const S*, const S*, S*, std::int64_t);                                    \
  template void mul_forward<S>(const S*, const S*, S*, std::int64_t);                                    \
  template void gated_update_forward<S>(const S*, const S*, const S*, const S*, S*, std::int64_t);        \
  template void gated_update_backward<S>(const S*, const S*, const S*, const S*, S*, S*, std::int64_t);
GRCNN_ELEMENTWISE_FOR(float)
GRCNN_ELEMENTWISE_FOR(bf16)
#undef GRCNN_ELEMENTWISE_FOR
void fill(float* p, float value, std::int64_t n) { GRCNN_LAUNCH(k_fill, n, p, value, n); }
void cast_f32_to_bf16(const float* x, bf16* y, std::int64_t n) { GRCNN_LAUNCH(k_convert, n, x, dev(y), n); }
void cast_bf16_to_f32(const bf16* x, float* y, std::int64_t n) { GRCNN_LAUNCH(k_convert, n, dev(x), y, n); }

}  // namespace grcnn::cuda
