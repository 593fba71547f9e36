#!/usr/bin/env python3
"""PyTorch side of the GPU benchmark: the independent grcnn55 rebuild (tests/torch/grcnn_reference.py) on
the GPU, channels_last, cudnn.benchmark, in fp32 (tf32 off), tf32 and bf16 autocast; a training step
(forward, cross-entropy, backward, SGD momentum 0.9 + weight decay) at --train-batch and inference at
--infer-batch. Prints one JSON object per (precision, mode, compiled) like bench_backends' CUDA runs do.
--compile adds torch.compile runs (slow to compile: minutes)."""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here.parent / "tests" / "torch"))
from grcnn_reference import build  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--arch", default="grcnn55")
p.add_argument("--train-batch", type=int, default=128)
p.add_argument("--infer-batch", type=int, default=256)
p.add_argument("--size", type=int, default=224)
p.add_argument("--classes", type=int, default=1000)
p.add_argument("--steps", type=int, default=10)
p.add_argument("--warmup", type=int, default=3)
p.add_argument("--precisions", default="fp32,tf32,bf16")
p.add_argument("--compile", default="", help="comma list of precisions to also run with torch.compile")
args = p.parse_args()

dev = torch.device("cuda")
torch.backends.cudnn.benchmark = True


def timed(fn, steps, warmup):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts)


def run(precision, compiled):
    tf32 = precision != "fp32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    net = build(args.arch, args.classes).to(dev).to(memory_format=torch.channels_last)
    model = torch.compile(net) if compiled else net
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    ctx = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if precision == "bf16" else (lambda: torch.autocast("cuda", enabled=False))
    out = []
    x = (torch.rand(args.train_batch, 3, args.size, args.size, device=dev) * 2 - 1).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, args.classes, (args.train_batch,), device=dev)

    def train_step():
        opt.zero_grad(set_to_none=True)
        with ctx():
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    net.train()
    torch.cuda.reset_peak_memory_stats()
    med, mn = timed(train_step, args.steps, args.warmup)
    out.append({"mode": "train", "precision": precision, "compiled": compiled, "batch": args.train_batch,
                "median_s": med, "min_s": mn, "images_per_s": args.train_batch / med,
                "peak_bytes_allocated": torch.cuda.max_memory_allocated()})
    del x, y
    xi = (torch.rand(args.infer_batch, 3, args.size, args.size, device=dev) * 2 - 1).contiguous(memory_format=torch.channels_last)
    net.eval()

    def infer():
        with torch.no_grad(), ctx():
            model(xi)

    torch.cuda.reset_peak_memory_stats()
    med, mn = timed(infer, args.steps, args.warmup)
    out.append({"mode": "inference", "precision": precision, "compiled": compiled, "batch": args.infer_batch,
                "median_s": med, "min_s": mn, "images_per_s": args.infer_batch / med,
                "peak_bytes_allocated": torch.cuda.max_memory_allocated()})
    return out


print(json.dumps({"torch": torch.__version__, "device": torch.cuda.get_device_name(0),
                  "cudnn": torch.backends.cudnn.version()}), flush=True)
for prec in [s for s in args.precisions.split(",") if s]:
    for r in run(prec, False):
        print(json.dumps(r), flush=True)
for prec in [s for s in args.compile.split(",") if s]:
    for r in run(prec, True):
        print(json.dumps(r), flush=True)
