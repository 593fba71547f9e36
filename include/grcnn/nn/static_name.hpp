#pragma once
// A name computed in constant expressions ("layer2" + ".iter_" + 3 + ".8"): a fixed-capacity string
// value, usable in static_assert, as a template argument (it is a structural type) and at run time.
// Longer than its capacity is a compile error where it is evaluated at compile time.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "grcnn/nn/fixed_string.hpp"

namespace grcnn::nn {

struct static_name {
  static constexpr std::size_t capacity = 63;
  char chars[capacity + 1]{};
  std::size_t length = 0;

  constexpr static_name() = default;
  constexpr static_name(std::string_view s) { append(s); }  // NOLINT: implicit from literals by design
  constexpr static_name(const char* s) : static_name(std::string_view(s)) {}
  template <std::size_t N>
  constexpr static_name(const fixed_string<N>& s) : static_name(s.view()) {}

  constexpr static_name& append(std::string_view s) {
    for (char c : s) {
      if (length == capacity) throw std::length_error("grcnn: a graph name is longer than static_name's 63 characters");
      chars[length++] = c;
    }
    return *this;
  }
  constexpr static_name& append(int v) {
    char digits[12]{};
    int n = 0;
    const bool negative = v < 0;
    unsigned u = negative ? 0u - static_cast<unsigned>(v) : static_cast<unsigned>(v);
    do digits[n++] = static_cast<char>('0' + u % 10); while ((u /= 10) != 0);
    if (negative) append("-");
    while (n > 0) {
      const char c[2] = {digits[--n], 0};
      append(std::string_view(c, 1));
    }
    return *this;
  }
  constexpr std::string_view view() const { return {chars, length}; }
  std::string str() const { return std::string(view()); }
  constexpr bool empty() const { return length == 0; }
  friend constexpr bool operator==(const static_name& a, const static_name& b) { return a.view() == b.view(); }
};

// "a" + "." + "b", or the other one where one is empty (PyTorch's module path join).
constexpr static_name dotted(const static_name& a, std::string_view b) {
  static_name r = a;
  if (!r.empty() && !b.empty()) r.append(".");
  r.append(b);
  return r;
}
constexpr static_name dotted(const static_name& a, std::string_view b, int i) {
  static_name r = dotted(a, b);
  r.append(i);
  return r;
}

// FNV-1a of a name: a cheap first comparison for the graph's compile-time lookups.
constexpr std::uint64_t name_hash(const static_name& s) {
  std::uint64_t h = 14695981039346656037ull;
  for (std::size_t i = 0; i < s.length; ++i) h = (h ^ static_cast<unsigned char>(s.chars[i])) * 1099511628211ull;
  return h;
}

// Edit distance, for "did you mean" lists of names.
constexpr std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::size_t row[static_name::capacity + 2]{};
  if (b.size() > static_name::capacity) b = b.substr(0, static_name::capacity);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      const std::size_t substitute = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      row[j] = std::min(std::min(row[j] + 1, row[j - 1] + 1), substitute);
      diagonal = up;
    }
  }
  return row[b.size()];
}

}  // namespace grcnn::nn
