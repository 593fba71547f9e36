#pragma once
// The VOneBlock response on the CPU: our own OpenMP pass (oneDNN has no such primitive) over plain
// or channels-last maps, in f32 arithmetic for f32 and bf16 storage, vectorised for the machine's ISA
// (core/cpu_dispatch.hpp) over contiguous runs of one cell type.
#include "grcnn/backends/onednn/elementwise.hpp"

namespace grcnn::backends {

template <>
struct kernel<onednn, ops::vone_response_op> {
  using P = ops::vone_response_problem;
  static status can_implement(const P& pr) { return onednn_detail::check_dtype(pr.q0.type); }

  // f(q0 offset, q1 offset, len, simple) for every contiguous run of one cell type, on OpenMP threads:
  // a (sample, channel) plane in plain memory; in channels-last memory a position's simple channels,
  // then its complex ones (whose q1 values are contiguous too). q1 offsets of simple runs are unused.
  template <class F>
  static void runs(const P& pr, F&& f) {
    const auto N = pr.q0.dims[0], C = pr.q0.dims[1], HW = pr.q0.dims[2] * pr.q0.dims[3], X = pr.complex();
    const auto S = static_cast<std::int64_t>(pr.simple);
    if (pr.q0.memory_layout == layout::nhwc) {
      onednn_detail::parallel_for(N * HW, [&](std::int64_t r) {
        if (S > 0) f(r * C, std::int64_t(0), S, true);
        if (X > 0) f(r * C + S, r * X, X, false);
      });
    } else {
      onednn_detail::parallel_for(N * C, [&](std::int64_t plane) {
        const std::int64_t n = plane / C, c = plane % C;
        f(plane * HW, c < S ? std::int64_t(0) : (n * X + c - S) * HW, HW, c < S);
      });
    }
  }

  // Calls body.template operator()<Mode>() with the noise mode as a constant, compiled for the machine's
  // vector ISA: a branch on the mode left in a loop stops GCC from vectorising it.
  template <class F>
  static void with_mode(cpu_isa isa, int mode, F&& body) {
    run_vectorised(isa, [&]() GRCNN_VECTOR_BODY {
      if (mode == ops::vone_math::noise_neuronal) body.template operator()<ops::vone_math::noise_neuronal>();
      else if (mode == ops::vone_math::noise_gaussian) body.template operator()<ops::vone_math::noise_gaussian>();
      else body.template operator()<ops::vone_math::noise_none>();
    });
  }

  static tensor forward(const P& pr, const tensor& q0, const tensor& q1, const tensor& eps) {
    onednn_detail::host_only("vone_response", {&q0, &q1, &eps});
    tensor out = tensor::empty(pr.q0.dims, pr.q0.type, pr.q0.memory_layout);
    if (pr.q0.type == dtype::f32) forward_runs<float>(pr, q0, q1, eps, out);
    else if (pr.q0.type == dtype::bf16) forward_runs<bf16>(pr, q0, q1, eps, out);
    else throw backend_error("onednn vone_response: unsupported dtype " + std::string(name_of(pr.q0.type)));
    return out;
  }

  static void backward(const P& pr, const tensor& dy, const tensor& q0, const tensor& q1, const tensor& eps,
                       tensor* dq0, tensor* dq1) {
    onednn_detail::host_only("vone_response backward", {&dy});
    if (dq0) *dq0 = tensor::empty(pr.q0.dims, pr.q0.type, pr.q0.memory_layout);
    const bool want_q1 = dq1 && q1.defined();
    if (want_q1) *dq1 = tensor::empty(q1.dims(), q1.type(), q1.memory_layout());
    if (pr.q0.type == dtype::f32) backward_runs<float>(pr, dy, q0, q1, eps, dq0, want_q1 ? dq1 : nullptr);
    else if (pr.q0.type == dtype::bf16) backward_runs<bf16>(pr, dy, q0, q1, eps, dq0, want_q1 ? dq1 : nullptr);
    else throw backend_error("onednn vone_response: unsupported dtype " + std::string(name_of(pr.q0.type)));
  }

