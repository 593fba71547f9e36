#!/usr/bin/env bash
# Builds the CUDA test and benchmark programs here (nvcc and cuDNN present, no GPU needed) and packs
# them with the shared libraries a bare GPU machine may lack (oneDNN and its runtime dependencies)
# into .devcarry/bundle.tar.xz, which scripts/gpu-check.sh unpacks instead of building there.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$here/build}
cmake -S "$here" -B "$build" -DGRCNN_ENABLE_CUDA=ON >/dev/null
cmake --build "$build" --target test_cuda_backend test_cuda_device bench_grcnn_cuda grcnn-train grcnn-infer
stage=$(mktemp -d)
mkdir -p "$stage/tests" "$stage/benchmarks" "$stage/examples" "$stage/lib"
cp "$build/tests/test_cuda_backend" "$build/tests/test_cuda_device" "$stage/tests/"
cp "$build/benchmarks/bench_grcnn_cuda" "$stage/benchmarks/"
cp "$build/examples/grcnn-train" "$build/examples/grcnn-infer" "$stage/examples/"
strip "$stage"/tests/* "$stage"/benchmarks/* "$stage"/examples/*
# Everything the programs link that is not glibc, the C++ runtime or a CUDA library the GPU machine has.
for lib in $(ldd "$build/tests/test_cuda_backend" "$build/examples/grcnn-train" | awk '/=>/ {print $3}' | sort -u); do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libstdc++*|libgcc_s*|libpthread*|libdl.so*|librt.so*|libcudnn*|libcublas*|libcudart*) ;;
    *) cp -L "$lib" "$stage/lib/$(basename "$lib")" ;;
  esac
done
mkdir -p "$here/.devcarry"
tar -C "$stage" -cJf "$here/.devcarry/bundle.tar.xz" .
rm -rf "$stage"
ls -la "$here/.devcarry/bundle.tar.xz"
