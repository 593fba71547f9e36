#!/usr/bin/env bash
# The test command: install dependencies, build, run the whole ctest suite (quick and full labels).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
cd "${GRCNN_BUILD_DIR:-$root/build}"
ctest --output-on-failure --timeout 1200 "$@"
