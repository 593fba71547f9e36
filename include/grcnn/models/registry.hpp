#pragma once
// The published variants, listed once: this list generates the run-time registry of the tools
// (variant_names, with_variant) and the PyTorch parity tests (tests/CMakeLists.txt reads the
// `variant<"name", ...>` lines below, one per line; test_model_parity.cpp registers a test per entry).
#include <string>
#include <string_view>
#include <vector>

#include "grcnn/models/grcnn.hpp"

namespace grcnn::models {

// Which independent implementation a variant's numbers are checked against.
enum class checked_against {
  grcnn_rebuild,  // tests/torch/grcnn_reference.py, the original GRCNN code rebuilt (test_model_parity)
  vonenet,        // VOneNet's own VOneBlock on the GRCNN-55 body (test_vone)
};

template <nn::fixed_string Name, class Topology, checked_against Reference = checked_against::grcnn_rebuild>
struct variant {
  static constexpr std::string_view name = Name.view();
  using topology = Topology;
  static constexpr checked_against reference = Reference;
};

template <class... Variants>
struct variant_list {
  // Calls f.template operator()<V>() for every entry, in order.
  template <class F>
  static constexpr void for_each(F&& f) {
    (f.template operator()<Variants>(), ...);
  }
};

// clang-format off
using variants = variant_list<
    variant<"grcnn55", grcnn55_topology>,
    variant<"grcnn109", grcnn109_topology>,
    variant<"skgrcnn55", skgrcnn55_topology>,
    variant<"skgrcnn109", skgrcnn109_topology>,
    variant<"grcnn55_share", grcnn55_share_topology>,
    variant<"grcnn109_share", grcnn109_share_topology>,
    variant<"grcnn56", grcnn56_topology>,
    variant<"grcnn56_share", grcnn56_share_topology>,
    variant<"grcnn110", grcnn110_topology>,
    variant<"grcnn110_share", grcnn110_share_topology>,
    variant<"grcnn110_sk", grcnn110_sk_topology>,
    variant<"grcnn110_sk_share", grcnn110_sk_share_topology>,
    variant<"grcnn_small", grcnn_small_topology>,
    variant<"vone_grcnn55", vone_grcnn55_topology, checked_against::vonenet>>;
// clang-format on

inline const std::vector<std::string>& variant_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    variants::for_each([&]<class V>() { n.emplace_back(V::name); });
    return n;
  }();
  return names;
}

namespace registry_detail {
template <class F, class V, class... Rest>
decltype(auto) pick(std::string_view name, F& f) {
  if constexpr (sizeof...(Rest) == 0) {
    if (name != V::name) {
      std::string known;
      for (const auto& n : variant_names()) known += (known.empty() ? "" : ", ") + n;
      throw error("unknown architecture '" + std::string(name) + "'; known: " + known);
    }
    return f.template operator()<typename V::topology>();
  } else {
    if (name == V::name) return f.template operator()<typename V::topology>();
    return pick<F, Rest...>(name, f);
  }
}
}  // namespace registry_detail

// Calls f.template operator()<Topology>() for the named variant's topology (each network type is
// instantiated once, here); an unknown name is an error listing the known ones.
template <class F>
decltype(auto) with_variant(std::string_view name, F&& f) {
  return [&]<class... V>(variant_list<V...>) -> decltype(auto) {
    return registry_detail::pick<F, V...>(name, f);
  }(variants{});
}

}  // namespace grcnn::models
