#!/usr/bin/env python3
"""The tools on a bad day (issue 21): wrong recipes, wrong flags, hostile files, outputs that are
devices, links, folders or full, evaluations with nothing readable. Every case must end with a clear
message naming what is wrong and exit status 1 or 2: never an abort (134), never a silent success.

  check_hardening.py GRCNN_TRAIN GRCNN_INFER GRCNN_SCORE CUSTOM_TOPOLOGY SOURCE_DIR WORK_DIR
"""
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
from pathlib import Path

import torch

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))
sys.path.insert(0, str(here.parent / "tools"))
from cli_check import check  # noqa: E402
import safetensors_io  # noqa: E402

train_exe, infer_exe, score_exe, topo_exe, source, work = sys.argv[1:7]
source, work = Path(source), Path(work)
shutil.rmtree(work, ignore_errors=True)
work.mkdir(parents=True)


def run(exe, args, name):
    p = subprocess.run([exe] + [str(a) for a in args], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def refused(exe, args, name, *needles, codes=None):
    """The tool exits with one of `codes` (default: any failure status, 1-127: not a signal such as an
    abort, not success) and its output holds every needle."""
    rc, out = run(exe, args, name)
    ok = (0 < rc < 128 if codes is None else rc in codes) and all(n in out for n in needles)
    if not ok:
        sys.exit(f"FAIL: {name} {' '.join(map(str, args))}: exit {rc}, expected {codes} with {needles}\n{out}")
    print(f"ok: {name} refuses ({rc}): {out.strip().splitlines()[-1][:160]}")
    return out


def succeeds(exe, args, name):
    rc, out = run(exe, args, name)
    if rc != 0:
        sys.exit(f"FAIL: {name} {' '.join(map(str, args))}: exit {rc}\n{out}")
    return out


# --- grcnn-train: a short run gives a checkpoint; threads far above the core count are capped --------
quick = ["--arch", "grcnn_small", "--dataset", "fashion-mnist", "--limit-train", "128", "--limit-eval", "64",
         "--epochs", "1", "--batch", "32", "--seed", "1"]
run_dir = work / "run"
run_dir.mkdir()
elsewhere = work / "elsewhere"
elsewhere.mkdir()
os.symlink(elsewhere / "summary-target.json", run_dir / "summary.json")  # a user's link into another folder
out = succeeds(train_exe, quick + ["--threads", "4096", "--out", run_dir], "grcnn-train")
check(f"--threads 4096 is above this machine's {os.cpu_count()} cores; using {os.cpu_count()}" in out,
      "--threads far above the core count is capped with a warning")
check((run_dir / "summary.json").is_symlink() and json.loads((elsewhere / "summary-target.json").read_text())["steps"] == 4,
      "summary.json written through the user's symbolic link, which stays a link")
check(not list(run_dir.glob("*.tmp*")), "no temporary file left in the run folder")
ckpt = sorted(run_dir.glob("checkpoint-*.safetensors"))[-1]

# Recipes: unknown keys, sections and garbage are refused by name (CLI11 ignored them).
for name, text, needle in [("typo", 'lr = 0.1\nlrr = 5.0\n', "unknown key 'lrr'"),
                           ("section", '[optimizer]\nlr = 0.1\n', "section [optimizer]"),
                           ("garbage", 'epochs = 1\nthis is not a setting\n', "this is not a setting"),
                           ("nan", 'lr = nan\n', "--lr")]:  # NaN passes CLI11's comparisons
    recipe = work / f"{name}.toml"
    recipe.write_text(text)
    refused(train_exe, ["--recipe", recipe, "--out", work / f"r_{name}"], "grcnn-train", needle)
good = work / "good.toml"
good.write_text('lr = 0.05  # a comment\nepochs = 1\n')
refused(train_exe, ["--recipe", good, "--dataset", "cifar10", "--out", work / "r_good"], "grcnn-train",
        "needs --data DIR")  # the recipe itself is accepted: the run fails later, for its own reason

refused(train_exe, quick + ["--resume", work, "--out", work / "r_dir"], "grcnn-train", "is a directory")

# An evaluation over zero readable images is an error that names the images, not "top-1 0.00%".
bad_eval = work / "bad_eval"
for c in ["a", "b"]:
    (bad_eval / c).mkdir(parents=True)
    (bad_eval / c / f"broken_{c}.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
out = refused(train_exe, ["--arch", "grcnn_small", "--dataset", "imagefolder", "--eval-only", "--eval-data", bad_eval,
                          "--image-size", "32", "--init-weights", ckpt, "--skip-corrupt", "--classes", "10",
                          "--out", work / "r_eval"], "grcnn-train", "no readable image", "broken_a.png", "broken_b.png")

# --- grcnn-infer -------------------------------------------------------------------------------------
x = torch.randn(2, 3, 32, 32)
safetensors_io.save(work / "x.safetensors", [("input", x)])
# A training checkpoint is accepted as grcnn-train and grcnn-score accept it.
succeeds(infer_exe, ["--arch", "grcnn_small", "--weights", ckpt, "--input", work / "x.safetensors",
                     "--output", work / "y.safetensors"], "grcnn-infer")
y, _ = safetensors_io.load(work / "y.safetensors")
check(tuple(y["logits"].shape) == (2, 10) and torch.isfinite(y["logits"]).all(), "grcnn-infer reads a training checkpoint")
# Outputs: a device stays a device, a link stays a link, a folder is refused.
succeeds(infer_exe, ["--arch", "grcnn_small", "--weights", ckpt, "--input", work / "x.safetensors", "--output", "/dev/null"],
         "grcnn-infer")
check(stat.S_ISCHR(os.stat("/dev/null").st_mode), "--output /dev/null leaves the device node a device")
os.symlink("y.safetensors", work / "y_link.safetensors")
succeeds(infer_exe, ["--arch", "grcnn_small", "--weights", ckpt, "--input", work / "x.safetensors",
                     "--output", work / "y_link.safetensors"], "grcnn-infer")
check((work / "y_link.safetensors").is_symlink(), "--output through a symbolic link writes its target")
refused(infer_exe, ["--arch", "grcnn_small", "--weights", ckpt, "--input", work / "x.safetensors", "--output", work],
        "grcnn-infer", "is a directory", codes=(2,))
refused(infer_exe, ["--arch", "grcnn_small", "--weights", ckpt, "--input", work / "x.safetensors",
                    "--output", "/dev/full"], "grcnn-infer", "No space left on device")
# Inputs: too small, too large for the limit.
safetensors_io.save(work / "tiny.safetensors", [("input", torch.randn(1, 3, 5, 5))])
refused(infer_exe, ["--arch", "grcnn_small", "--weights", ckpt, "--input", work / "tiny.safetensors", "--output",
                    work / "t.safetensors"], "grcnn-infer", "at least 7x7")
refused(infer_exe, ["--arch", "grcnn_small", "--weights", ckpt, "--input", work / "x.safetensors", "--output",
                    work / "t.safetensors", "--max-input-pixels", "1000"], "grcnn-infer", "limit of 1000",
        "--max-input-pixels")
out = refused(infer_exe, ["--arch", "grcnn_small", "--weights", ckpt, "--input", work / "x.safetensors", "--output",
                          work / "t.safetensors", "--max-forward-bytes", "1000"], "grcnn-infer", "for its forward pass",
              "--max-forward-bytes", codes=(1,))
# Weights: a classifier with no class, a header number beyond double range (libFuzzer's find).
state, _ = safetensors_io.load(ckpt)
model = [(k[len("model."):], v) for k, v in state.items() if k.startswith("model.")]
zero = [(k, torch.zeros(0, v.shape[1]) if k == "classifier.weight" else torch.zeros(0) if k == "classifier.bias" else v)
        for k, v in model]
safetensors_io.save(work / "zero_classes.safetensors", zero)
refused(infer_exe, ["--arch", "grcnn_small", "--weights", work / "zero_classes.safetensors", "--input",
                    work / "x.safetensors", "--output", work / "t.safetensors"], "grcnn-infer", "classifier.bias")
header = b'{"x":{"dtype":"F32","shape":[1e999],"data_offsets":[0,4]}}'
(work / "huge_number.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
refused(infer_exe, ["--arch", "grcnn_small", "--weights", work / "huge_number.safetensors", "--input",
                    work / "x.safetensors", "--output", work / "t.safetensors"], "grcnn-infer", "huge_number.safetensors",
        "not valid JSON", codes=(1,))

# --- grcnn-score -------------------------------------------------------------------------------------
hvm = source / "data" / "hvm-mini"
base = ["--arch", "grcnn_small", "--weights", ckpt, "--stimuli", hvm / "images", "--stimulus-csv",
        hvm / "images" / "test_images.csv", "--assembly", hvm / "majaj2015_subset.nc", "--region", "V4",
        "--stratify", "none", "--components", "2", "--layers", "stage_1"]
refused(score_exe, base + ["--time-window", "abc"], "grcnn-score", "--time-window", "abc")
refused(score_exe, base + ["--out", "/dev/full"], "grcnn-score", "No space left on device", codes=(1,))
succeeds(score_exe, base + ["--out", work / "scores.json"], "grcnn-score")
good_report = json.loads((work / "scores.json").read_text())
for name, mutate, needle in [("no_weights", lambda m: m.pop("weights"), "no 'weights' string"),
                             ("no_regions", lambda m: m.pop("regions"), "no 'regions' object"),
                             ("no_ceiled", lambda m: m["regions"]["V4"].pop("ceiled"), "no 'ceiled' score"),
                             ("text_ceiled", lambda m: m["regions"]["V4"].update(ceiled="high"), "'ceiled' is not a number")]:
    r = json.loads(json.dumps(good_report))
    mutate(r["models"][0])
    (work / f"{name}.json").write_text(json.dumps(r))
    refused(score_exe, ["--report", work / f"{name}.json"], "grcnn-score", needle, f"{name}.json", "models[0]", codes=(1,))
dup = json.dumps(good_report)
(work / "dup.json").write_text(dup[:-1] + ', "models": []}')
refused(score_exe, ["--report", work / "dup.json"], "grcnn-score", "'models' twice", codes=(1,))
out = succeeds(score_exe, ["--report", work / "scores.json"], "grcnn-score")
check("V4" in out and "average" in out, "a valid report still prints its summary")

# --- custom_topology ---------------------------------------------------------------------------------
out = succeeds(topo_exe, ["--help"], "custom_topology")
check("Usage" in out or "usage" in out.lower(), "custom_topology --help prints help")
refused(topo_exe, ["--bogus"], "custom_topology", "bogus")
print("all hardening checks passed")
