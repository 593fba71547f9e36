#!/usr/bin/env bash
# The GPU check of the CUDA backend in one call on a machine with a GPU: build the CUDA programs (or
# unpack the bundle scripts/gpu-bundle.sh made on a machine without a GPU), run the CUDA tests, then
# grcnn's and PyTorch's GPU benchmarks in the same call. Results under $OUT (default ./gpu-results):
#   gpu.txt, probe.txt, cuda-tests.log, dist-cuda.log, bench-dist.jsonl, bench-grcnn-cuda.jsonl,
#   bench-profile.txt, bench-torch.jsonl,
#   summary.txt, stages.txt (what ran, its exit status and seconds; what the budget skipped)
#
# Device time is scarce, so the stages run most-wanted first under one budget (--budget SECONDS,
# default 540: a device command may run 600 s), and a stage that no longer fits is skipped with a line
# in stages.txt instead of being cut off half-way:
#   1. quick CUDA tests (every op in f32, tf32, bf16; the grcnn_small steps; memory; optimizers); the
#      NCCL engine at world size 1 and the data-parallel wrapper's overhead
#   2. bf16 benchmarks: grcnn (channels-last), then PyTorch eager, then torch.compile (with --compile)
#   3. fp32 and tf32 benchmarks: grcnn, then PyTorch
#   4. the full-size test (a grcnn55 step against oneDNN), compute-sanitizer (--sanitize), the tools
#   5. the bf16 benchmark with cuDNN's legacy API alone (convolutions otherwise take the faster of the
#      legacy and graph APIs per problem; GRCNN_CUDNN_LOG puts each search's timings in bench-profile.txt)
# Options: --budget S, --sanitize, --compile (torch.compile for bf16 too), --profile (device time per
# library call), --no-bench, --no-torch, --no-tools, --no-full, --bf16-only (no fp32/tf32 benchmarks and no
# legacy-API rerun), --tests FILTER (Catch2 filter for stage 1; tags or space-free wildcards only, as it is
# word-split).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$here/gpu-results}
mkdir -p "$OUT"
budget=540 sanitize=0 compile="" bench=1 filter="~[full]" profile="" torch=1 tools=1 full=1 wide=1
while [ $# -gt 0 ]; do
  case "$1" in
    --budget) budget="$2"; shift ;;
    --sanitize) sanitize=1 ;;
    --compile) compile="bf16" ;;
    --no-bench) bench=0 ;;
    --profile) profile=1 ;;
    --no-torch) torch=0 ;;
    --no-tools) tools=0 ;;
    --no-full) full=0 ;;
    --bf16-only) wide=0 ;;
    --tests) filter="$2"; shift ;;
    *) echo "gpu-check: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
start=$SECONDS
status=0
# A reused $OUT starts empty of this script's files: results are appended stage by stage.
rm -f "$OUT"/{stages.txt,cuda-tests.log,cuda-tests-full.log,bench-grcnn-cuda.jsonl,bench-profile.txt,dist-cuda.log,bench-dist.jsonl} \
  "$OUT"/{bench-torch.jsonl,bench-torch.log,summary.txt,sanitizer.log,tools.log}
: >"$OUT/stages.txt"
left() { echo $((budget - (SECONDS - start))); }
# stage NAME MIN_SECONDS MAX_SECONDS LOG CMD...: runs CMD under timeout min(MAX, time left) when at least
# MIN seconds are left; stdout and stderr go to LOG (appended), its tail to the console.
stage() {
  local name=$1 need=$2 cap=$3 log=$4; shift 4
  local t; t=$(left)
  if [ "$t" -lt "$need" ]; then
    echo "$name: skipped, ${t}s of the budget left (needs ${need}s)" | tee -a "$OUT/stages.txt"
    return 0
  fi
  [ "$t" -gt "$cap" ] && t=$cap
  local s=$SECONDS rc
  timeout "$t" "$@" >>"$log" 2>&1
  rc=$?
  echo "$name: exit $rc after $((SECONDS - s))s (limit ${t}s)" | tee -a "$OUT/stages.txt"
  if [ "$rc" -ne 0 ]; then
    status=1
    tail -25 "$log"
  fi
  return 0
}

