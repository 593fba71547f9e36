#pragma once
// Element types. bf16 is stored as the upper 16 bits of an IEEE f32 and f16 as IEEE binary16; both
// convert from f32 with round to nearest even.
#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "grcnn/core/error.hpp"

namespace grcnn {

enum class dtype : std::uint8_t { f32, bf16, f64, i64, f16 };

struct bf16 {
  std::uint16_t bits = 0;
  bf16() = default;
  // Round to nearest even; a NaN stays a quiet NaN. Branch-free, so loops over it vectorise.
  explicit bf16(float f) {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
    const std::uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16, quiet_nan = (u >> 16) | 0x40u;
    bits = static_cast<std::uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
  }
  explicit operator float() const { return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16); }
};

// IEEE binary16, converted with round to nearest even (overflow to infinity, NaN kept quiet).
struct f16 {
  std::uint16_t bits = 0;
  f16() = default;
  explicit f16(float f) {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    const std::uint32_t sign = (x >> 16) & 0x8000u, exp = (x >> 23) & 0xffu;
    std::uint32_t mant = x & 0x7fffffu;
    if (exp == 0xff) {
      bits = static_cast<std::uint16_t>(sign | 0x7c00u | (mant ? 0x200u | (mant >> 13) : 0u));
      return;
    }
    const int e = static_cast<int>(exp) - 127 + 15;
    if (e >= 31) {
      bits = static_cast<std::uint16_t>(sign | 0x7c00u);
      return;
    }
    if (e <= 0) {  // subnormal half (or zero)
      if (e < -10) {
        bits = static_cast<std::uint16_t>(sign);
        return;
      }
      mant |= 0x800000u;
      const std::uint32_t shift = static_cast<std::uint32_t>(14 - e);
      std::uint32_t h = mant >> shift;
      const std::uint32_t rem = mant & ((1u << shift) - 1), halfway = 1u << (shift - 1);
      if (rem > halfway || (rem == halfway && (h & 1u))) ++h;
      bits = static_cast<std::uint16_t>(sign | h);
      return;
    }
    std::uint32_t h = sign | static_cast<std::uint32_t>(e) << 10 | (mant >> 13);
    const std::uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry may round up to infinity: correct
    bits = static_cast<std::uint16_t>(h);
  }
  explicit operator float() const {
    const std::uint32_t sign = (bits & 0x8000u) << 16, exp = (bits >> 10) & 0x1fu, man = bits & 0x3ffu;
    std::uint32_t out;
    if (exp == 0) {
      if (man == 0) {
        out = sign;
      } else {  // subnormal: renormalise
        int e = -1;
        std::uint32_t m = man;
        do {
          ++e;
          m <<= 1;
        } while ((m & 0x400u) == 0);
        out = sign | static_cast<std::uint32_t>(127 - 15 - e) << 23 | (m & 0x3ffu) << 13;
      }
    } else if (exp == 31) {
      out = sign | 0x7f800000u | man << 13;
    } else {
      out = sign | (exp - 15 + 127) << 23 | man << 13;
    }
    return std::bit_cast<float>(out);
  }
};

constexpr std::size_t size_of(dtype t) {
  switch (t) {
    case dtype::f32: return 4;
    case dtype::bf16: return 2;
    case dtype::f64: return 8;
    case dtype::i64: return 8;
    case dtype::f16: return 2;
  }
  return 0;
}

constexpr std::string_view name_of(dtype t) {
  switch (t) {
    case dtype::f32: return "f32";
    case dtype::bf16: return "bf16";
    case dtype::f64: return "f64";
    case dtype::i64: return "i64";
    case dtype::f16: return "f16";
  }
  return "?";
}

template <class T>
struct dtype_of;
template <> struct dtype_of<float> { static constexpr dtype value = dtype::f32; };
template <> struct dtype_of<double> { static constexpr dtype value = dtype::f64; };
template <> struct dtype_of<bf16> { static constexpr dtype value = dtype::bf16; };
template <> struct dtype_of<std::int64_t> { static constexpr dtype value = dtype::i64; };
template <> struct dtype_of<f16> { static constexpr dtype value = dtype::f16; };
template <class T>
inline constexpr dtype dtype_of_v = dtype_of<T>::value;

inline bool is_floating(dtype t) { return t != dtype::i64; }

}  // namespace grcnn
