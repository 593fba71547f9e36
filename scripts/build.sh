#!/usr/bin/env bash
# Configures and builds grcnn into ./build (or $GRCNN_BUILD_DIR) with Ninja and ccache. Arguments go to the
# configure step. GRCNN_BUILD_TARGETS="a b" builds only those targets (and what they link); unset or empty:
# everything (tests, examples, benchmarks and, where enabled, the CUDA component).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${GRCNN_BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
read -r -a targets <<< "${GRCNN_BUILD_TARGETS:-}"
cmake --build "$build" -j "$(nproc)" ${targets[@]+--target "${targets[@]}"}
