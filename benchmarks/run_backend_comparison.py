#!/usr/bin/env python3
"""Backend comparison in one command: runs build/benchmarks/bench_backends with the options given after
the wrapper's own, then draws its chart (plot_backends.py). Writes OUT/bench.jsonl (one JSON line per run
and mode, and per op and op family with --ops), OUT/table.md (the side-by-side table) and OUT/chart.png.
Use the interpreter that has matplotlib: /usr/bin/python3.

  /usr/bin/python3 benchmarks/run_backend_comparison.py --out results/small -- --arch grcnn_small --size 32 \\
      --classes 10 --batch 128 --backends reference,onednn,onednn-bf16
"""
import argparse
import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--build", default=str(here.parent / "build"))
p.add_argument("--out", default="backend-comparison", help="folder for bench.jsonl, table.md and chart.png")
p.add_argument("bench_args", nargs=argparse.REMAINDER, help="-- then bench_backends' options")
args = p.parse_args()
rest = args.bench_args[1:] if args.bench_args[:1] == ["--"] else args.bench_args
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
jsonl, table, chart = out / "bench.jsonl", out / "table.md", out / "chart.png"
cmd = [str(Path(args.build) / "benchmarks" / "bench_backends"), *rest, "--json", str(jsonl), "--table", str(table)]
print("+", " ".join(cmd), file=sys.stderr)
rc = subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode
if rc != 0:
    sys.exit(f"bench_backends exited with {rc}")
subprocess.run([sys.executable, str(here / "plot_backends.py"), str(jsonl), "-o", str(chart)], check=True)
print(table.read_text())