py=python3
cudnn=$($py -c 'import nvidia.cudnn as m; print(m.__path__[0])' 2>/dev/null || true)
cublas=$($py -c 'import nvidia.cublas as m; print(m.__path__[0])' 2>/dev/null || true)
nccl=$($py -c 'import nvidia.nccl as m; print(m.__path__[0])' 2>/dev/null || true)
export LD_LIBRARY_PATH="${cudnn:+$cudnn/lib:}${cublas:+$cublas/lib:}${nccl:+$nccl/lib:}/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"

if [ -f "$here/.devcarry/bundle.tar.xz" ]; then
  bin=/tmp/grcnn-gpu
  rm -rf "$bin" && mkdir -p "$bin" && tar -C "$bin" -xJf "$here/.devcarry/bundle.tar.xz"
  export LD_LIBRARY_PATH="$bin/lib:$LD_LIBRARY_PATH"
  echo "gpu-check: prebuilt bundle ($(cat "$bin/commit.txt" 2>/dev/null || echo 'commit unknown'))"
else
  bin=$here/build-gpu
  cmake -S "$here" -B "$bin" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGRCNN_ENABLE_CUDA=ON ${cudnn:+-DCUDNN_ROOT=$cudnn} \
    ${nccl:+-DNCCL_ROOT=$nccl} >"$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; exit 1; }
  cmake --build "$bin" --target test_cuda_backend test_cuda_device bench_backends grcnn-train grcnn-infer >"$OUT/build.log" 2>&1 ||
    { tail -40 "$OUT/build.log"; exit 1; }
  if cmake --build "$bin" --target help 2>/dev/null | grep -q 'test_dist_cuda'; then
    cmake --build "$bin" --target test_dist_cuda bench_data_parallel >>"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
  fi
fi

"$bin/tests/test_cuda_device" | tee "$OUT/probe.txt"
# The benchmarks print one JSON line per mode on stdout: kept in JSONL as well as in the stage's log.
tee_jsonl='set -o pipefail; "$@" | tee -a "$JSONL"'
tests=("$bin/tests/test_cuda_backend" --use-colour no -d yes)

# 1. Quick CUDA tests, the bf16 ones included.
# $filter is word-split on purpose (several Catch2 specs); globbing is off so "[cuda]" stays a tag.
set -f
# shellcheck disable=SC2086
stage "tests ($filter)" 30 300 "$OUT/cuda-tests.log" "${tests[@]}" $filter
set +f
grep -E "^[0-9.]+ s: |test cases|assertions" "$OUT/cuda-tests.log" | tail -40

# 1b. The NCCL engine at world size 1 (one GPU: no mpirun needed): device collectives, the data-parallel
# wrapper against the plain step bit for bit, and the wrapper's overhead on the grcnn55 bf16 step.
if [ -x "$bin/tests/test_dist_cuda" ]; then
  stage "NCCL engine tests" 20 120 "$OUT/dist-cuda.log" "$bin/tests/test_dist_cuda" --use-colour no
  grep -E "NCCL|test cases|assertions|FAILED" "$OUT/dist-cuda.log" | tail -8
  [ "$bench" = 1 ] && JSONL="$OUT/bench-dist.jsonl" stage "NCCL wrapper overhead (grcnn55 bf16)" 60 150 "$OUT/dist-cuda.log" \
    bash -c "$tee_jsonl" _ "$bin/benchmarks/bench_data_parallel" --backend cuda --arch grcnn55 --side 224 --batch 128 \
    --precision bf16 --steps 20 --warmup 3 --compare-plain
else
  echo "NCCL engine: not in this build (no nccl.h at configure time)" | tee -a "$OUT/stages.txt"
fi

