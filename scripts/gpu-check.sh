#!/usr/bin/env bash
# The GPU check of the CUDA backend in one call on a machine with a GPU: build the CUDA programs (or
# unpack the bundle scripts/gpu-bundle.sh made on a machine without a GPU), run the CUDA tests, then
# grcnn's and PyTorch's GPU benchmarks in the same call. Results under $OUT (default ./gpu-results):
#   cuda-tests.log, bench-grcnn-cuda.jsonl, bench-torch.jsonl, summary.txt
# Options: --sanitize (compute-sanitizer memcheck over the quick CUDA tests), --compile (torch.compile
# runs too), --profile (device time per library call), --no-bench, --no-torch, --no-tools, --tests FILTER (a Catch2 test filter).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$here/gpu-results}
mkdir -p "$OUT"
sanitize=0 compile="" bench=1 filter="" profile="" torch=1 tools=1
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) sanitize=1 ;;
    --compile) compile="bf16" ;;
    --no-bench) bench=0 ;;
    --profile) profile=1 ;;
    --no-torch) torch=0 ;;
    --no-tools) tools=0 ;;
    --tests) filter="$2"; shift ;;
    *) echo "gpu-check: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
py=python3
cudnn=$($py -c 'import nvidia.cudnn as m; print(m.__path__[0])' 2>/dev/null || true)
cublas=$($py -c 'import nvidia.cublas as m; print(m.__path__[0])' 2>/dev/null || true)
export LD_LIBRARY_PATH="${cudnn:+$cudnn/lib:}${cublas:+$cublas/lib:}/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"

if [ -f "$here/.devcarry/bundle.tar.xz" ]; then
  bin=/tmp/grcnn-gpu
  rm -rf "$bin" && mkdir -p "$bin" && tar -C "$bin" -xJf "$here/.devcarry/bundle.tar.xz"
  export LD_LIBRARY_PATH="$bin/lib:$LD_LIBRARY_PATH"
  echo "gpu-check: prebuilt bundle"
else
  bin=$here/build-gpu
  cmake -S "$here" -B "$bin" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGRCNN_ENABLE_CUDA=ON ${cudnn:+-DCUDNN_ROOT=$cudnn} \
    >"$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; exit 1; }
  cmake --build "$bin" --target test_cuda_backend test_cuda_device bench_grcnn_cuda grcnn-train grcnn-infer >"$OUT/build.log" 2>&1 ||
    { tail -40 "$OUT/build.log"; exit 1; }
fi

status=0
"$bin/tests/test_cuda_device" | tee "$OUT/probe.txt"
# shellcheck disable=SC2086
timeout ${TEST_TIMEOUT:-150} "$bin/tests/test_cuda_backend" --use-colour no -d yes $filter 2>&1 | tee "$OUT/cuda-tests.log" | tail -60
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
if [ "$sanitize" = 1 ]; then
  timeout ${SANITIZE_TIMEOUT:-150} compute-sanitizer --tool memcheck --error-exitcode 9 "$bin/tests/test_cuda_backend" --use-colour no "~[model]" \
    >"$OUT/sanitizer.log" 2>&1
  rc=$?
  echo "compute-sanitizer memcheck exit $rc (log: sanitizer.log)"; tail -5 "$OUT/sanitizer.log"
  [ "$rc" -eq 0 ] || status=1
