#pragma once
// Run-time selection of a ready-made variant by name, for tools: calls f.template operator()<Topology>()
// for the named topology (each network type is instantiated once, here).
#include <string>
#include <string_view>
#include <vector>

#include "grcnn/models/grcnn.hpp"

namespace grcnn::models {

inline const std::vector<std::string>& variant_names() {
  static const std::vector<std::string> names{"grcnn55",  "grcnn109",       "skgrcnn55",         "skgrcnn109",
                                              "grcnn55_share", "grcnn109_share", "grcnn56",      "grcnn56_share",
                                              "grcnn110", "grcnn110_share", "grcnn110_sk", "grcnn110_sk_share",
                                              "grcnn_small", "vone_grcnn55"};
  return names;
}

template <class F>
decltype(auto) with_variant(std::string_view name, F&& f) {
  if (name == "grcnn55") return f.template operator()<grcnn55_topology>();
  if (name == "grcnn109") return f.template operator()<grcnn109_topology>();
  if (name == "skgrcnn55") return f.template operator()<skgrcnn55_topology>();
  if (name == "skgrcnn109") return f.template operator()<skgrcnn109_topology>();
  if (name == "grcnn55_share") return f.template operator()<grcnn55_share_topology>();
  if (name == "grcnn109_share") return f.template operator()<grcnn109_share_topology>();
  if (name == "grcnn56") return f.template operator()<grcnn56_topology>();
  if (name == "grcnn56_share") return f.template operator()<grcnn56_share_topology>();
  if (name == "grcnn110") return f.template operator()<grcnn110_topology>();
  if (name == "grcnn110_share") return f.template operator()<grcnn110_share_topology>();
  if (name == "grcnn110_sk") return f.template operator()<grcnn110_sk_topology>();
  if (name == "grcnn110_sk_share") return f.template operator()<grcnn110_sk_share_topology>();
  if (name == "grcnn_small") return f.template operator()<grcnn_small_topology>();
  if (name == "vone_grcnn55") return f.template operator()<vone_grcnn55_topology>();
  std::string known;
  for (const auto& n : variant_names()) known += (known.empty() ? "" : ", ") + n;
  throw error("unknown architecture '" + std::string(name) + "'; known: " + known);
}

}  // namespace grcnn::models
