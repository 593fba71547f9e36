#!/usr/bin/env bash
# Compile time of the translation units instantiating grcnn55 and grcnn109 forward + backward on oneDNN,
# at -O2, without ccache (g++ as CMake's build uses it). Prints seconds of wall time, median of 3 each.
#   benchmarks/compile_time.sh [grcnn55] [grcnn109]      (default: both)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(grcnn55 grcnn109)
for model in "${models[@]}"; do
  times=()
  for i in 1 2 3; do
    start=$(date +%s.%N)
    g++ -std=c++20 -O2 -fopenmp -I"$root/include" -I/usr/include/eigen3 -c "$root/benchmarks/compile_time_${model}.cpp" \
        -o "$out/tu.o"
    end=$(date +%s.%N)
    times+=("$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')")
  done
  median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
  printf '%s forward+backward TU at -O2: %.1f s (median of 3; g++ %s)\n' "$model" "$median" "$(g++ -dumpfullversion)"
done
