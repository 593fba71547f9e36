#pragma once
// Run-time selection of a backend by the name a tool's --backend takes, for programs (the grcnn tools)
// that pick it on the command line: calls f.template operator()<Backend>() for the named backend (each
// backend's instantiation of f is made once, here). This is the top-level opt-in point: it includes the
// backends this build has, oneDNN always and CUDA where the program is compiled with GRCNN_HAVE_CUDA
// (examples/CMakeLists.txt defines it for the tools it links to grcnn::cuda).
//
//   "cpu"   oneDNN (backends::cpu)
//   "cuda"  the CUDA backend (backends::cuda); needs GRCNN_HAVE_CUDA and the grcnn::cuda library
#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "grcnn/backends/default.hpp"
#include "grcnn/core/error.hpp"
#ifdef GRCNN_HAVE_CUDA
#include "grcnn/backends/cuda/cuda.hpp"
#include "grcnn/backends/cuda/device.hpp"
#endif

namespace grcnn::backends {

namespace select_detail {

// One backend a program can name: its --backend name and its policy type.
template <class B>
struct entry {
  std::string_view name;
};

// The list: the backends this build has, in the order help texts name them.
template <class F>
decltype(auto) for_built(F&& f) {
#ifdef GRCNN_HAVE_CUDA
  return f(entry<cpu>{"cpu"}, entry<cuda>{"cuda"});
#else
  return f(entry<cpu>{"cpu"});
#endif
}

// Backends grcnn has that this build left out, with what brings each in: a request for one is told that,
// not that the name is unknown.
struct left_out {
  std::string_view name, why;
};
#ifdef GRCNN_HAVE_CUDA
inline constexpr std::array<left_out, 0> not_built{};
#else
inline constexpr std::array<left_out, 1> not_built{
    {{"cuda", "this build has no CUDA component (configure with GRCNN_ENABLE_CUDA=ON)"}}};
#endif

inline std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace select_detail

// The names of the backends this build has ("cpu", and "cuda" with the CUDA component).
inline const std::vector<std::string>& backend_names() {
  static const std::vector<std::string> names =
      select_detail::for_built([](auto... e) { return std::vector<std::string>{std::string(e.name)...}; });
  return names;
}

// Every backend name grcnn knows, built or not: what a --backend check accepts, so that a request for a
// backend this build left out gets why (unusable_reason) rather than a bare "not in {cpu}".
inline const std::vector<std::string>& known_backend_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> all = backend_names();
    for (const auto& l : select_detail::not_built) all.emplace_back(l.name);
    return all;
  }();
  return names;
}

namespace select_detail {
// What to say of a name that is not among the built backends: what the build left out, or that it is unknown.
inline std::string not_built_reason(std::string_view name) {
  for (const auto& l : not_built)
    if (name == l.name) return std::string(l.why);
  return "unknown backend; this build has: " + joined(backend_names());
}
}  // namespace select_detail

// Why the named backend cannot run on this build and machine (empty: it can): a backend left out of the
// build, a CUDA build on a machine without a usable GPU, or an unknown name. Tools print it after
// "--backend NAME: " and exit with 2 before any work.
inline std::string unusable_reason(std::string_view name) {
#ifdef GRCNN_HAVE_CUDA
  if (name == "cuda") {
    const auto probe = grcnn::cuda::probe();
    return probe.device_count > 0 ? std::string() : "no usable GPU (" + probe.reason + ")";
  }
#endif
  for (const auto& n : backend_names())
    if (name == n) return {};
  return select_detail::not_built_reason(name);
}

// What `auto` means on this build and machine: the GPU when the build has the CUDA component and the
// machine a usable device, the CPU otherwise. `note` says which device, or why not the GPU (empty in a
// build without CUDA, where there is no choice to explain).
struct auto_choice {
  std::string name, note;
};
inline auto_choice resolve_auto() {
#ifdef GRCNN_HAVE_CUDA
  const auto probe = grcnn::cuda::probe();
  if (probe.device_count > 0) return {"cuda", probe.name};
  return {"cpu", "no GPU: " + probe.reason};
#else
  return {"cpu", ""};
#endif
}

namespace select_detail {
// The first of `first, rest...` whose name is `name`.
template <class F, class B, class... Rest>
decltype(auto) call_named(std::string_view name, F& f, entry<B> first, entry<Rest>... rest) {
  if (name == first.name) return f.template operator()<B>();
  if constexpr (sizeof...(Rest) > 0) {
    return call_named(name, f, rest...);
  } else {
    throw backend_error("backend '" + std::string(name) + "': " + not_built_reason(name));
  }
}
}  // namespace select_detail

// Calls f.template operator()<B>() with B the backend named `name` ("cpu", "cuda"; backend_names()) and
// returns what it returns (the same type for every backend). An unknown name, or one this build left
// out, throws backend_error naming it and the backends this build has.
template <class F>
decltype(auto) with_backend(std::string_view name, F&& f) {
  return select_detail::for_built([&](auto... e) -> decltype(auto) { return select_detail::call_named(name, f, e...); });
}

}  // namespace grcnn::backends
