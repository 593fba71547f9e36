#pragma once
// A string usable as a template argument, so layer names are part of layer types (and of compiler
// diagnostics).
#include <algorithm>
#include <cstddef>
#include <string_view>

namespace grcnn::nn {

template <std::size_t N>
struct fixed_string {
  char value[N]{};
  constexpr fixed_string(const char (&s)[N]) { std::copy_n(s, N, value); }
  constexpr std::string_view view() const { return {value, N - 1}; }
};

}  // namespace grcnn::nn
