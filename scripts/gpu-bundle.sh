#!/usr/bin/env bash
# Builds the CUDA test and benchmark programs here (nvcc and cuDNN present, no GPU needed) and packs
# them with the shared libraries a bare GPU machine may lack (oneDNN and its runtime dependencies)
# into .devcarry/bundle.tar.xz, which scripts/gpu-check.sh unpacks instead of building there; also
# .devcarry/fmnist-mini (4,096 training and 1,024 test images of Fashion-MNIST) for its tools check.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$here/build}
cmake -S "$here" -B "$build" -DGRCNN_ENABLE_CUDA=ON >/dev/null
cmake --build "$build" --target test_cuda_backend test_cuda_device bench_backends grcnn-train grcnn-infer
# The NCCL engine's test and the data-parallel benchmark, where this build has them (MPI and nccl.h).
dist=()
if cmake --build "$build" --target help 2>/dev/null | grep -q 'test_dist_cuda'; then
  cmake --build "$build" --target test_dist_cuda bench_data_parallel
  dist=("$build/tests/test_dist_cuda" "$build/benchmarks/bench_data_parallel")
fi
stage=$(mktemp -d)
mkdir -p "$stage/tests" "$stage/benchmarks" "$stage/examples" "$stage/lib"
cp "$build/tests/test_cuda_backend" "$build/tests/test_cuda_device" "$stage/tests/"
cp "$build/benchmarks/bench_backends" "$stage/benchmarks/"
if [ ${#dist[@]} -gt 0 ]; then cp "${dist[0]}" "$stage/tests/"; cp "${dist[1]}" "$stage/benchmarks/"; fi
cp "$build/examples/grcnn-train" "$build/examples/grcnn-infer" "$stage/examples/"
strip "$stage"/tests/* "$stage"/benchmarks/* "$stage"/examples/*
# Everything the programs link that is not glibc, the C++ runtime or a CUDA library the GPU machine has.
for lib in $(ldd "$build/tests/test_cuda_backend" "$build/examples/grcnn-train" "${dist[@]}" | awk '/=>/ {print $3}' | sort -u); do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libstdc++*|libgcc_s*|libpthread*|libdl.so*|librt.so*|libcudnn*|libcublas*|libcudart*) ;;
    *) cp -L "$lib" "$stage/lib/$(basename "$lib")" ;;
  esac
done
echo "$(git -C "$here" rev-parse --short HEAD)$(git -C "$here" diff --quiet HEAD || echo '+uncommitted changes')" \
  >"$stage/commit.txt"
mkdir -p "$here/.devcarry"
tar -C "$stage" -cJf "$here/.devcarry/bundle.tar.xz" .
# A Fashion-MNIST subset in the original idx format (the first images of each file, header counts fixed).
fmnist=${FMNIST_SOURCE:-/usr/share/datasets/fashion-mnist}
if [ -d "$fmnist" ]; then
  python3 - "$fmnist" "$here/.devcarry/fmnist-mini" <<'PY'
import gzip, pathlib, struct, sys
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
dst.mkdir(parents=True, exist_ok=True)
for prefix, n in (("train", 4096), ("t10k", 1024)):
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        data = gzip.decompress((src / f"{prefix}-{kind}.gz").read_bytes())
        dims = data[3]
        shape = list(struct.unpack(f">{dims}I", data[4:4 + 4 * dims]))
        item = 1
        for d in shape[1:]:
            item *= d
        body = data[4 + 4 * dims:4 + 4 * dims + n * item]
        header = data[:4] + struct.pack(f">{dims}I", n, *shape[1:])
        (dst / f"{prefix}-{kind}.gz").write_bytes(gzip.compress(header + body))
PY
fi
rm -rf "$stage"
du -sh "$here/.devcarry"/*
