#!/usr/bin/env python3
"""The paper's two fine-tuning procedures from their recipe files, in a reduced form on the default data:

  check_recipes.py GRCNN_TRAIN RECIPES_DIR WORK_DIR [GRCNN_MAKE_NOISE]

1. a base grcnn_small is trained briefly on Fashion-MNIST (the stand-in for grcnn55's ImageNet weights);
2. recipes/fmnist-behavior.toml fine-tunes it with CutMix, AugMix + JSD and the superclass term: every
   layer changes;
3. recipes/fmnist-v1.toml (texture + noise views, only stage_1 trains) and recipes/fmnist-v2.toml (texture
   views, only stage_2 trains, from stage V1's weights): outside the trained layer nothing changes, BN
   statistics included, and the trained layer does change;
4. a command-line flag overrides the recipe, and bad combinations are refused with a message;
5. grcnn-make-noise turns the shipped textures into noise images that stage V1 reads with --noise.
"""
import math
import subprocess
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_check import check, runner  # noqa: E402

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import safetensors_io  # noqa: E402

exe, recipes, work = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
shutil.rmtree(work, ignore_errors=True)  # a rerun starts clean: the trainer refuses a used folder
work.mkdir(parents=True)
make_noise = sys.argv[4] if len(sys.argv) > 4 else None
reduced = ["--limit-train", "256", "--limit-eval", "256", "--epochs", "1", "--batch", "32", "--backend", "cpu",
           "--seed", "1"]


run = runner(exe)


def weights(path):
    tensors, _ = safetensors_io.load(str(path))
    return {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}


def changed(a, b):
    return {k for k in a if a[k].dtype.is_floating_point and not torch.equal(a[k], b[k])}


def summary_ok(out):
    import json
    s = json.loads((out / "summary.json").read_text())
    check(s["outcome"] == "finished" and math.isfinite(s["eval_loss"]), f"{out.name}: finished, eval loss {s['eval_loss']:.4f}")


base = work / "base"
run(["--arch", "grcnn_small", "--dataset", "fashion-mnist", "--lr", "0.1", "--out", str(base)] + reduced)
w0 = weights(base / "best.safetensors")

beh = work / "behavior"
log = run(["--recipe", str(recipes / "fmnist-behavior.toml"), "--init-weights", str(base / "best.safetensors"),
           "--out", str(beh)] + reduced)
check("superclass term: weight 1, 4 superclasses" in log, "behavior: the superclass term is on, 4 Fashion-MNIST superclasses")
summary_ok(beh)
c = changed(w0, weights(beh / "checkpoint-8.safetensors"))
check({k.split(".")[0] for k in c} >= {"conv_3x3", "stage_1", "stage_2", "stage_3", "classifier"},
      "behavior: every layer is fine-tuned")

v1 = work / "v1"
log = run(["--recipe", str(recipes / "fmnist-v1.toml"), "--init-weights", str(base / "best.safetensors"), "--out", str(v1)] + reduced)
check("textures: 3" in log and "noise: 3 phase-randomised" in log, "v1: texture and noise views from the shipped textures")
summary_ok(v1)
w1 = weights(v1 / "checkpoint-8.safetensors")
c = changed(w0, w1)
check(c and all(k.startswith("stage_1.") for k in c), f"v1: only stage_1 changed ({len(c)} tensors, BN statistics of frozen layers kept)")

v2 = work / "v2"
run(["--recipe", str(recipes / "fmnist-v2.toml"), "--init-weights", str(v1 / "checkpoint-8.safetensors"), "--out", str(v2)] + reduced)
summary_ok(v2)
c = changed(w1, weights(v2 / "checkpoint-8.safetensors"))
check(c and all(k.startswith("stage_2.") for k in c), f"v2: only stage_2 changed ({len(c)} tensors)")

# A flag overrides the recipe; refusals name the problem.
log = run(["--recipe", str(recipes / "fmnist-v2.toml"), "--init-weights", str(v1 / "checkpoint-8.safetensors"),
           "--frozen-bn", "train", "--out", str(work / "v2-train-bn"), "--stop-after", "1"] + reduced)
check("frozen layers in evaluation mode" not in log, "--frozen-bn train on the command line overrides the recipe")
err = run(["--recipe", str(recipes / "fmnist-behavior.toml"), "--mixup", "0.2", "--cutmix-beta", "0", "--out", str(work / "x")] + reduced, 2)
check("--mixup does not combine with multi-view batches" in err, "mixup with AugMix views is refused")
err = run(["--recipe", str(recipes / "fmnist-behavior.toml"), "--superclass-target", "human", "--out", str(work / "y")] + reduced, 1)
check("superclass confusion" in err and "the superclass map" in err, "an ImageNet confusion matrix for Fashion-MNIST superclasses is refused")
err = run(["--recipe", str(work / "missing.toml")], 103)  # CLI11's file error
check("missing.toml was not readable" in err, "a missing recipe file is named")

if make_noise:
    from PIL import Image
    import numpy as np
    textures = recipes.parent / "data" / "textures"
    noise = work / "noise"
    p = subprocess.run([make_noise, "--in", str(textures), "--out", str(noise), "--size", "32", "--seed", "4"],
                       capture_output=True, text=True)
    check(p.returncode == 0, "grcnn-make-noise ran\n" + p.stdout + p.stderr)
    files = sorted(noise.glob("uniform_*.png"))
    check(len(files) == 3, f"grcnn-make-noise wrote {len(files)} noise images")
    src = np.asarray(Image.open(textures / "brick.png").convert("RGB").resize((32, 32), Image.BILINEAR)).astype(float)
    out = np.asarray(Image.open(noise / "uniform_brick.png").convert("RGB")).astype(float)
    corr = np.corrcoef(src.ravel(), out.ravel())[0, 1]
    check(out.shape == (32, 32, 3) and abs(corr) < 0.3, f"the noise image is 32x32 and decorrelated from its texture (r = {corr:.3f})")
    p2 = subprocess.run([make_noise, "--in", str(textures), "--out", str(work / "noise2"), "--size", "32", "--seed", "4"],
                        capture_output=True, text=True)
    same = all(Image.open(f).tobytes() == Image.open(work / "noise2" / f.name).tobytes() for f in files)
    check(p2.returncode == 0 and same, "grcnn-make-noise is deterministic for a seed")
    log = run(["--recipe", str(recipes / "fmnist-v1.toml"), "--init-weights", str(base / "best.safetensors"),
               "--noise", str(noise), "--out", str(work / "v1-noise-folder"), "--stop-after", "2"] + reduced)
    check(f"noise: 3 from {noise}" in log, "stage V1 reads the noise folder")
    p = subprocess.run([make_noise, "--in", str(work / "empty"), "--out", str(work / "z")], capture_output=True, text=True)
    check(p.returncode != 0 and "empty" in p.stderr, "a missing input folder is refused")
print("all recipe checks passed")
