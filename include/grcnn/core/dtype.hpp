#pragma once
// Element types. bf16 is stored as its upper 16 bits of an IEEE f32 and rounds to nearest even.
#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "grcnn/core/error.hpp"

namespace grcnn {

enum class dtype : std::uint8_t { f32, bf16, f64, i64 };

struct bf16 {
  std::uint16_t bits = 0;
  bf16() = default;
  explicit bf16(float f) {
    std::uint32_t u = std::bit_cast<std::uint32_t>(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {  // NaN: keep it a quiet NaN
      bits = static_cast<std::uint16_t>((u >> 16) | 0x40u);
      return;
    }
    u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
    bits = static_cast<std::uint16_t>(u >> 16);
  }
  explicit operator float() const { return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16); }
};

constexpr std::size_t size_of(dtype t) {
  switch (t) {
    case dtype::f32: return 4;
    case dtype::bf16: return 2;
    case dtype::f64: return 8;
    case dtype::i64: return 8;
  }
  return 0;
}

constexpr std::string_view name_of(dtype t) {
  switch (t) {
    case dtype::f32: return "f32";
    case dtype::bf16: return "bf16";
    case dtype::f64: return "f64";
    case dtype::i64: return "i64";
  }
  return "?";
}

template <class T>
struct dtype_of;
template <> struct dtype_of<float> { static constexpr dtype value = dtype::f32; };
template <> struct dtype_of<double> { static constexpr dtype value = dtype::f64; };
template <> struct dtype_of<bf16> { static constexpr dtype value = dtype::bf16; };
template <> struct dtype_of<std::int64_t> { static constexpr dtype value = dtype::i64; };
template <class T>
inline constexpr dtype dtype_of_v = dtype_of<T>::value;

inline bool is_floating(dtype t) { return t != dtype::i64; }

}  // namespace grcnn
