#pragma once
// Counter-based standard normal draws. Philox4x32-10 (Salmon et al. 2011, the Random123 generator that
// cuRAND and PyTorch's CUDA generator also use) turns a 128-bit counter and a 64-bit key into four
// random words; Box-Muller turns them into four normals. Each draw is a pure function of its position,
// so a noise map is the same on every backend, in every layout and at every batch size, and is drawn
// in parallel without generator state. Written once for host loops and CUDA kernels, in branch-free
// float arithmetic without libm (libm's errno paths stop GCC from vectorising the host loop); the
// device then gives the same values up to FMA contraction.
#include <cstdint>
#include <cstring>

#include "grcnn/core/host_device.hpp"

namespace grcnn::philox {

struct block {
  std::uint32_t v[4];
};
struct normals {
  float v[4];
};

GRCNN_HD_INLINE std::uint32_t bits_of(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
#endif
}
GRCNN_HD_INLINE float float_of(std::uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
#endif
}

// Philox4x32 with 10 rounds: counter c, key (k0, k1). Checked against Random123's known answers.
GRCNN_HD_INLINE block philox4x32_10(block c, std::uint32_t k0, std::uint32_t k1) {
// Fully unrolled: a loop left in the body would keep GCC from vectorising the draws.
#if defined(__CUDA_ARCH__)
#pragma unroll
#elif defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#pragma GCC unroll 10
#endif
  for (int r = 0; r < 10; ++r) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(0xD2511F53u) * c.v[0];
    const std::uint64_t p1 = static_cast<std::uint64_t>(0xCD9E8D57u) * c.v[2];
    c = block{{static_cast<std::uint32_t>(p1 >> 32) ^ c.v[1] ^ k0, static_cast<std::uint32_t>(p1),
               static_cast<std::uint32_t>(p0 >> 32) ^ c.v[3] ^ k1, static_cast<std::uint32_t>(p0)}};
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c;
}

// A word as a float in (0, 1): its top 23 bits with a half-step offset (a logarithm's argument, never
// 0 or 1); or in [0, 1): its top 24 bits (a fraction of a turn). Both exact in float.
GRCNN_HD_INLINE float open_unit(std::uint32_t w) { return (static_cast<float>(w >> 9) + 0.5f) * (1.0f / 8388608.0f); }
GRCNN_HD_INLINE float half_open_unit(std::uint32_t w) { return static_cast<float>(w >> 8) * (1.0f / 16777216.0f); }

// ln x for a positive normal float: exponent and mantissa split, Cephes' logf polynomial on
// [sqrt(1/2), sqrt(2)); within 1e-7 relative of the exact value over (0, 1).
GRCNN_HD_INLINE float log_positive(float x) {
  const std::uint32_t b = bits_of(x);
  int e = static_cast<int>(b >> 23) - 126;  // x = m * 2^e with m in [0.5, 1)
  const float m = float_of((b & 0x7fffffu) | 0x3f000000u);
  const bool low = m < 0.70710678f;
  e -= low ? 1 : 0;
  const float f = low ? m + m - 1.0f : m - 1.0f;
  const float z = f * f;
  float y = ((((((((7.0376836292e-2f * f - 1.1514610310e-1f) * f + 1.1676998740e-1f) * f - 1.2420140846e-1f) * f +
                 1.4249322787e-1f) * f - 1.6668057665e-1f) * f + 2.0000714765e-1f) * f - 2.4999993993e-1f) * f +
             3.3333331174e-1f) * f * z;
  const float fe = static_cast<float>(e);
  y += -2.12194440e-4f * fe;
  y += -0.5f * z;
  return f + y + 0.693359375f * fe;
}

// sqrt x for a positive normal float: the bit-level reciprocal-root estimate, three Newton steps and
// a final correction; within 1e-7 relative.
GRCNN_HD_INLINE float sqrt_positive(float x) {
  float y = float_of(0x5f375a86u - (bits_of(x) >> 1));
  y = y * (1.5f - 0.5f * x * y * y);
  y = y * (1.5f - 0.5f * x * y * y);
  y = y * (1.5f - 0.5f * x * y * y);
  const float s = x * y;
  return s + 0.5f * y * (x - s * s);
}

// sin and cos of 2 pi u for u in [0, 1): the nearest quarter turn is split off exactly, the rest
// (|a| <= pi/4) goes through Cephes' sinf/cosf polynomials; within 1e-7 absolute.
GRCNN_HD_INLINE void sincos_turns(float u, float& s, float& c) {
  const int q = static_cast<int>(4.0f * u + 0.5f);
  const float a = (u - 0.25f * static_cast<float>(q)) * 6.28318530717958647692f;
  const float z = a * a;
  const float sp = ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * a + a;
  const float cp = ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f) * z * z -
                   0.5f * z + 1.0f;
  const int k = q & 3;
  const float ss = (k & 1) ? cp : sp, cc = (k & 1) ? sp : cp;
  s = (k & 2) ? -ss : ss;
  c = ((k + 1) & 2) ? -cc : cc;
}

// Four standard normals of group `group` of sample `sample` in the stream (seed, stream): counter
// (group, sample, stream), key seed; Box-Muller on words (0, 1) and (2, 3). |z| <= sqrt(2 ln 2^24) = 5.77.
GRCNN_HD_INLINE normals normal4(std::uint64_t seed, std::uint64_t stream, std::uint32_t sample, std::uint32_t group) {
  const block w = philox4x32_10(
      block{{group, sample, static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)}},
      static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
  const float r0 = sqrt_positive(-2.0f * log_positive(open_unit(w.v[0])));
  const float r1 = sqrt_positive(-2.0f * log_positive(open_unit(w.v[2])));
  float s0, c0, s1, c1;
  sincos_turns(half_open_unit(w.v[1]), s0, c0);
  sincos_turns(half_open_unit(w.v[3]), s1, c1);
  return normals{{r0 * c0, r0 * s0, r1 * c1, r1 * s1}};
}

}  // namespace grcnn::philox