  // f32 arithmetic for f32 and bf16 storage; b and e are null where q1 or eps is absent.
  template <class T>
  static void forward_runs(const P& pr, const tensor& q0, const tensor& q1, const tensor& eps, tensor& out) {
    using namespace onednn_detail;
    using ops::vone_math::forward;
    const T* a = static_cast<const T*>(q0.raw());
    const T* b = q1.defined() ? static_cast<const T*>(q1.raw()) : nullptr;
    const T* e = eps.defined() ? static_cast<const T*>(eps.raw()) : nullptr;
    T* y = static_cast<T*>(out.raw());
    const ops::vone_math::coefficients k = pr.k;
    const cpu_isa isa = active_cpu_isa();
    runs(pr, [&](std::int64_t o, std::int64_t j, std::int64_t len, bool simple) {
      T* yr = y + o;
      const T *ar = a + o, *br = simple ? nullptr : b + j, *er = e ? e + o : nullptr;
      with_mode(isa, k.mode, [&]<int Mode>() GRCNN_VECTOR_BODY {
        ops::vone_math::coefficients c = k;
        c.mode = Mode;
        if (simple && er)
          for (std::int64_t i = 0; i < len; ++i) yr[i] = from_f32<T>(forward<float>(c, true, to_f32(ar[i]), 0.f, to_f32(er[i])));
        else if (simple)
          for (std::int64_t i = 0; i < len; ++i) yr[i] = from_f32<T>(forward<float>(c, true, to_f32(ar[i]), 0.f, 0.f));
        else if (er)
          for (std::int64_t i = 0; i < len; ++i)
            yr[i] = from_f32<T>(forward<float>(c, false, to_f32(ar[i]), to_f32(br[i]), to_f32(er[i])));
        else
          for (std::int64_t i = 0; i < len; ++i)
            yr[i] = from_f32<T>(forward<float>(c, false, to_f32(ar[i]), to_f32(br[i]), 0.f));
      });
    });
  }

  template <class T>
  static void backward_runs(const P& pr, const tensor& dy, const tensor& q0, const tensor& q1, const tensor& eps,
                            tensor* dq0, tensor* dq1) {
    using namespace onednn_detail;
    const T* g = static_cast<const T*>(dy.raw());
    const T* a = static_cast<const T*>(q0.raw());
    const T* b = q1.defined() ? static_cast<const T*>(q1.raw()) : nullptr;
    const T* e = eps.defined() ? static_cast<const T*>(eps.raw()) : nullptr;
    T* da = dq0 ? static_cast<T*>(dq0->raw()) : nullptr;
    T* db = dq1 ? static_cast<T*>(dq1->raw()) : nullptr;
    const ops::vone_math::coefficients k = pr.k;
    const cpu_isa isa = active_cpu_isa();
    runs(pr, [&](std::int64_t o, std::int64_t j, std::int64_t len, bool simple) {
      const T *gr = g + o, *ar = a + o, *br = simple ? nullptr : b + j, *er = e ? e + o : nullptr;
      T *dar = da ? da + o : nullptr, *dbr = db && !simple ? db + j : nullptr;
      with_mode(isa, k.mode, [&]<int Mode>() GRCNN_VECTOR_BODY {
        ops::vone_math::coefficients c = k;
        c.mode = Mode;
        // One loop per combination the vectoriser must see without branches: cell type, noise map, and
        // which gradients are wanted (a simple run has no q1 gradient).
        auto loop = [&]<bool Simple, bool Noise, bool WantA, bool WantB>() GRCNN_VECTOR_BODY {
          for (std::int64_t i = 0; i < len; ++i) {
            float ga = 0.f, gb = 0.f;
            ops::vone_math::backward<float>(c, Simple, to_f32(ar[i]), Simple ? 0.f : to_f32(br[i]),
                                            Noise ? to_f32(er[i]) : 0.f, to_f32(gr[i]), ga, gb);
            if constexpr (WantA) dar[i] = from_f32<T>(ga);
            if constexpr (WantB) dbr[i] = from_f32<T>(gb);
          }
        };
        const bool noise = er != nullptr;
        if (simple) {
          if (!dar) return;
          if (noise) loop.template operator()<true, true, true, false>();
          else loop.template operator()<true, false, true, false>();
        } else if (dar && dbr) {
          if (noise) loop.template operator()<false, true, true, true>();
          else loop.template operator()<false, false, true, true>();
        } else if (dar) {
          if (noise) loop.template operator()<false, true, true, false>();
          else loop.template operator()<false, false, true, false>();
        } else if (dbr) {
          if (noise) loop.template operator()<false, true, false, true>();
          else loop.template operator()<false, false, false, true>();
        }
      });
    });
  }
};

}  // namespace grcnn::backends
