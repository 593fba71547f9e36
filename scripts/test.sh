#!/usr/bin/env bash
# The test command: install dependencies, build, run the whole ctest suite (quick and full labels), then
# the sanitizer stage (scripts/sanitize.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install-deps.sh"
GRCNN_BUILD_TARGETS="" "$root/scripts/build.sh"  # everything (the main job builds only its two programs)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
cd "${GRCNN_BUILD_DIR:-$root/build}"
status=0
ctest --output-on-failure --timeout 1200 "$@" || status=$?
# The sanitizer stage (scripts/sanitize.sh: ASan+UBSan build of the C++ unit tests and the fuzz corpus
# replays, ~6 minutes on 2 cores from a cold cache); runs whatever the main suite gave. GRCNN_SKIP_SANITIZE=1 skips it.
if [ "${GRCNN_SKIP_SANITIZE:-0}" != 1 ]; then
  "$root/scripts/sanitize.sh" || status=$?
fi
exit "$status"
