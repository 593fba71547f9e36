#!/usr/bin/env python3
"""Chart of a backend comparison: reads bench_backends' JSON lines (its stdout, or its --json file) and
writes a PNG with images/s per run and mode (log scale; each bar labelled with its value, the reference's
with its reduced size) and, when the lines hold --ops results, milliseconds per op family (forward and
forward+backward) per run. Needs matplotlib: /usr/bin/python3 benchmarks/plot_backends.py RUN.jsonl -o RUN.png
"""
import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("jsonl", help="bench_backends' JSON lines (- for stdin)")
    p.add_argument("-o", "--out", help="the PNG (default: the input's name with .png)")
    p.add_argument("--title", help="the chart's title (default: the architecture)")
    args = p.parse_args()
    rows = load(args.jsonl)
    model = [r for r in rows if "mode" in r and "backend" in r]
    fams = [r for r in rows if r.get("kind") == "op_family"]
    if not model and not fams:
        sys.exit("plot_backends: no bench_backends lines in " + args.jsonl)
    # Runs with several activation orders (--layout both) get one column per order.
    orders = {}
    for r in model:
        orders.setdefault(r["backend"], set()).add(r.get("layout", ""))
    label = lambda r: r["backend"] + (f"/{r['layout']}" if len(orders.get(r["backend"], ())) > 1 else "")  # noqa: E731
    runs = list(dict.fromkeys([label(r) for r in model] + [r["backend"] for r in fams]))

    panels = (1 if model else 0) + (1 if fams else 0)
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels + 1, 4.8), squeeze=False)
    axes = axes[0]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    arch = next((r.get("arch") for r in model), "grcnn55")
    k = 0
    if model:
        ax = axes[k]
        k += 1
        modes = [m for m in ("inference", "train") if any(r["mode"] == m for r in model)]
        width = 0.8 / len(modes)
        labelled = set()
        for i, m in enumerate(modes):
            for j, run in enumerate(runs):
                r = next((x for x in model if x["mode"] == m and label(x) == run), None)
                if r is None:
                    continue
                x = j + (i - (len(modes) - 1) / 2) * width
                ax.bar(x, r["images_per_s"], width, color=colors[i], label=None if m in labelled else m)
                labelled.add(m)
                v = r["images_per_s"]
                text = f"{v:.0f}" if v >= 1000 else f"{v:.3g}"
                if r["backend"] == "reference":
                    text += f"\n({r['size']} px)"
                ax.annotate(text, (x, r["images_per_s"]), ha="center", va="bottom", fontsize=7)
        ax.set_yscale("log")
        ax.set_xticks(range(len(runs)))
        ticks = []
        for run in runs:
            r = next((x for x in model if label(x) == run), None)
            dev = r.get("max_rel_dev") if r else None
            batches = "/".join(dict.fromkeys(str(x["batch"]) for x in model if label(x) == run))
            size = f"\nbatch {batches} @ {r['size']} px" if r else ""
            ticks.append(run + size + (f"\ndev {dev:.1g}" if dev else ""))
        ax.set_xticklabels(ticks, fontsize=8)
        ax.set_ylabel("images/s (log)")
        ax.set_title("whole network: images/s (dev: max rel. deviation from reference<f64>)", fontsize=9)
        ax.legend(fontsize=8)
        ax.margins(y=0.15)
    if fams:
        ax = axes[k]
        order = {"conv": 0, "bn_relu": 1, "gate": 2}
        families = sorted(dict.fromkeys(r["family"] for r in fams), key=lambda f: (order.get(f, 3), f))
        fam_runs = list(dict.fromkeys(r["backend"] for r in fams))
        width = 0.8 / len(fam_runs)
        for j, run in enumerate(fam_runs):
            for i, f in enumerate(families):
                r = next((x for x in fams if x["backend"] == run and x["family"] == f), None)
                if r is None:
                    continue
                x = i + (j - (len(fam_runs) - 1) / 2) * width
                ax.bar(x, r["fwd_bwd_ms"], width, color=colors[j % len(colors)], alpha=0.45,
                       label=f"{run} (batch {r['batch']})" if i == 0 else None)
                ax.bar(x, r["fwd_ms"], width, color=colors[j % len(colors)])
                v = r["fwd_bwd_ms"]
                ax.annotate(f"{v:.0f}" if v >= 100 else f"{v:.3g}", (x, v), ha="center", va="bottom", fontsize=7)
        ax.set_yscale("log")
        ax.set_xticks(range(len(families)))
        ax.set_xticklabels(families)
        ax.set_ylabel("ms (log): solid forward, light forward+backward")
        ax.set_title("grcnn55's op shapes: ms per op family", fontsize=9)
        ax.legend(fontsize=8)
        ax.margins(y=0.15)
    fig.suptitle(args.title or f"{arch}: backends side by side")
    fig.tight_layout()
    out = Path(args.out) if args.out else Path(args.jsonl).with_suffix(".png")
    fig.savefig(out, dpi=120)
    print(out)


if __name__ == "__main__":
    main()
