#!/usr/bin/env python3
"""grcnn-train end to end, the main job in a reduced form (so it cannot silently break):

  check_train.py GRCNN_TRAIN PLOT_TOOL WORK_DIR

1. trains grcnn_small on the first 6,400 Fashion-MNIST images for one epoch (100 steps), stopping after
   60 steps and resuming with --resume; checks the summary (accuracy on 2,000 test images well above
   chance), the metrics log, the rotated checkpoints, and that the plot tool writes a PNG;
2. a fresh run into that folder is refused; a real SIGINT writes a checkpoint and exits with 130, and
   --resume finishes the run;
3. --eval-only from the final checkpoint reproduces the final evaluation;
4. bad flag values and bad paths are rejected with a message naming them.
"""
import json
import signal
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_check import check, runner  # noqa: E402

exe, plot, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])
shutil.rmtree(work, ignore_errors=True)  # a rerun starts clean: the trainer refuses a used folder
work.mkdir(parents=True)
out = work / "run"
common = ["--arch", "grcnn_small", "--dataset", "fashion-mnist", "--limit-train", "6400", "--limit-eval", "2000",
          "--epochs", "1", "--batch", "64", "--schedule", "onecycle", "--lr", "0.2", "--wd", "5e-4", "--seed", "3",
          "--backend", "cpu", "--out", str(out)]


run = runner(exe)


subprocess.run(["rm", "-rf", str(out)], check=True)
first = run(common + ["--stop-after", "60"])
check("stopped after step 60" in first, "--stop-after stops with a checkpoint")
check((out / "checkpoint-60.safetensors").exists(), "checkpoint-60 written")
second = run(common + ["--resume"])
check("resumed from" in second and "iteration 60" in second, "--resume continues at iteration 60")
summary = json.loads((out / "summary.json").read_text())
check(summary["outcome"] == "finished" and summary["steps"] == 40, "the resumed part ran the remaining 40 steps")
top1 = summary["eval_top1"]
check(top1 > 0.70, f"100 steps reach {100 * top1:.2f}% top-1 on 2,000 test images (> 70%)")
records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
kinds = {r["type"] for r in records}
check({"train", "epoch", "eval"} <= kinds, "metrics.jsonl holds train, epoch and eval records")
check((out / "best.safetensors").exists(), "best.safetensors kept")

fresh = subprocess.run([exe] + common, capture_output=True, text=True)
check(fresh.returncode != 0 and "already holds checkpoints" in fresh.stderr,
      "a fresh run into a folder with checkpoints is refused (resume it or choose another folder)")

p = subprocess.run([sys.executable, plot, str(out / "metrics.jsonl"), "-o", str(out / "curves.png")],
                   capture_output=True, text=True)
