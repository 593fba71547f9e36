#!/usr/bin/env bash
# The sanitizer stage of CI (scripts/test.sh runs it after the main ctest; GRCNN_SKIP_SANITIZE=1 skips it):
# configures ./build-asan (or $GRCNN_ASAN_BUILD_DIR) with GCC -fsanitize=address,undefined
# -fno-sanitize-recover=undefined -O1 -g (no CUDA, no examples or benchmarks), builds a chosen subset of the
# C++ tests and the fuzz corpus replays, and runs them under ctest with leak detection on. Any
# AddressSanitizer, LeakSanitizer or UBSan report fails the stage.
#   scripts/sanitize.sh [extra ctest args]
# The subset keeps the stage under 12 minutes on CI's 2 cores from a cold ccache (about 6 minutes measured,
# tests/sanitizers/README.md); GRCNN_SANITIZE_TESTS="test_a test_b" overrides the C++ tests chosen.
# Suppressions (one commented entry per known false positive): tests/sanitizers/{asan,lsan,ubsan}.supp.
# GRCNN_BUILD_LOCK=FILE builds under `flock FILE` (shared build machines).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${GRCNN_ASAN_BUILD_DIR:-$root/build-asan}"
lock=()
[ -n "${GRCNN_BUILD_LOCK:-}" ] && lock=(flock "$GRCNN_BUILD_LOCK")

# The C++ tests (no Python fixtures) whose build and run fit the budget; the fuzz replays are added below.
tests=(${GRCNN_SANITIZE_TESTS:-test_core test_random test_io test_gradcheck test_conformance test_models test_precision test_hardening})
targets=("${tests[@]}" grcnn_fuzz_all)

start=$(date +%s)
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
"${lock[@]}" cmake -S "$root" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="${GRCNN_ASAN_CXX:-g++}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DCMAKE_CXX_FLAGS="$sanitize" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" -DGRCNN_ENABLE_CUDA=OFF -DGRCNN_BUILD_FUZZERS=OFF \
  -DGRCNN_BUILD_TESTS=ON -DGRCNN_BUILD_EXAMPLES=OFF -DGRCNN_BUILD_BENCHMARKS=OFF >/dev/null
"${lock[@]}" cmake --build "$build" -j "${GRCNN_BUILD_JOBS:-$(nproc)}" --target "${targets[@]}"
built=$(date +%s)

supp="$root/tests/sanitizers"
export ASAN_OPTIONS="detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=0:suppressions=$supp/asan.supp${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
regex="^($(IFS='|'; echo "${tests[*]}")|fuzz_replay_.*)\$"
cd "$build"
status=0
ctest --output-on-failure --timeout 900 -R "$regex" "$@" || status=$?
end=$(date +%s)
echo "sanitize.sh: build $((built - start)) s, tests $((end - built)) s, total $((end - start)) s (status $status)"
exit "$status"
