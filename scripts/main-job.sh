#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install dependencies, build, then train the small
# CIFAR-style GRCNN (grcnn_small) on Fashion-MNIST (real data from Debian's dataset-fashion-mnist) on the
# default backend, evaluate it on the 10,000 test images, and write checkpoints, metrics and curves to
# runs/fashion-mnist (or $GRCNN_RUN_DIR); then score the trained network against the real macaque V4/IT
# recordings shipped in data/hvm-mini (grcnn-score, Brain-Score's pipeline) and plot the scores per layer
# (neural_scores.png). Extra arguments go to grcnn-train (see its --help).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${GRCNN_BUILD_DIR:-$root/build}"
run="${GRCNN_RUN_DIR:-$root/runs/fashion-mnist}"
t0=$(date +%s)
"$root/scripts/install-deps.sh"
# Build only the two programs this job runs; scripts/test.sh builds the rest (tests, benchmarks, the other
# tools) in the same folder. The CUDA component is what grcnn-train's --backend auto runs on where the
# machine has a GPU; without one (no /dev/nvidia<N>) it would train on the CPU anyway, so the CUDA kernels
# are not built for it, and the folder's GRCNN_ENABLE_CUDA setting is put back afterwards for test.sh.
cuda_args=()
if ! compgen -G '/dev/nvidia[0-9]*' >/dev/null && [ ! -e /dev/dxg ]; then
  cuda_before=$(sed -n 's/^GRCNN_ENABLE_CUDA:BOOL=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
  cuda_args=(-DGRCNN_ENABLE_CUDA=OFF)
fi
GRCNN_BUILD_TARGETS="grcnn-train grcnn-score" "$root/scripts/build.sh" "${cuda_args[@]}"
if [ ${#cuda_args[@]} -gt 0 ] && [ "${cuda_before:-}" != OFF ]; then
  if [ -n "${cuda_before:-}" ]; then restore=(-DGRCNN_ENABLE_CUDA="$cuda_before"); else restore=(-UGRCNN_ENABLE_CUDA); fi
  cmake -S "$root" -B "$build" "${restore[@]}" >/dev/null  # reconfigures only; the programs just built stay
fi
t1=$(date +%s)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
# A fresh run starts from an empty folder; `main-job.sh --resume` continues the interrupted one.
case " $* " in *" --resume"*) ;; *) rm -rf "$run" ;; esac
"$build/examples/grcnn-train" --arch grcnn_small --dataset fashion-mnist --epochs 7 --batch 128 \
  --schedule onecycle --lr 0.3 --wd 5e-4 --no-decay-bn-bias --seed 0 --out "$run" "$@"
t2=$(date +%s)
# Neural predictivity on hvm-mini: 25 images, so unstratified splits and 5 PLS components (docs/evaluation.md).
hvm="$root/data/hvm-mini"
"$build/examples/grcnn-score" --arch grcnn_small --weights "$run/best.safetensors" \
  --stimuli "$hvm/images" --stimulus-csv "$hvm/images/test_images.csv" --assembly "$hvm/majaj2015_subset.nc" \
  --drop-neuroids "$hvm/erroneous_neuroids.txt" --region V4,IT --layers stage_1,stage_2,stage_3 \
  --stratify none --components 5 --out "$run/neural_scores.json"
t3=$(date +%s)
python=/usr/bin/python3; [ -x "$python" ] || python=python3
"$python" "$root/tools/plot_metrics.py" "$run/metrics.jsonl" -o "$run/curves.png"
"$python" "$root/tools/plot_scores.py" "$run/neural_scores.json" -o "$run/neural_scores.png"
"$python" - "$run/summary.json" "$((t1 - t0))" "$((t2 - t1))" "$run/neural_scores.json" "$((t3 - t2))" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
n = json.load(open(sys.argv[4]))
print("\nmain job summary")
print(f"  model        {s['arch']} ({s['parameters']:,} parameters), {s['threads']} threads")
print(f"  install+build {sys.argv[2]} s; training + evaluation {sys.argv[3]} s")
print(f"  training     {s['steps']} steps, {s['train_seconds']:.1f} s, {s['train_images_per_s']:.0f} images/s ({s['outcome']})")
if "eval_top1" in s:
    print(f"  test set     top-1 {100 * s['eval_top1']:.2f}%, top-5 {100 * s['eval_top5']:.2f}%")
def f3(v):  # grcnn-score writes NaN scores as null
    return "nan" if v is None else f"{v:.3f}"
for region, r in n["models"][0]["regions"].items():
    print(f"  hvm-mini {region:3s} best layer {r['best']}: raw r {f3(r['raw'])} +- {f3(r['error'])}, "
          f"ceiling {f3(n['regions'][region]['ceiling'])}, ceiled {f3(r['ceiled'])} ({sys.argv[5]} s)")
print(f"  files        {s['checkpoint']}, metrics.jsonl, curves.png, summary.json, neural_scores.json, neural_scores.png")
PY