fi
# The tools on the GPU: grcnn-infer against PyTorch; a short grcnn-train run on the GPU (--backend auto)
# whose checkpoint then evaluates identically on CPU and GPU. Needs a Fashion-MNIST folder ($FMNIST_DIR).
if [ "$tools" = 1 ] && [ -x "$bin/examples/grcnn-infer" ]; then
  timeout 120 $py "$here/tests/torch/check_gpu_tools.py" --infer "$bin/examples/grcnn-infer" --work /tmp/grcnn-infer-check \
    2>&1 | tee "$OUT/tools.log" | tail -3
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi
fmnist=${FMNIST_DIR:-$here/.devcarry/fmnist-mini}
if [ "$tools" = 1 ] && [ -x "$bin/examples/grcnn-train" ] && [ -d "$fmnist" ]; then
  t=/tmp/grcnn-train-check
  rm -rf "$t"
  timeout 150 "$bin/examples/grcnn-train" --arch grcnn_small --dataset fashion-mnist --data "$fmnist" --epochs 2 --batch 128 \
    --schedule onecycle --lr 0.3 --wd 5e-4 --no-decay-bn-bias --workers 4 --backend auto --out "$t/run" >>"$OUT/tools.log" 2>&1 ||
    status=1
  grep -E "backend:|summary:|eval " "$OUT/tools.log" | tail -4
  ckpt=$(ls "$t"/run/checkpoint-*.safetensors 2>/dev/null | sort -V | tail -1)
  for b in cpu cuda; do
    [ -n "$ckpt" ] && "$bin/examples/grcnn-train" --arch grcnn_small --dataset fashion-mnist --data "$fmnist" --eval-only \
      --resume "$ckpt" --backend $b --out "$t/eval-$b" 2>&1 | tee -a "$OUT/tools.log" | grep "^eval" | sed "s/^/$b: /" |
      tee "$t/eval-$b.txt"
  done
  # The checkpoint trained on the GPU must evaluate to the same top-1 on both backends.
  if [ -z "$ckpt" ] || [ "$(sed 's/^[a-z]*: //; s/(.*//' "$t/eval-cpu.txt")" != "$(sed 's/^[a-z]*: //; s/(.*//' "$t/eval-cuda.txt")" ]; then
    echo "tools check: CPU and GPU evaluations of the checkpoint differ (or no checkpoint)"; status=1
  fi
fi

if [ "$bench" = 1 ]; then
  timeout ${BENCH_TIMEOUT:-120} "$bin/benchmarks/bench_grcnn_cuda" --precision fp32 --layout ${BENCH_LAYOUT:-nchw} --steps 10 --warmup 3 ${profile:+--profile} 2>"$OUT/bench-profile.txt" | tee "$OUT/bench-grcnn-cuda.jsonl"
  timeout ${BENCH_TIMEOUT:-120} "$bin/benchmarks/bench_grcnn_cuda" --precision tf32 --layout ${BENCH_LAYOUT:-nchw} --steps 10 --warmup 3 ${profile:+--profile} 2>>"$OUT/bench-profile.txt" | tee -a "$OUT/bench-grcnn-cuda.jsonl"
  # bf16 mixed precision: tensor cores want channels-last.
  timeout ${BENCH_TIMEOUT:-120} "$bin/benchmarks/bench_grcnn_cuda" --precision bf16 --layout nhwc --steps 10 --warmup 3 ${profile:+--profile} 2>>"$OUT/bench-profile.txt" | tee -a "$OUT/bench-grcnn-cuda.jsonl"
  [ "$torch" = 1 ] && timeout ${TORCH_TIMEOUT:-150} $py "$here/benchmarks/run_gpu_torch_benchmark.py" --steps 10 --warmup 3 ${compile:+--compile $compile} |
    tee "$OUT/bench-torch.jsonl"
  $py - "$OUT" <<'PY' | tee "$OUT/summary.txt"
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
def rows(name):
    p = out / name
    return [json.loads(l) for l in p.read_text().splitlines() if l.startswith("{") and '"mode"' in l] if p.exists() else []
ours, theirs = rows("bench-grcnn-cuda.jsonl"), rows("bench-torch.jsonl")
print(f"{'mode':10} {'precision':9} {'layout':6} {'batch':>5} {'grcnn img/s':>12} {'torch eager':>12} {'torch compile':>13} {'ratio':>6}")
for r in ours:
    t = [x for x in theirs if x["mode"] == r["mode"] and x["precision"] == r["precision"]]
    e = next((x["images_per_s"] for x in t if not x["compiled"]), float("nan"))
    c = next((x["images_per_s"] for x in t if x["compiled"]), float("nan"))
    print(f"{r['mode']:10} {r['precision']:9} {r.get('layout', 'nhwc'):6} {r['batch']:5d} {r['images_per_s']:12.1f} {e:12.1f} {c:13.1f} {r['images_per_s']/e:6.2f}")
for x in theirs:
    if not any(r["mode"] == x["mode"] and r["precision"] == x["precision"] for r in ours):
        print(f"{x['mode']:10} {x['precision']:9} {'nhwc':6} {x['batch']:5d} {'-':>12} {x['images_per_s']:12.1f}  (compiled={x['compiled']})")
PY
fi
exit $status
