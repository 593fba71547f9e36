// libFuzzer with GCC (GRCNN_FUZZ_GCC in tests/fuzz/CMakeLists.txt): for targets that clang cannot compile
// (clang 14 has no floating-point non-type template parameters, which grcnn's model headers use).
// GCC has no -fsanitize=fuzzer, but its -fsanitize-coverage=trace-pc calls __sanitizer_cov_trace_pc() in
// every basic block and trace-cmp calls libFuzzer's comparison hooks. libFuzzer 14 no longer takes
// trace-pc (its own __sanitizer_cov_trace_pc exits with "no longer supported"; the build weakens that
// symbol in a copy of the runtime), so this file turns the calls into what libFuzzer reads: AFL-style
// edge hits (previous block ^ this block, hashed) in a table of 8-bit counters registered with
// __sanitizer_cov_8bit_counters_init, with a matching table of made-up PCs (libFuzzer needs one; it
// only names new functions from it, and none is flagged as an entry). GCC also hooks floating-point
// comparisons, which libFuzzer has no hooks for: no-ops below. Compiled without instrumentation.
#include <cstddef>
#include <cstdint>

extern "C" void __sanitizer_cov_8bit_counters_init(std::uint8_t* begin, std::uint8_t* end);
extern "C" void __sanitizer_cov_pcs_init(const std::uintptr_t* begin, const std::uintptr_t* end);

namespace {
constexpr std::size_t map_size = std::size_t{1} << 16;
alignas(64) std::uint8_t counters[map_size];
std::uintptr_t pcs[2 * map_size];
thread_local std::uintptr_t previous = 0;

__attribute__((constructor)) void register_counters() {
  for (std::size_t i = 0; i < map_size; ++i) pcs[2 * i] = i + 1, pcs[2 * i + 1] = 0;
  __sanitizer_cov_8bit_counters_init(counters, counters + map_size);
  __sanitizer_cov_pcs_init(pcs, pcs + 2 * map_size);
}
}  // namespace

extern "C" {
__attribute__((no_sanitize("address", "undefined"))) void __sanitizer_cov_trace_pc() {
  const auto pc = reinterpret_cast<std::uintptr_t>(__builtin_return_address(0));
  const std::uintptr_t block = (pc * 0x9E3779B97F4A7C15ull) >> 48;  // 16 bits of a multiplicative hash
  ++counters[(block ^ previous) & (map_size - 1)];
  previous = block >> 1;
}
void __sanitizer_cov_trace_cmpf(float, float) {}
void __sanitizer_cov_trace_cmpd(double, double) {}
}
