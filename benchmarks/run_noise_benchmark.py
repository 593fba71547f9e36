#!/usr/bin/env python3
"""Normal draws for the VOneBlock's noise map: grcnn's counter-based draws (bench_noise) beside
torch.randn in the same run, same shape, dtype, memory format and thread count."""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tcmalloc_preload  # noqa: E402  (re-runs this script with tcmalloc preloaded for PyTorch)
import torch  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--bench", default=str(Path(__file__).resolve().parents[1] / "build/benchmarks/bench_noise"))
parser.add_argument("--shape", type=int, nargs=4, default=[16, 512, 56, 56])
parser.add_argument("--reps", type=int, default=7)
parser.add_argument("--threads", type=int, default=2)
args = parser.parse_args()

env = dict(tcmalloc_preload.ours_env(), OMP_NUM_THREADS=str(args.threads))
out = subprocess.run([args.bench, "--shape", *map(str, args.shape), "--reps", str(args.reps)], env=env,
                     capture_output=True, text=True, check=True).stdout
ours = [json.loads(line) for line in out.splitlines() if line.strip()]

torch.set_num_threads(args.threads)


def torch_ms(dtype, channels_last):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    torch.randn(*args.shape, dtype=dtype).contiguous(memory_format=fmt)  # warm-up
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        torch.randn(*args.shape, dtype=dtype).contiguous(memory_format=fmt)
        times.append(1e3 * (time.perf_counter() - t0))
    return sorted(times)[len(times) // 2]


print(f"normal draws, shape {args.shape}, {args.threads} threads (median of {args.reps})")
print(f"{'dtype':6} {'layout':6} {'grcnn ms':>9} {'torch ms':>9} {'ratio':>6}")
for r in ours:
    dtype = torch.float32 if r["dtype"] == "f32" else torch.bfloat16
    t = torch_ms(dtype, r["layout"] == "nhwc")
    print(f"{r['dtype']:6} {r['layout']:6} {r['median_ms']:9.1f} {t:9.1f} {t / r['median_ms']:6.2f}")
