#!/usr/bin/env python3
"""The data loader against torchvision's, same JPEG folder, same transforms, same machine and run:
decode + RandomResizedCrop(224) + RandomHorizontalFlip + ToTensor + Normalize, batch 32, 2 epochs,
1 and 2 workers. grcnn's bench_loader writes the folder (ImageNet-sized JPEGs) on its first run.
Use the Debian interpreter that has torch and torchvision: /usr/bin/python3.
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

here = Path(__file__).resolve().parent
ap = argparse.ArgumentParser()
ap.add_argument("--build", default=str(here.parent / "build"))
ap.add_argument("--epochs", type=int, default=2)
ap.add_argument("--out", help="write the markdown table here too")
args = ap.parse_args()
sys.path.insert(0, str(here))
import tcmalloc_preload  # noqa: E402  (re-runs this script with tcmalloc preloaded for PyTorch)

bench = Path(args.build) / "benchmarks" / "bench_loader"
ours = [json.loads(line) for line in subprocess.run([str(bench), "--epochs", str(args.epochs)], check=True,
                                                     capture_output=True, text=True, cwd=args.build,
                                                     env=tcmalloc_preload.ours_env()).stdout.splitlines()]
folder = Path(args.build) / ours[0]["folder"]

import torch  # noqa: E402
import torchvision  # noqa: E402
import torchvision.transforms as T  # noqa: E402

torch.set_num_threads(1)
tf = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(),
                T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
ds = torchvision.datasets.ImageFolder(str(folder), tf)
lines = [f"ImageFolder of {len(ds)} JPEGs (500x375, q90), RandomResizedCrop(224) + flip + normalise, batch 32, "
         f"{args.epochs} epochs; torchvision {torchvision.__version__} (PIL)", "",
         "| workers | grcnn images/s | torchvision images/s | ratio |", "|---:|---:|---:|---:|"]
for r in ours:
    w = r["workers"]
    dl = torch.utils.data.DataLoader(ds, batch_size=32, shuffle=True, num_workers=w, drop_last=True,
                                     persistent_workers=True)
    n, t0 = 0, time.perf_counter()
    for _ in range(args.epochs):
        for x, _y in dl:
            n += x.shape[0]
    theirs = n / (time.perf_counter() - t0)
    lines.append(f"| {w} | {r['images_per_s']:.0f} | {theirs:.0f} | {r['images_per_s'] / theirs:.2f} |")
table = "\n".join(lines)
print(table)
if args.out:
    Path(args.out).write_text(table + "\n")
