#!/usr/bin/env python3
"""Turns a grcnn-train metrics log (metrics.jsonl) into PNG curves: loss, top-1 accuracy and learning
rate against the global step.

  plot_metrics.py RUN_DIR/metrics.jsonl [-o RUN_DIR/curves.png]

Records of a resumed run that repeat a global step (written after the last checkpoint of the
interrupted part) are replaced by the later ones.
"""
import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def num(v):
    """A metric value; NaN/inf are written as null by the C++ JSON writer."""
    return float("nan") if v is None else v


def load(path):
    by_key = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"plot_metrics: {path}:{n}: not a JSON line ({e.msg})")
            if "type" not in r:
                sys.exit(f"plot_metrics: {path}:{n}: record without a 'type'")
            by_key[(r["type"], r.get("global_step", n))] = r
    records = {}
    for (kind, _), r in sorted(by_key.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        records.setdefault(kind, []).append(r)
    return records


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("metrics")
    ap.add_argument("-o", "--output", help="PNG path (default: curves.png beside the log)")
    args = ap.parse_args()
    path = Path(args.metrics)
    if not path.is_file():
        sys.exit(f"plot_metrics: no such file: {path}")
    rec = load(path)
    train, evals = rec.get("train", []), rec.get("eval", [])
    if not train:
        sys.exit(f"plot_metrics: {path} holds no 'train' records")
    out = Path(args.output) if args.output else path.with_name("curves.png")

    fig, (ax_loss, ax_acc, ax_lr) = plt.subplots(1, 3, figsize=(15, 4.2))
    steps = [r["global_step"] for r in train]
    ax_loss.plot(steps, [num(r["loss"]) for r in train], label="train (window mean)", lw=1)
    ax_acc.plot(steps, [100 * num(r["top1"]) for r in train], label="train top-1", lw=1)
    if evals:
        es = [r["global_step"] for r in evals]
        ax_loss.plot(es, [num(r["loss"]) for r in evals], "o-", label="eval")
        ax_acc.plot(es, [100 * num(r["top1"]) for r in evals], "o-", label="eval top-1")
        ax_acc.plot(es, [100 * num(r["top5"]) for r in evals], "s--", label="eval top-5")
        best = max(evals, key=lambda r: num(r["top1"]) if num(r["top1"]) == num(r["top1"]) else -1)
        ax_acc.annotate(f"{100 * best['top1']:.2f}%", (best["global_step"], 100 * best["top1"]),
                        textcoords="offset points", xytext=(-30, 8))
    ax_lr.plot(steps, [num(r["lr"]) for r in train], lw=1)
    for ax, title, ylabel in [(ax_loss, "loss", "cross-entropy"), (ax_acc, "accuracy", "%"),
                              (ax_lr, "learning rate", "lr")]:
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    ax_loss.legend()
    ax_acc.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"plot_metrics: wrote {out}")


if __name__ == "__main__":
    main()
