#!/usr/bin/env python3
"""End-to-end benchmark: grcnn (oneDNN) against PyTorch, same machine, same run, same thread count.

grcnn55 at 224x224 (or grcnn109, or the main job's grcnn_small with --size 32 --classes 10 --batch 128), f32:
inference (eval, no grad) and a training step (forward, cross-entropy, backward, SGD momentum 0.9 + weight
decay), batch 16 by default. PyTorch runs the independent rebuild in
tests/torch/grcnn_reference.py with channels_last. Prints images/s and the ratio grcnn / PyTorch;
--precision bf16 sets grcnn's mixed precision against torch.autocast, --rounds alternates the two.
Use the Debian interpreter that has torch: /usr/bin/python3.
"""
import argparse
import contextlib
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
parser.add_argument("--arch", default="grcnn55", choices=["grcnn55", "grcnn109", "grcnn_small"])
parser.add_argument("--size", type=int, default=224)
parser.add_argument("--classes", type=int, default=1000)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--batch", type=int, default=16)
parser.add_argument("--steps", type=int, default=5)
parser.add_argument("--warmup", type=int, default=2)
parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                    help="bf16: grcnn's mixed precision against torch.autocast('cpu', torch.bfloat16)")
parser.add_argument("--rounds", type=int, default=1,
                    help="alternate grcnn and PyTorch this many times and pool the steps: the shared machine's "
                         "speed drifts by tens of percent within minutes, so one back-to-back pair can mislead")
parser.add_argument("--out", help="write the markdown table here too")
parser.add_argument("--torch-malloc", choices=["tcmalloc", "glibc"], default="tcmalloc",
                    help="PyTorch's allocator: tcmalloc preloaded (a tuned user's setup) or glibc's malloc")
args = parser.parse_args()
if args.rounds < 1 or args.steps < 1:
    parser.error("--rounds and --steps must be at least 1")
os.environ["OMP_NUM_THREADS"] = str(args.threads)

sys.path.insert(0, str(here))
import tcmalloc_preload  # noqa: E402  (re-runs this script with tcmalloc preloaded for PyTorch)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(here.parent / "tests" / "torch"))
from grcnn_reference import build  # noqa: E402

torch.set_num_threads(args.threads)
common = ["--arch", args.arch, "--batch", str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup),
          "--size", str(args.size), "--classes", str(args.classes)]
bench = Path(args.build) / "benchmarks"
if (bench / "bench_backends").exists():
    # oneDNN's run of the backend comparison, without its reference<double> deviation check.
    cmd = [str(bench / "bench_backends"), "--backends", "onednn" if args.precision == "fp32" else "onednn-bf16",
           "--no-check", *common]
else:  # a build from before bench_grcnn was folded into bench_backends (--build OLD)
    cmd = [str(bench / "bench_grcnn"), *common, "--precision", args.precision]


def run_ours():
    out = {}
    for line in subprocess.run(cmd, check=True, capture_output=True, text=True,
                               env=tcmalloc_preload.ours_env()).stdout.splitlines():
        if line.startswith("{") and '"mode"' in line:
            r = json.loads(line)
            out[r["mode"]] = r
    return out

net = build(args.arch, args.classes).to(memory_format=torch.channels_last)
x = (torch.rand(args.batch, 3, args.size, args.size) * 2 - 1).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, args.classes, (args.batch,))
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)


def step_times(fn):
    for _ in range(args.warmup):
        fn()
    t = []
    for _ in range(args.steps):
        a = time.perf_counter()
        fn()
        t.append(time.perf_counter() - a)
    return t


def autocast():
    return torch.autocast("cpu", dtype=torch.bfloat16) if args.precision == "bf16" else contextlib.nullcontext()


def infer():
    with torch.no_grad(), autocast():
        net(x)


def train_step():
    opt.zero_grad(set_to_none=True)
    with autocast():
        logits = net(x)
    F.cross_entropy(logits.float(), y).backward()
    opt.step()


modes = ("inference", "train")
ours_steps = {m: [] for m in modes}
theirs_steps = {m: [] for m in modes}
ours_rounds = {m: [] for m in modes}
theirs_rounds = {m: [] for m in modes}
for _ in range(args.rounds):
    ours = run_ours()
    net.eval()
    t_inf = step_times(infer)
    net.train()
    t_train = step_times(train_step)
    for m, t in (("inference", t_inf), ("train", t_train)):
        ours_steps[m] += ours[m]["step_s"]
        ours_rounds[m].append(args.batch / ours[m]["median_s"])
        theirs_steps[m] += t
        theirs_rounds[m].append(args.batch / statistics.median(t))

lines = [f"{args.arch} at {args.size}x{args.size}, batch {args.batch}, {args.precision}, {args.threads} threads, median of "
         f"{args.steps} steps after {args.warmup} warm-up steps"
         f"{f', pooled over {args.rounds} alternating rounds' if args.rounds > 1 else ''}; torch {torch.__version__} "
         f"(channels_last{', autocast bf16' if args.precision == 'bf16' else ''}); {tcmalloc_preload.describe()}", "",
         "| mode | grcnn images/s | PyTorch images/s | ratio | grcnn rounds | PyTorch rounds |",
         "|---|---:|---:|---:|---|---|"]
for mode in modes:
    o = args.batch / statistics.median(ours_steps[mode])
    t = args.batch / statistics.median(theirs_steps[mode])
    spread = lambda r: f"{min(r):.2f}-{max(r):.2f}"  # noqa: E731
    lines.append(f"| {mode} | {o:.2f} | {t:.2f} | {o / t:.2f} | {spread(ours_rounds[mode])} | "
                 f"{spread(theirs_rounds[mode])} |")
lines.append("")
lines.append("grcnn steady state (last round): " + ", ".join(
    f"{m}: {ours[m]['steady_system_allocations']} system allocations, {ours[m]['steady_plans_created']} plans created"
    for m in ("inference", "train")) + f"; peak tensor memory {ours['train']['peak_bytes'] / 2**20:.0f} MiB")
table = "\n".join(lines)
print(table)
if args.out:
    Path(args.out).write_text(table + "\n")