check(p.returncode == 0 and (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "plot tool writes curves.png")

# A real SIGINT: the run writes a checkpoint, exits with 130, and --resume finishes it.
sig_out = work / "sigint"
subprocess.run(["rm", "-rf", str(sig_out)], check=True)
sig_args = [a if a != str(out) else str(sig_out) for a in common]
proc = subprocess.Popen([exe] + sig_args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
deadline = time.time() + 120
while not (sig_out / "metrics.jsonl").exists() and time.time() < deadline and proc.poll() is None:
    time.sleep(0.05)  # the log is opened once the handlers are installed
time.sleep(1.0)
proc.send_signal(signal.SIGINT)
text, _ = proc.communicate(timeout=120)
check(proc.returncode == 130 and "interrupted (SIGINT)" in text, "SIGINT writes a checkpoint and exits with 130")
check(any(sig_out.glob("checkpoint-*.safetensors")), "the interrupted run left a checkpoint")
text = run(sig_args + ["--resume"])
check(json.loads((sig_out / "summary.json").read_text())["outcome"] == "finished", "--resume finishes the interrupted run")

# bf16 mixed precision: the same 100 steps reach the same bar; checkpoints stay f32.
bf = work / "bf16"
subprocess.run(["rm", "-rf", str(bf)], check=True)
run([a if a != str(out) else str(bf) for a in common] + ["--precision", "bf16"])
bf_summary = json.loads((bf / "summary.json").read_text())
check(bf_summary["precision"] == "bf16" and bf_summary["eval_top1"] > 0.70,
      f"--precision bf16: 100 steps reach {100 * bf_summary['eval_top1']:.2f}% top-1 (fp32 {100 * top1:.2f}%; > 70%)")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import safetensors_io  # noqa: E402
bf_ckpt = dict(safetensors_io.load(bf_summary["checkpoint"])[0])
check(all(str(v.dtype) in ("torch.float32", "torch.int64") for v in bf_ckpt.values()),
      "a bf16 run's checkpoint holds f32 weights (the masters) and f32 optimizer state")

# CutMix wired into the trainer: a short run trains and evaluates.
cm = work / "cutmix"
subprocess.run(["rm", "-rf", str(cm)], check=True)
run(["--limit-train", "640", "--limit-eval", "500", "--epochs", "1", "--batch", "64", "--cutmix-beta", "1",
     "--cutmix-prob", "0.5", "--out", str(cm)])
check(json.loads((cm / "summary.json").read_text())["steps"] == 10, "a CutMix run (--cutmix-beta 1 --cutmix-prob 0.5) trains")

ev = run(["--arch", "grcnn_small", "--dataset", "fashion-mnist", "--limit-eval", "2000", "--eval-only",
          "--init-weights", summary["checkpoint"], "--backend", "cpu", "--out", str(work / "eval")])
check(f"top1 {100 * top1:.2f}%" in ev, f"--eval-only on the final checkpoint reproduces top-1 {100 * top1:.2f}%")

# 4. VOne-GRCNN55 at 224 px: trains and evaluates with fresh noise (VOneNet's default); its Gabor banks (fixed
# parameters, in the checkpoint under VOneNet's names) leave training untouched: each filter's one non-zero
# channel holds the reference kernel of VOneNet's seed-0 parameters (tests/torch/make_vone_fixtures.py).
vo = work / "vone"
subprocess.run(["rm", "-rf", str(vo)], check=True)
vone_args = ["--arch", "vone_grcnn55", "--dataset", "fashion-mnist", "--image-size", "224", "--limit-train", "4",
             "--limit-eval", "2", "--batch", "2", "--epochs", "1", "--seed", "1"]
text = run(vone_args + ["--out", str(vo)])
check("24807562 parameters (22887562 trainable)" in text, "vone_grcnn55 with 10 classes: 24,807,562 parameters, 1,920,000 fixed")
sys.path.insert(0, str(Path(__file__).resolve().parent / "torch"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import safetensors_io  # noqa: E402
from make_vone_fixtures import bank, generate_gabor_param  # noqa: E402
ckpt = dict(safetensors_io.load(str(vo / "checkpoint-2.safetensors"))[0])
q0 = ckpt["model.vone_block.simple_conv_q0.weight"]  # checkpoints hold the network under "model."
ref = bank(*generate_gabor_param(512), 224 / 8, 25, 0.0, [0] * 512)[:, 0]
nonzero = (q0.abs().sum((2, 3)) > 0).sum(1)
err = (q0.sum(1) - ref).abs().max().item() / ref.abs().max().item()
check(bool((nonzero == 1).all()) and err < 2e-6,
      f"the trained checkpoint's q0 bank is VOneNet's (one channel per filter, relative error {err:.1e})")
# Stopped after step 1 and resumed, the run draws the same fresh noise as the uninterrupted one (the
# checkpoint keeps the noise counter), so step 2 ends on the same weights, bit for bit.
vr = work / "vone_resumed"
subprocess.run(["rm", "-rf", str(vr)], check=True)
run(vone_args + ["--out", str(vr), "--stop-after", "1"])
run(vone_args + ["--out", str(vr), "--resume"])
resumed = dict(safetensors_io.load(str(vr / "checkpoint-2.safetensors"))[0])
differing = [k for k in ckpt if k.startswith("model.") and not bool((ckpt[k] == resumed[k]).all())]
check(not differing, f"a resumed VOne run continues the fresh-noise sequence: the same weights bit for bit ({differing[:3]})")

# Where a GPU is present (nvidia-smi lists one) --backend cuda is legitimate, not a refusal.
has_gpu = shutil.which("nvidia-smi") is not None and subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0
for args, message in [
    (["--lr", "-1"], "--lr"),
    (["--batch", "1"], "--batch"),
    (["--dataset", "imagenet"], "--dataset"),
    (["--schedule", "linear"], "--schedule"),
    (["--arch", "resnet50"], "--arch"),
    # Without a GPU: refused as "no usable GPU", or "no CUDA component" where the build has none.
    *([] if has_gpu else [(["--backend", "cuda"], "--backend cuda: no ")]),
    (["--data", str(work / "nowhere")], "nowhere/train-images-idx3-ubyte.gz"),
    (["--dataset", "cifar10"], "needs --data"),
    (["--schedule", "onecycle", "--warmup", "1"], "has its own warm-up"),
    (["--init-weights", str(work / "missing.safetensors")], "missing.safetensors"),
    (["--eval-only"], "--eval-only needs weights"),
    (["--mixup", "0.2", "--cutmix-beta", "1"], "not both"),
    (["--cutmix-prob", "1.5"], "--cutmix-prob"),
    (["--vone-noise", "maybe"], "'maybe' is neither fresh, off nor a seed"),
    (["--precision", "fp16"], "--precision"),
    (["--vone-noise", "3"], "without a VOneBlock"),
    (["--dataset", "cifar10", "--data", str(work), "--image-size", "64"], "CIFAR images are 32x32"),
]:
    p = subprocess.run([exe] + args + ["--out", str(work / "bad")], capture_output=True, text=True)
    check(p.returncode != 0 and message in (p.stdout + p.stderr), f"{' '.join(args)} rejected, naming {message!r}")
help_text = run(["--help"])
for flag in ["--arch", "--classes", "--dataset", "--data", "--epochs", "--batch", "--lr", "--momentum", "--nesterov", "--wd",
             "--schedule", "--warmup", "--label-smoothing", "--mixup", "--backend", "--threads", "--workers", "--seed",
             "--out", "--resume", "--init-weights", "--eval-only", "--cutmix-beta", "--cutmix-prob", "--precision"]:
    check(flag in help_text, f"--help documents {flag}")
print("PASS")
