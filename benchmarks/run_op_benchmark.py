#!/usr/bin/env python3
"""Op benchmark: grcnn (oneDNN) against PyTorch on the same machine, in the same run, same threads.

Runs build/benchmarks/bench_ops, then the same shapes in PyTorch (channels_last, F.conv2d /
F.batch_norm + relu, training mode), and prints a markdown table with the ratio torch_ms / grcnn_ms
(> 1: grcnn is faster). Use the Debian interpreter that has torch: /usr/bin/python3.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

here = Path(__file__).resolve().parent
parser = argparse.ArgumentParser()
parser.add_argument("--build", default=str(here.parent / "build"))
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--reps", type=int, default=5)
parser.add_argument("--out", help="write the markdown table here too")
parser.add_argument("--torch-malloc", choices=["tcmalloc", "glibc"], default="tcmalloc",
                    help="PyTorch's allocator: tcmalloc preloaded (a tuned user's setup) or glibc's malloc")
parser.add_argument("--dtype", choices=["f32", "bf16"], default="f32",
                    help="activation dtype; bf16 as torch's CPU autocast runs these ops: bf16 convolution "
                         "weights, f32 batch-norm parameters")
parser.add_argument("--only", choices=["all", "conv", "bn_relu", "gate"], default="all", help="time only these ops")
args = parser.parse_args()
os.environ["OMP_NUM_THREADS"] = str(args.threads)

sys.path.insert(0, str(here))
import tcmalloc_preload  # noqa: E402  (re-runs this script with tcmalloc preloaded for PyTorch)
import torch  # noqa: E402  (after OMP_NUM_THREADS)
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(args.threads)
spec = json.loads((here / "grcnn55_ops.json").read_text())

ours = {}
proc = subprocess.run([str(Path(args.build) / "benchmarks" / "bench_ops"), "--reps", str(args.reps),
                       "--dtype", args.dtype, "--only", args.only],
                      check=True, capture_output=True, text=True, env=tcmalloc_preload.ours_env())
for line in proc.stdout.splitlines():
    r = json.loads(line)
    ours[r["name"]] = r


def median_ms(fn, reps):
    fn()
    t = []
    for _ in range(reps):
        a = time.perf_counter()
        fn()
        t.append((time.perf_counter() - a) * 1e3)
    return statistics.median(t)


theirs = {}
g = torch.Generator().manual_seed(1)
act = torch.bfloat16 if args.dtype == "bf16" else torch.float32
spec["ops"] = [op for op in spec["ops"] if args.only in ("all", op["op"])]
for op in spec["ops"]:
    x = (torch.rand(op["x"], generator=g) * 2 - 1).to(act).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    if op["op"] == "conv":
        w = (torch.rand(op["w"], generator=g) * 2 - 1).to(act).requires_grad_(True)
        b = (torch.rand(op["w"][0], generator=g) * 2 - 1).to(act).requires_grad_(True) if op["bias"] else None
        f = lambda: F.conv2d(x, w, b, op["stride"], op["pad"], 1, op["groups"])  # noqa: E731
        params = [x, w] + ([b] if b is not None else [])
    elif op["op"] == "gate":
        a, b, yy = [(torch.rand(op["x"], generator=g) * 2 - 1).to(act).contiguous(memory_format=torch.channels_last)
                    .requires_grad_(True) for _ in range(3)]
        f = lambda: x + torch.sigmoid(a + b) * yy  # noqa: E731
        params = [x, a, b, yy]
    else:
        c = op["x"][1]
        gamma, beta = torch.ones(c, requires_grad=True), torch.zeros(c, requires_grad=True)
        rm, rv = torch.zeros(c), torch.ones(c)
        f = lambda: F.relu(F.batch_norm(x, rm, rv, gamma, beta, training=True))  # noqa: E731
        params = [x, gamma, beta]
    with torch.no_grad():
        y = f()
    seed = torch.rand(y.shape, generator=g).to(act).contiguous(memory_format=torch.channels_last)

    def no_grad_fwd():
        with torch.no_grad():
            f()

    def fwd_bwd():
        f().backward(seed)
        for p in params:
            p.grad = None

    theirs[op["name"]] = {"fwd_ms": median_ms(no_grad_fwd, args.reps), "fwd_bwd_ms": median_ms(fwd_bwd, args.reps)}

lines = [f"grcnn55 op shapes at 224x224, batch {spec['batch']}, {args.dtype}, {args.threads} threads, "
         f"median of {args.reps}; torch {torch.__version__}; {tcmalloc_preload.describe()}",
         "",
         "| op | grcnn fwd ms | torch fwd ms | fwd ratio | grcnn fwd+bwd ms | torch fwd+bwd ms | fwd+bwd ratio |",
         "|---|---:|---:|---:|---:|---:|---:|"]
tot = {"of": 0.0, "tf": 0.0, "ob": 0.0, "tb": 0.0}
for op in spec["ops"]:
    n = op["name"]
    o, t = ours[n], theirs[n]
    tot["of"] += o["fwd_ms"]; tot["tf"] += t["fwd_ms"]; tot["ob"] += o["fwd_bwd_ms"]; tot["tb"] += t["fwd_bwd_ms"]
    lines.append(f"| {n} | {o['fwd_ms']:.2f} | {t['fwd_ms']:.2f} | {t['fwd_ms'] / o['fwd_ms']:.2f} | "
                 f"{o['fwd_bwd_ms']:.2f} | {t['fwd_bwd_ms']:.2f} | {t['fwd_bwd_ms'] / o['fwd_bwd_ms']:.2f} |")
lines.append(f"| **total** | {tot['of']:.1f} | {tot['tf']:.1f} | {tot['tf'] / tot['of']:.2f} | {tot['ob']:.1f} | "
             f"{tot['tb']:.1f} | {tot['tb'] / tot['ob']:.2f} |")
table = "\n".join(lines)
print(table)
if args.out:
    Path(args.out).write_text(table + "\n")
