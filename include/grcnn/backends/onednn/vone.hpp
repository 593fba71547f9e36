#pragma once
// The VOneBlock response on the CPU: our own OpenMP pass (oneDNN has no such primitive) over plain
// or channels-last maps, in f32 arithmetic for f32 and bf16 storage.
#include "grcnn/backends/onednn/elementwise.hpp"

namespace grcnn::backends {

template <>
struct kernel<onednn, ops::vone_response_op> {
  using P = ops::vone_response_problem;
  static status can_implement(const P& pr) { return onednn_detail::check_dtype(pr.q0.type); }

  // f(offset in q0, offset in q1, simple) for every element; each parallel row is one (sample,
  // position) in channels-last and one (sample, channel) plane in plain memory.
  template <class F>
  static void each(const P& pr, F&& f) {
    const auto N = pr.q0.dims[0], C = pr.q0.dims[1], HW = pr.q0.dims[2] * pr.q0.dims[3], X = pr.complex();
    const auto S = static_cast<std::int64_t>(pr.simple);
    if (pr.q0.memory_layout == layout::nhwc) {
      onednn_detail::parallel_for(N * HW, [&](std::int64_t row) {
        for (std::int64_t c = 0; c < C; ++c) f(row * C + c, row * X + (c - S), c < S);
      });
    } else {
      onednn_detail::parallel_for(N * C, [&](std::int64_t row) {
        const auto n = row / C, c = row % C;
        const bool simple = c < S;
        for (std::int64_t i = 0; i < HW; ++i) f(row * HW + i, (n * X + c - S) * HW + i, simple);
      });
    }
  }

  // f(T{}, (a, b, e) element accessors in f32) for the storage type T (f32 or bf16); b and e read 0
  // where q1 or eps is absent.
  template <class F>
  static void with_inputs(const P& pr, const tensor& q0, const tensor& q1, const tensor& eps, F&& f) {
    detail::visit_dtype(pr.q0.type, [&]<class T>() {
      if constexpr (std::is_same_v<T, float> || std::is_same_v<T, bf16>) {
        using onednn_detail::to_f32;
        const T* a = static_cast<const T*>(q0.raw());
        const T* b = q1.defined() ? static_cast<const T*>(q1.raw()) : nullptr;
        const T* e = eps.defined() ? static_cast<const T*>(eps.raw()) : nullptr;
        f(T{}, [a](std::int64_t i) { return to_f32(a[i]); }, [b](std::int64_t j) { return b ? to_f32(b[j]) : 0.f; },
          [e](std::int64_t i) { return e ? to_f32(e[i]) : 0.f; });
      } else {
        throw backend_error("onednn vone_response: unsupported dtype " + std::string(name_of(pr.q0.type)));
      }
    });
  }

  static tensor forward(const P& pr, const tensor& q0, const tensor& q1, const tensor& eps) {
    onednn_detail::host_only("vone_response", {&q0, &q1, &eps});
    tensor out = tensor::empty(pr.q0.dims, pr.q0.type, pr.q0.memory_layout);
    with_inputs(pr, q0, q1, eps, [&]<class T>(T, auto a, auto b, auto e) {
      T* y = static_cast<T*>(out.raw());
      each(pr, [&](std::int64_t i, std::int64_t j, bool simple) {
        y[i] = onednn_detail::from_f32<T>(ops::vone_math::forward<float>(pr.k, simple, a(i), simple ? 0.f : b(j), e(i)));
      });
    });
    return out;
  }

  static void backward(const P& pr, const tensor& dy, const tensor& q0, const tensor& q1, const tensor& eps,
                       tensor* dq0, tensor* dq1) {
    onednn_detail::host_only("vone_response backward", {&dy});
    if (dq0) *dq0 = tensor::empty(pr.q0.dims, pr.q0.type, pr.q0.memory_layout);
    const bool want_q1 = dq1 && q1.defined();
    if (want_q1) *dq1 = tensor::empty(q1.dims(), q1.type(), q1.memory_layout());
    with_inputs(pr, q0, q1, eps, [&]<class T>(T, auto a, auto b, auto e) {
      using namespace onednn_detail;
      const T* g = static_cast<const T*>(dy.raw());
      T* da = dq0 ? static_cast<T*>(dq0->raw()) : nullptr;
      T* db = want_q1 ? static_cast<T*>(dq1->raw()) : nullptr;
      each(pr, [&](std::int64_t i, std::int64_t j, bool simple) {
        float ga = 0.f, gb = 0.f;
        ops::vone_math::backward<float>(pr.k, simple, a(i), simple ? 0.f : b(j), e(i), to_f32(g[i]), ga, gb);
        if (da) da[i] = from_f32<T>(ga);
        if (db && !simple) db[j] = from_f32<T>(gb);
      });
    });
  }
};

}  // namespace grcnn::backends
