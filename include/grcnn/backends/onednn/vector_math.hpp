#pragma once
// Branch-free float math for our own CPU loops, written so that GCC and Clang auto-vectorise it at the
// baseline ISA. libm's expf is a call the vectoriser will not inline without -ffast-math, so a loop
// with a sigmoid in it would run one element at a time.
#include <bit>
#include <cstdint>

namespace grcnn::backends::onednn_detail {

// c ? a : b through bit masks. GCC turns a float ternary (or std::min/max, which it may not reorder
// around NaN) into branches and then vectorises nothing; the masks if-convert.
inline float select(bool c, float a, float b) {
  const std::uint32_t m = 0u - static_cast<std::uint32_t>(c);
  return std::bit_cast<float>((std::bit_cast<std::uint32_t>(a) & m) | (std::bit_cast<std::uint32_t>(b) & ~m));
}

// e^x for x in [-87, 87] (clamped outside: the result stays a normal float; NaN stays NaN), within
// 2 ulp of the exact value on that range, with or without FMA contraction (tested per vector ISA
// against libm in tests/test_conformance.cpp). Cody-Waite reduction x = n ln2 + r with |r| <= ln2/2,
// Cephes' degree-6 polynomial for e^r, and 2^n built in the exponent bits. n is rounded through an
// integer conversion (cvttps2dq), which -ffast-math cannot reassociate away as it would a
// "+ 1.5 * 2^23 - 1.5 * 2^23" rounding trick; under -ffinite-math-only a NaN input is not kept.
inline float vexp(float x) {
  const float c = select(x > 87.f, 87.f, select(x >= -87.f, x, -87.f));  // NaN -> -87: n stays in range
  const float t = c * 1.44269504088896341f;
  const float n = static_cast<float>(static_cast<std::int32_t>(t + select(t >= 0.f, 0.5f, -0.5f)));
  const float r = (c - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const auto scale = std::bit_cast<float>(static_cast<std::uint32_t>(static_cast<std::int32_t>(n) + 127) << 23);
  return select(x == x, p * scale, x);
}

// 1 / (1 + e^-z): saturates to 1 above 87 and to 1.6e-38 on [-88.72, -87] (the exact value there is
// smaller still, so the absolute error is below 2e-38); 0 below -88.72, where e^-z overflows f32 and
// PyTorch's f32 sigmoid is 0 too (sigmoid(-Inf) = 0, so 0 * Inf = NaN downstream as in PyTorch); NaN
// stays NaN.
inline float vsigmoid(float z) { return select(z < -88.72283935546875f, 0.f, 1.f / (1.f + vexp(-z))); }

}  // namespace grcnn::backends::onednn_detail
