#pragma once
// A network topology: a flat list of layer descriptions. Consecutive layers are checked at compile
// time; a mismatch fails with a static_assert whose context names the layer's position and name.
#include <cstddef>
#include <tuple>
#include <utility>

#include <boost/hana/basic_tuple.hpp>
#include <boost/hana/type.hpp>

#include "grcnn/nn/specs.hpp"

namespace grcnn::nn {

template <class L>
concept layer_spec = requires {
  { L::name } -> std::convertible_to<std::string_view>;
  { L::in_channels } -> std::convertible_to<int>;
  { L::out_channels } -> std::convertible_to<int>;
};

// Instantiated for every link; the template arguments (position, name, previous out_channels, this
// in_channels) appear in the compiler's "required from" line right above the assertion.
template <std::size_t Position, fixed_string Name, int PreviousOut, int ThisIn>
struct channel_check {
  static_assert(PreviousOut == ThisIn,
                "grcnn topology: channel mismatch - the layer at this position and name expects ThisIn input "
                "channels but the previous layer produces PreviousOut (see channel_check<position, name, "
                "PreviousOut, ThisIn> in the instantiation context)");
  static constexpr bool value = PreviousOut == ThisIn;
};

template <class... Layers>
struct topology {
  static_assert(sizeof...(Layers) >= 1, "grcnn topology: a network needs at least one layer");
  static_assert((layer_spec<Layers> && ...),
                "grcnn topology: every entry must be a layer description (name, in_channels, out_channels)");
  static constexpr std::size_t size = sizeof...(Layers);
  static constexpr auto layers = boost::hana::basic_tuple<boost::hana::type<Layers>...>{};

 private:
  template <std::size_t... I>
  static constexpr bool check(std::index_sequence<I...>) {
    using list = std::tuple<Layers...>;
    return (channel_check<I + 1, std::tuple_element_t<I + 1, list>::name_string,
                          std::tuple_element_t<I, list>::out_channels,
                          std::tuple_element_t<I + 1, list>::in_channels>::value &&
            ... && true);
  }

 public:
  static constexpr bool checked = check(std::make_index_sequence<sizeof...(Layers) - 1>{});
};

}  // namespace grcnn::nn
