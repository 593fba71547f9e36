#pragma once
// The VOneBlock's noise as tools set it: "fresh" (a new draw on every forward, training and
// evaluation alike: VOneNet's behaviour), "off", or a number that fixes the noise to that seed.
#include <charconv>
#include <string>
#include <string_view>

#include "grcnn/nn/network.hpp"

namespace grcnn::models {

struct vone_noise_setting {
  enum class kind { fresh, fixed, off } mode = kind::fresh;
  std::uint64_t seed = 0;
};

inline vone_noise_setting parse_vone_noise(std::string_view s) {
  if (s == "fresh") return {};
  if (s == "off") return {vone_noise_setting::kind::off, 0};
  std::uint64_t seed = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), seed);
  GRCNN_CHECK(!s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size(), error, "VOneBlock noise '", s,
              "' is neither fresh, off nor a seed (a non-negative integer)");
  return {vone_noise_setting::kind::fixed, seed};
}

// Applies the setting to the network's VOneBlock; a setting other than fresh on a network without
// one is an error (it would silently do nothing).
template <class Net>
void apply_vone_noise(Net& net, const vone_noise_setting& s) {
  if constexpr (Net::template count_modules<nn::vone_module> == 1) {
    auto& v = net.template module<nn::vone_module>();
    if (s.mode == vone_noise_setting::kind::off) v.disable_noise();
    else if (s.mode == vone_noise_setting::kind::fixed) v.fix_noise(s.seed);
    else v.release_noise();
  } else {
    GRCNN_CHECK(s.mode == vone_noise_setting::kind::fresh, error,
                "VOneBlock noise set (off or a seed) on an architecture without a VOneBlock (vone_grcnn55 has one)");
  }
}

}  // namespace grcnn::models
