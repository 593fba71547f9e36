#!/usr/bin/env bash
# Runs one libFuzzer target for a while:  scripts/fuzz.sh TARGET SECONDS [extra libFuzzer args...]
#   TARGET: safetensors image idx cifar assembly assembly_gen splits score_report recipe (tests/fuzz/fuzz_TARGET.cpp)
# Configures ./build-fuzz (or $GRCNN_FUZZ_BUILD_DIR) with clang++ -fsanitize=fuzzer,address,undefined -O1 -g
# (GRCNN_BUILD_FUZZERS=ON; a target clang cannot compile is built in ./build-fuzz-gcc with GCC and
# libFuzzer's runtime, see below), builds fuzz_TARGET, copies the checked-in seeds (tests/fuzz/corpus/TARGET, crash-*
# reproducers left out: the fuzz_replay_* tests cover those) into build-fuzz/corpus/TARGET, where new inputs
# accumulate across runs, and fuzzes at nice 19 for SECONDS. Crashes go to build-fuzz/crashes/TARGET/, the
# log to build-fuzz/logs/. Limits as in CI's replays: -rss_limit_mb=2048 -malloc_limit_mb=2048; a
# dictionary tests/fuzz/dict/TARGET.dict is used when present. Later args override these.
# Environment: GRCNN_BUILD_LOCK=FILE builds under `flock FILE` (shared build machines);
#   GRCNN_FUZZ_LENIENT=1 counts every grcnn::error as a clean rejection (go on past a wrong-type finding).
# Exit status: libFuzzer's (0: no finding in the time; nonzero: a crash, leak, timeout or OOM was saved).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ $# -lt 2 ]; then
  echo "usage: $0 TARGET SECONDS [libFuzzer args...]" >&2
  exit 2
fi
target="$1" seconds="$2"
shift 2
if [ ! -f "$root/tests/fuzz/fuzz_$target.cpp" ]; then
  echo "fuzz.sh: no target '$target' (tests/fuzz/fuzz_$target.cpp)" >&2
  exit 2
fi
build="${GRCNN_FUZZ_BUILD_DIR:-$root/build-fuzz}"
lock=()
[ -n "${GRCNN_BUILD_LOCK:-}" ] && lock=(flock "$GRCNN_BUILD_LOCK")

# clang with the libFuzzer and sanitizer runtimes (Debian: clang, libfuzzer-14-dev, libclang-rt-14-dev).
cxx="${GRCNN_FUZZ_CXX:-$(command -v clang++ || command -v clang++-14 || true)}"
if [ -z "$cxx" ] || [ ! -f "$("$cxx" -print-resource-dir)/lib/linux/libclang_rt.fuzzer-x86_64.a" ]; then
  GRCNN_INSTALL_FUZZ_DEPS=1 "$root/scripts/install-deps.sh"
  cxx="$(command -v clang++ || command -v clang++-14)"
fi

sanitize="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
# build_with DIR COMPILER: configures DIR once (GRCNN_BUILD_FUZZERS=ON) and builds fuzz_TARGET there.
build_with() {
  if [ ! -f "$1/CMakeCache.txt" ]; then
    "${lock[@]}" cmake -S "$root" -B "$1" -G Ninja -DCMAKE_CXX_COMPILER="$2" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DCMAKE_CXX_FLAGS="$sanitize" \
      -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" -DGRCNN_BUILD_FUZZERS=ON -DGRCNN_ENABLE_CUDA=OFF \
      -DGRCNN_BUILD_TESTS=ON -DGRCNN_BUILD_EXAMPLES=OFF -DGRCNN_BUILD_BENCHMARKS=OFF >/dev/null || return 1
  fi
  "${lock[@]}" cmake --build "$1" --target "fuzz_$target" -j "${GRCNN_BUILD_JOBS:-$(nproc)}"
}
# clang first; a target clang cannot compile (grcnn's model headers need floating-point template
# parameters, which clang 14 lacks: recipe) is built with GCC and libFuzzer's runtime in DIR-gcc
# (tests/fuzz/CMakeLists.txt, gcc_sancov_bridge.cpp). GRCNN_FUZZ_COMPILER=gcc goes there directly.
exe=""
mkdir -p "$build/logs"
clang_log="$build/logs/build-$target-clang.log"
if [ "${GRCNN_FUZZ_COMPILER:-auto}" != gcc ] && build_with "$build" "$cxx" >"$clang_log" 2>&1; then
  cat "$clang_log"
  exe="$build/tests/fuzz/fuzz_$target"
else
  [ "${GRCNN_FUZZ_COMPILER:-auto}" = gcc ] ||
    echo "fuzz.sh: clang cannot build fuzz_$target ($(grep -m1 'error:' "$clang_log" | cut -c1-160); $clang_log)"
  echo "fuzz.sh: building fuzz_$target with GCC and libFuzzer's runtime in $build-gcc"
  build_with "$build-gcc" "${GRCNN_ASAN_CXX:-g++}"
  exe="$build-gcc/tests/fuzz/fuzz_$target"
fi

corpus="$build/corpus/$target" crashes="$build/crashes/$target"
mkdir -p "$corpus" "$crashes"
for f in "$root/tests/fuzz/corpus/$target"/*; do
  [ -f "$f" ] || continue
  case "$(basename "$f")" in crash-*) continue ;; esac
  cp -n "$f" "$corpus/"
done
args=(-max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=25 -print_final_stats=1
      -artifact_prefix="$crashes/")
[ -f "$root/tests/fuzz/dict/$target.dict" ] && args+=(-dict="$root/tests/fuzz/dict/$target.dict")
log="$build/logs/$target-$(date +%Y%m%d-%H%M%S).log"
supp="$root/tests/sanitizers"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:check_initialization_order=1:strict_init_order=1:suppressions=$supp/asan.supp}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$supp/lsan.supp:print_suppressions=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
echo "fuzz.sh: fuzz_$target for ${seconds}s on $corpus ($(ls "$corpus" | wc -l) inputs); log $log"
set +e
nice -n 19 "$exe" "${args[@]}" "$@" "$corpus" 2>&1 | tee "$log" | grep -E --line-buffered \
  '^#[0-9]+[[:space:]]+(INITED|DONE)|^==[0-9]+==|^SUMMARY|FINDING|^stat::|Test unit written|^artifact_prefix|ERROR' 
status=${PIPESTATUS[0]}
set -e
echo "fuzz.sh: fuzz_$target exited $status; corpus $(ls "$corpus" | wc -l) inputs; crashes: $(ls "$crashes" | wc -l) in $crashes"
exit "$status"
