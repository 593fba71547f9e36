#pragma once
// Our own CPU loops compiled for the best vector ISA of the machine they run on. The library is built
// for the baseline x86-64 ISA (users' binaries must run anywhere), where a bf16 or sigmoid loop gets
// 4 lanes; AVX-512 gives 16. run_vectorised(isa, f) calls f through a function compiled with the wider
// target: GCC inlines f (marked GRCNN_VECTOR_BODY) into it and vectorises the loop for that ISA.
// oneDNN's own kernels are JIT-compiled and need none of this.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "grcnn/core/error.hpp"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define GRCNN_CPU_DISPATCH 1
#define GRCNN_VECTOR_BODY __attribute__((always_inline))
#else
#define GRCNN_CPU_DISPATCH 0
#define GRCNN_VECTOR_BODY
#endif

namespace grcnn {

enum class cpu_isa { baseline, avx2, avx512 };

inline std::string_view name_of(cpu_isa i) {
  return i == cpu_isa::avx512 ? "avx512" : i == cpu_isa::avx2 ? "avx2" : "baseline";
}

// What this CPU runs (AVX-512 here means F, BW, VL and DQ; AVX2 comes with FMA).
inline cpu_isa detected_cpu_isa() {
#if GRCNN_CPU_DISPATCH
  static const cpu_isa isa = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq"))
      return cpu_isa::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return cpu_isa::avx2;
    return cpu_isa::baseline;
  }();
  return isa;
#else
  return cpu_isa::baseline;
#endif
}

// The widest ISA our loops may use: the detected one, lowered by GRCNN_CPU_ISA=baseline|avx2|avx512 in
// the environment or by set_cpu_isa_limit (tests run every variant). It never exceeds what the CPU has.
// Atomic: loops on OpenMP threads read it while a program may set it.
namespace detail {
inline std::atomic<cpu_isa>& cpu_isa_limit_slot() {
  static std::atomic<cpu_isa> limit = [] {
    const char* env = std::getenv("GRCNN_CPU_ISA");
    if (!env || !*env) return cpu_isa::avx512;
    const std::string_view v(env);
    GRCNN_CHECK(v == "baseline" || v == "avx2" || v == "avx512", error,
                "GRCNN_CPU_ISA must be baseline, avx2 or avx512, got '", v, "'");
    return v == "avx512" ? cpu_isa::avx512 : v == "avx2" ? cpu_isa::avx2 : cpu_isa::baseline;
  }();
  return limit;
}
}  // namespace detail

inline cpu_isa cpu_isa_limit() { return detail::cpu_isa_limit_slot().load(std::memory_order_relaxed); }
inline void set_cpu_isa_limit(cpu_isa i) { detail::cpu_isa_limit_slot().store(i, std::memory_order_relaxed); }

// The ISA run_vectorised uses now. Read it outside OpenMP regions (an invalid GRCNN_CPU_ISA throws
// here, and an exception must not leave a parallel region) and hand it to run_vectorised.
inline cpu_isa active_cpu_isa() {
  const cpu_isa d = detected_cpu_isa(), l = cpu_isa_limit();
  return static_cast<int>(d) < static_cast<int>(l) ? d : l;
}

namespace detail {
#if GRCNN_CPU_DISPATCH
template <class F>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma"))) void run_avx512(const F& f) {
  f();
}
template <class F>
__attribute__((target("avx2,fma"))) void run_avx2(const F& f) {
  f();
}
#endif
}  // namespace detail

// f: a lambda marked GRCNN_VECTOR_BODY holding the loop; isa: active_cpu_isa(), read before the
// parallel region. For example
//   const cpu_isa isa = active_cpu_isa();
//   #pragma omp parallel for
//   for (chunk...) run_vectorised(isa, [&]() GRCNN_VECTOR_BODY { for (i...) d[i] = ...; });
template <class F>
void run_vectorised(cpu_isa isa, const F& f) {
#if GRCNN_CPU_DISPATCH
  switch (isa) {
    case cpu_isa::avx512: return detail::run_avx512(f);
    case cpu_isa::avx2: return detail::run_avx2(f);
    case cpu_isa::baseline: break;
  }
#else
  (void)isa;
#endif
  f();
}

// The loop our CPU kernels share: body(lo, hi) over [0, n) in chunks of `chunk` elements, on OpenMP
// threads when n exceeds min_parallel, each chunk compiled for the active ISA (read once, here). body
// is a lambda marked GRCNN_VECTOR_BODY, so it inlines into the ISA-specific function:
//   vectorised_chunks(n, 1 << 12, 0, [&](std::int64_t lo, std::int64_t hi) GRCNN_VECTOR_BODY {
//     for (std::int64_t i = lo; i < hi; ++i) d[i] = ...;
//   });
template <class F>
void vectorised_chunks(std::int64_t n, std::int64_t chunk, std::int64_t min_parallel, const F& body) {
  const cpu_isa isa = active_cpu_isa();
  const std::int64_t chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (n > min_parallel)
  for (std::int64_t c = 0; c < chunks; ++c) {
    const std::int64_t lo = c * chunk, hi = lo + chunk < n ? lo + chunk : n;
    run_vectorised(isa, [&]() GRCNN_VECTOR_BODY { body(lo, hi); });
  }
}

}  // namespace grcnn