bench() {  # bench PRECISION LAYOUT [more options]: each convolution search's timings go to the log
  local p=$1 l=$2 run; shift 2
  case "$p" in fp32) run=cuda ;; *) run=cuda-$p ;; esac  # bench_backends' CUDA runs: cuda, cuda-tf32, cuda-bf16
  GRCNN_CUDNN_API=auto GRCNN_CUDNN_LOG=1 JSONL="$OUT/bench-grcnn-cuda.jsonl" stage "grcnn bench $p $l${*:+ $*}" 40 150 "$OUT/bench-profile.txt" \
    bash -c "$tee_jsonl" _ "$bin/benchmarks/bench_backends" --backends "$run" --layout "$l" --steps 10 --warmup 3 \
    ${profile:+--profile} "$@"
}
torch_bench() {  # torch_bench PRECISIONS, eager
  JSONL="$OUT/bench-torch.jsonl" stage "torch bench $1" 60 240 "$OUT/bench-torch.log" bash -c "$tee_jsonl" _ \
    $py "$here/benchmarks/run_gpu_torch_benchmark.py" --steps 10 --warmup 3 --precisions "$1"
}
torch_compile_bench() {  # torch_compile_bench PRECISIONS: torch.compile compiles for minutes, a stage of its own
  JSONL="$OUT/bench-torch.jsonl" stage "torch.compile bench $1" 120 330 "$OUT/bench-torch.log" bash -c "$tee_jsonl" _ \
    $py "$here/benchmarks/run_gpu_torch_benchmark.py" --steps 10 --warmup 3 --precisions "" --compile "$1"
}
if [ "$bench" = 1 ]; then
  # 2. bf16 mixed precision: tensor cores want channels-last.
  bench bf16 nhwc
  [ "$torch" = 1 ] && torch_bench bf16
  [ "$torch" = 1 ] && [ -n "$compile" ] && torch_compile_bench "$compile"
  # 3. fp32 and tf32: the legacy cuDNN API is fastest on NCHW for 4-byte types (docs/benchmarks.md).
  if [ "$wide" = 1 ]; then
    bench fp32 "${BENCH_LAYOUT:-nchw}"
    bench tf32 "${BENCH_LAYOUT:-nchw}"
    [ "$torch" = 1 ] && torch_bench fp32,tf32
  fi
fi

# 4. What matters less per second of device time.
[ "$full" = 1 ] && stage "tests [full]" 60 200 "$OUT/cuda-tests-full.log" "${tests[@]}" "[full]"
if [ "$sanitize" = 1 ]; then
  stage "compute-sanitizer memcheck" 60 200 "$OUT/sanitizer.log" \
    compute-sanitizer --tool memcheck --error-exitcode 9 "${tests[@]}" "~[model]"
  tail -3 "$OUT/sanitizer.log"
fi
# The tools on the GPU: grcnn-infer against PyTorch; a short grcnn-train run on the GPU (--backend auto)
# whose checkpoint then evaluates identically on CPU and GPU. Needs a Fashion-MNIST folder ($FMNIST_DIR).
if [ "$tools" = 1 ] && [ -x "$bin/examples/grcnn-infer" ]; then
  stage "grcnn-infer check" 40 120 "$OUT/tools.log" \
    $py "$here/tests/torch/check_gpu_tools.py" --infer "$bin/examples/grcnn-infer" --work /tmp/grcnn-infer-check
