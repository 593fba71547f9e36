#!/usr/bin/env bash
# Data-parallel steps on the CPU, 1 vs 2 ranks of one thread each (issue 22; docs/benchmarks.md):
#   benchmarks/run_data_parallel_benchmark.sh [BUILD_DIR]
# grcnn_small at 32 px (batch 32 per rank) and grcnn55 at 224 px (batch 2 per rank, the reduced size),
# each with the reducer overlapping backward and without. One JSON line per run (bench_data_parallel).
set -euo pipefail
build="${1:-build}"
bench="$build/benchmarks/bench_data_parallel"
[ -x "$bench" ] || { echo "build $bench first (needs the grcnn::dist component)" >&2; exit 2; }
export OMP_NUM_THREADS=1
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
run() { mpirun -np "$1" --bind-to core "$bench" "${@:2}" | tail -n 1; }
for cfg in "grcnn_small --batch 32 --side 32 --steps 30 --warmup 3" "grcnn55 --batch 2 --side 224 --steps 4 --warmup 1"; do
  set -- $cfg
  run 1 --arch "$@"
  run 2 --arch "$@"
  run 2 --arch "$@" --no-overlap
done
