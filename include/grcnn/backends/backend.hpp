#pragma once
// The backend surface. A backend is a policy type:
//
//   struct my_backend {
//     static constexpr std::string_view name = "...";
//     using fallback = other_backend;               // or void: who runs what this one refuses
//     static constexpr std::array<dtype, N> dtypes{...};          // element types it computes in
//     using falls_back = ops::op_list<...>;         // optional: ops it has no kernel for, by name
//   };
//
// plus one specialisation of backends::kernel<my_backend, Op> per op of ops::op_table, each with
//   static status can_implement(const typename Op::problem&);   // run-time refusal with a reason
//   forward(...) / backward(...)                                // signatures in docs/architecture.md
// The table is enforced: a backend's header ends with static_assert(complete<my_backend>), which
// fails, naming the op, for an op of the table with neither a kernel nor a place in falls_back (whose
// ops the fallback must cover in turn). Ops call dispatch<B, Op>::run, which picks B's kernel or walks
// the fallback chain; the chosen kernel type is then captured in the tape node, whose opaque payload
// carries the kernel's saved state.
#include <atomic>
#include <concepts>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>

#include "grcnn/autograd/tape.hpp"
#include "grcnn/contract/op_table.hpp"

namespace grcnn::backends {

struct status {
  bool ok = true;
  std::string reason;
  static status yes() { return {}; }
  static status no(std::string why) { return {false, std::move(why)}; }
  explicit operator bool() const { return ok; }
};

// The Auto choice, only declared here: ops, layers and networks default to it, and a translation unit that
// runs them on it includes <grcnn/backends/default.hpp>, which defines it (oneDNN). So the op headers
// pull in no backend, and a program that names its backend never compiles oneDNN's headers for nothing.
struct onednn;
using cpu = onednn;
using default_backend = cpu;

// Specialised by each backend for each op tag it implements.
template <class Backend, class Op>
struct kernel;

template <class B>
concept backend_policy = requires {
  { B::name } -> std::convertible_to<std::string_view>;
  typename B::fallback;
  B::dtypes.size();  // the element types it computes in
};

// B has a kernel for Op (kernel<B, Op> defined, with can_implement for Op's problem).
template <class B, class Op>
concept implements_op = backend_policy<B> && requires(const typename Op::problem& p) {
  { kernel<B, Op>::can_implement(p) } -> std::same_as<status>;
};

namespace table_detail {
template <class Op, class List>
struct listed : std::false_type {};
template <class Op, class... Ops>
struct listed<Op, ops::op_list<Ops...>> : std::bool_constant<(std::is_same_v<Op, Ops> || ...)> {};
}  // namespace table_detail

// B names Op as run by its fallback (B::falls_back, an ops::op_list; none when absent).
template <class B, class Op>
constexpr bool declares_fallback() {
  if constexpr (requires { typename B::falls_back; }) return table_detail::listed<Op, typename B::falls_back>::value;
  else return false;
}

// B runs Op: with its own kernel, or by naming it in falls_back with a fallback that runs it.
template <class B, class Op>
constexpr bool covers_op() {
  if constexpr (implements_op<B, Op>) return true;
  else if constexpr (declares_fallback<B, Op>() && !std::is_void_v<typename B::fallback>)
    return covers_op<typename B::fallback, Op>();
  else return false;
}

// The kernel that runs Op for B: B's own, or (declared) its fallback chain's.
template <class B, class Op>
struct kernel_choice {
  using type = kernel<B, Op>;
};
template <class B, class Op>
  requires(!implements_op<B, Op> && declares_fallback<B, Op>())
struct kernel_choice<B, Op> {
  using type = typename kernel_choice<typename B::fallback, Op>::type;
};
template <class B, class Op>
using kernel_of = typename kernel_choice<B, Op>::type;

// One op of the table against one backend: the error names both (op_check<Backend, Op> in the
// compiler's "required from" line).
template <class B, class Op>
struct op_check {
  static_assert(covers_op<B, Op>(),
                "grcnn: this backend has no kernel for an op of ops::op_table and does not name it in falls_back "
                "(the backend and the op are op_check's arguments in the compiler's instantiation line)");
  static constexpr bool ok = true;
};
template <class B, class... Ops>
constexpr bool covers_all(ops::op_list<Ops...>) {
  return (op_check<B, Ops>::ok && ...);
}
// Every op of the table has a kernel on B or a declared fallback: each backend's header asserts it.
template <class B>
inline constexpr bool complete = backend_policy<B> && covers_all<B>(ops::op_table{});

// Counts fallbacks by "backend/op: reason", so benchmarks and tests can prove none happened.
class fallback_log {
 public:
  static fallback_log& instance() {
    static fallback_log l;
    return l;
  }
  void note(std::string_view backend, std::string_view op, const std::string& reason) {
    std::lock_guard lock(mu_);
    counts_[std::string(backend) + "/" + std::string(op) + ": " + reason]++;
    total_++;
  }
  std::size_t total() const { return total_.load(); }
  std::map<std::string, std::size_t> entries() const {
    std::lock_guard lock(mu_);
    return counts_;
  }
  void reset() {
    std::lock_guard lock(mu_);
    counts_.clear();
    total_ = 0;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::size_t> counts_;
  std::atomic<std::size_t> total_{0};
};

// How a backend wants long-lived weights held. Networks convert each conv weight once through this
// (the default keeps it as it is); oneDNN answers with its preferred blocked format.
template <class Backend>
struct weight_layout {
  static tensor conv(const ops::conv2d_problem&, const tensor& w) { return w; }
};

// How a backend wants an f32 master conv weight held under mixed precision (nn/precision.hpp): it is
// cast per call and the cast keeps its order, so this is the order the 16-bit convolution receives.
// Plain by default (oneDNN reorders a plain weight into its blocked format itself); a device backend
// whose filters follow the activations answers with their order.
template <class Backend>
struct mixed_weight_order {
  static layout conv(layout) { return layout::plain; }
};

// Where a backend computes and the activation order it runs fastest in: callers (the trainer, tools)
// move their inputs there. Device backends specialise it.
template <class Backend>
struct backend_traits {
  static constexpr grcnn::device where = cpu_device;
  static constexpr layout activations = layout::nhwc;  // oneDNN's fast path; the reference takes any
};
// The activation order for activations of dtype `act`: a backend may prefer another order for its
// mixed-precision (bf16) activations, declared as backend_traits<B>::mixed_activations.
template <class Backend>
layout preferred_activations(dtype act) {
  if constexpr (requires { backend_traits<Backend>::mixed_activations; }) {
    if (act != dtype::f32 && act != dtype::f64) return backend_traits<Backend>::mixed_activations;
  }
  return backend_traits<Backend>::activations;
}
// `t` on the backend's device in its activation order (rank-4 tensors; others only move).
template <class Backend>
tensor to_backend(const tensor& t) {
  tensor r = t.to_device(backend_traits<Backend>::where);
  if (r.rank() == 4 && r.memory_layout() != backend_traits<Backend>::activations) r = r.to_layout(backend_traits<Backend>::activations);
  return r;
}

namespace table_detail {
// The policy and table checks of a defined backend; a merely declared one passes here, having had its
// one error from dispatch's first assertion.
template <class B, class Op>
constexpr bool checked_if_defined() {
  if constexpr (requires { sizeof(B); }) {
    static_assert(backend_policy<B>, "grcnn: the backend type is not a backend policy (needs `name`, `fallback`, `dtypes`)");
    if constexpr (backend_policy<B>) return op_check<B, Op>::ok;
    else return false;
  } else {
    return true;
  }
}
}  // namespace table_detail

template <class B, class Op>
struct dispatch {
  static_assert(requires { sizeof(B); },
                "grcnn: the backend is declared but not defined here: include <grcnn/backends/default.hpp> "
                "(the default, oneDNN) or the backend's own header before running an op on it");
  static_assert(table_detail::checked_if_defined<B, Op>());

  // Calls f(std::type_identity<K>{}) with K the kernel that accepts the problem.
  template <class F>
  static decltype(auto) run(const typename Op::problem& problem, F&& f) {
    if constexpr (!implements_op<B, Op>) {  // named in falls_back: the fallback's kernel, always
      return dispatch<typename B::fallback, Op>::run(problem, std::forward<F>(f));
    } else {
      return run_own(problem, std::forward<F>(f));
    }
  }

 private:
  template <class F>
  static decltype(auto) run_own(const typename Op::problem& problem, F&& f) {
    using K = kernel<B, Op>;
    status st = K::can_implement(problem);
    if (st) return f(std::type_identity<K>{});
    using FB = typename B::fallback;
    if constexpr (!std::is_void_v<FB>) {
      fallback_log::instance().note(B::name, Op::name, st.reason);
      return dispatch<FB, Op>::run(problem, std::forward<F>(f));
    } else {
      throw backend_error(detail::concat(Op::name, ": backend ", B::name, " cannot run ", problem.str(), ": ",
                                         st.reason));
    }
  }
};

}  // namespace grcnn::backends