fi
fmnist=${FMNIST_DIR:-$here/.devcarry/fmnist-mini}
if [ "$tools" = 1 ] && [ -x "$bin/examples/grcnn-train" ] && [ -d "$fmnist" ]; then
  t=/tmp/grcnn-train-check
  rm -rf "$t"
  stage "grcnn-train on the GPU" 90 150 "$OUT/tools.log" \
    "$bin/examples/grcnn-train" --arch grcnn_small --dataset fashion-mnist --data "$fmnist" --epochs 2 --batch 128 \
    --schedule onecycle --lr 0.3 --wd 5e-4 --no-decay-bn-bias --workers 4 --backend auto --out "$t/run"
  grep -E "backend:|summary:|eval " "$OUT/tools.log" | tail -4
  ckpt=$(ls "$t"/run/checkpoint-*.safetensors 2>/dev/null | sort -V | tail -1)
  if [ -z "$ckpt" ] && grep -q "^grcnn-train on the GPU: exit" "$OUT/stages.txt"; then
    echo "tools check: the GPU run wrote no checkpoint" | tee -a "$OUT/stages.txt"; status=1
  fi
  if [ -n "$ckpt" ]; then
    for b in cpu cuda; do
      stage "grcnn-train --eval-only --backend $b" 20 60 "$t/eval-$b.log" \
        "$bin/examples/grcnn-train" --arch grcnn_small --dataset fashion-mnist --data "$fmnist" --eval-only \
        --resume "$ckpt" --backend $b --out "$t/eval-$b"
      grep "^eval" "$t/eval-$b.log" | sed "s/^/$b: /" | tee "$t/eval-$b.txt" | tee -a "$OUT/tools.log"
    done
    # The checkpoint trained on the GPU must evaluate to the same top-1 on both backends.
    if [ ! -s "$t/eval-cpu.txt" ] || [ ! -s "$t/eval-cuda.txt" ]; then
      echo "tools check: an evaluation of the checkpoint printed no result" | tee -a "$OUT/stages.txt"; status=1
    elif [ "$(sed 's/^[a-z]*: //; s/(.*//' "$t/eval-cpu.txt")" != "$(sed 's/^[a-z]*: //; s/(.*//' "$t/eval-cuda.txt")" ]; then
      echo "tools check: CPU and GPU evaluations of the checkpoint differ" | tee -a "$OUT/stages.txt"; status=1
    fi
  fi
fi

# 5. The bf16 step with the legacy cuDNN API alone: what the graph API's engines add.
[ "$bench" = 1 ] && [ "$wide" = 1 ] && bench bf16 nhwc --cudnn-api legacy

if [ "$bench" = 1 ]; then
  $py - "$OUT" <<'PY' | tee "$OUT/summary.txt"
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
def rows(name):
    p = out / name
    return [json.loads(l) for l in p.read_text().splitlines() if l.startswith("{") and '"mode"' in l] if p.exists() else []
ours, theirs = rows("bench-grcnn-cuda.jsonl"), rows("bench-torch.jsonl")
print(f"{'mode':10} {'precision':9} {'layout':6} {'api':6} {'batch':>5} {'grcnn img/s':>12} {'torch eager':>12} {'torch compile':>13} {'ratio':>6}  conv searches won graph/legacy")
for r in ours:
    t = [x for x in theirs if x["mode"] == r["mode"] and x["precision"] == r["precision"]]
    e = next((x["images_per_s"] for x in t if not x["compiled"]), float("nan"))
    c = next((x["images_per_s"] for x in t if x["compiled"]), float("nan"))
    print(f"{r['mode']:10} {r['precision']:9} {r.get('layout', 'nhwc'):6} {r.get('cudnn_api', '-'):6} {r['batch']:5d} {r['images_per_s']:12.1f} {e:12.1f} {c:13.1f} {r['images_per_s']/e:6.2f}"
          f"  {r.get('conv_searches_won_by_graph', '-')}/{r.get('conv_searches_won_by_legacy', '-')}")
for x in theirs:
    if not any(r["mode"] == x["mode"] and r["precision"] == x["precision"] for r in ours):
        print(f"{x['mode']:10} {x['precision']:9} {'nhwc':6} {'-':6} {x['batch']:5d} {'-':>12} {x['images_per_s']:12.1f}  (compiled={x['compiled']})")
PY
fi
echo "gpu-check: $((SECONDS - start))s of a ${budget}s budget, status $status"
cat "$OUT/stages.txt"
exit $status
