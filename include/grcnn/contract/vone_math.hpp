#pragma once
// The VOneBlock's per-element response, written once for every backend (host loops and the CUDA
// kernel include this header; it depends on core/host_device.hpp and core/philox.hpp only). For
// channel c of an [N, C, H, W] map with S simple channels and quadrature responses a (q0) and b (q1):
//   g = relu(a) (c < S)  |  sqrt(a^2 + b^2) / sqrt(2) (c >= S);   r = k_exc * g
//   none:      y = r
//   neuronal:  t = r * scale + level;  y = relu((t + eps * sqrt(relu(t) + 1e-4) - level) / scale)
//   gaussian:  y = relu(r + eps * scale)
// (Dapello et al. 2020, vonenet/modules.py; their 10e-5 is 1e-4). The backward treats eps as a constant
// and gives the complex channel a zero gradient where a = b = 0 (PyTorch's sqrt yields NaN there).
// NaN and +-Inf propagate as in PyTorch: relu keeps NaN (x <= 0 ? 0 : x) and its gradient passes where
// its output is NaN (threshold_backward: y <= 0 ? 0 : dy).
#include <cmath>
#include <limits>
#include <type_traits>

#include "grcnn/core/host_device.hpp"
#include "grcnn/core/philox.hpp"

namespace grcnn::ops::vone_math {

enum noise_mode : int { noise_none = 0, noise_neuronal = 1, noise_gaussian = 2 };

struct coefficients {
  double k_exc = 25.0;
  int mode = noise_none;
  double scale = 0.35, level = 0.07;
};

inline constexpr double neuronal_floor = 1e-4;
inline constexpr double inv_sqrt2 = 0.70710678118654752440;

// sqrt. Host float loops use core/philox.hpp's Newton form (within 1.5e-7 relative; 0 and denormals
// give 0, infinity stays): libm's sqrt has an errno path that keeps GCC from vectorising the loop. A
// complex cell whose a^2 + b^2 is denormal (|a|, |b| below 1e-19) therefore gets a zero gradient on
// the CPU in f32, where double and the GPU give at most 0.71 dy k_exc.
template <class T>
GRCNN_HD_INLINE T sqrt_(T v) {
#if !defined(__CUDA_ARCH__)
  if constexpr (std::is_same_v<T, float>) {
    const bool tiny = v < std::numeric_limits<float>::min();
    const float r = philox::sqrt_positive(tiny ? 1.0f : v);
    return tiny ? 0.0f : (v == std::numeric_limits<float>::infinity() ? v : r);
  }
#endif
  using std::sqrt;
  return sqrt(v);
}

// The response before noise: g (without k_exc).
template <class T>
GRCNN_HD_INLINE T energy(bool simple, T a, T b) {
  return simple ? (a <= T(0) ? T(0) : a) : sqrt_(a * a + b * b) * T(inv_sqrt2);
}

template <class T>
GRCNN_HD_INLINE T forward(const coefficients& k, bool simple, T a, T b, T eps) {
  const T r = T(k.k_exc) * energy(simple, a, b);
  if (k.mode == noise_neuronal) {
    const T t = r * T(k.scale) + T(k.level);
    const T m = (t + eps * sqrt_((t <= T(0) ? T(0) : t) + T(neuronal_floor)) - T(k.level)) / T(k.scale);
    return m <= T(0) ? T(0) : m;
  }
  if (k.mode == noise_gaussian) {
    const T m = r + eps * T(k.scale);
    return m <= T(0) ? T(0) : m;
  }
  return r;
}

// d y / d r at this element (the noise stage's slope).
template <class T>
GRCNN_HD_INLINE T noise_slope(const coefficients& k, T r, T eps) {
  if (k.mode == noise_neuronal) {
    const T t = r * T(k.scale) + T(k.level);
    const T root = sqrt_((t <= T(0) ? T(0) : t) + T(neuronal_floor));
    const T m = (t + eps * root - T(k.level)) / T(k.scale);
    if (m <= T(0)) return T(0);
    return T(1) + (t <= T(0) ? T(0) : eps / (T(2) * root));
  }
  if (k.mode == noise_gaussian) return r + eps * T(k.scale) <= T(0) ? T(0) : T(1);
  return T(1);
}

// Gradients of y with respect to a and b (b's is zero for simple channels), given dy.
template <class T>
GRCNN_HD_INLINE void backward(const coefficients& k, bool simple, T a, T b, T eps, T dy, T& da, T& db) {
  const T g = energy(simple, a, b);
  const T dr = dy * noise_slope(k, T(k.k_exc) * g, eps);
  const T dg = dr * T(k.k_exc);
  if (simple) {
    da = a <= T(0) ? T(0) : dg;
    db = T(0);
    return;
  }
  const T rho = sqrt_(a * a + b * b);
  if (rho == T(0)) {
    da = db = T(0);
    return;
  }
  const T s = dg * T(inv_sqrt2) / rho;
  da = s * a;
  db = s * b;
}

}  // namespace grcnn::ops::vone_math
