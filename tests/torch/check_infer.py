#!/usr/bin/env python3
"""End-to-end check of grcnn-infer against the PyTorch reference model:

  check_infer.py GRCNN_INFER WORK_DIR IMAGE

1. grcnn56 (CIFAR, 10 classes): weights and an input batch through safetensors; logits and taps
   (including the per-step conv_g_r outputs) must match PyTorch's eval-mode outputs (1e-5 / 2e-4).
2. grcnn55 (1000 classes) on a real image with --image: the printed top-5 classes must be PyTorch's
   top-5 on the PIL/torchvision-preprocessed image.
"""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from grcnn_reference import build

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import safetensors_io  # noqa: E402

infer, work, image = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
work.mkdir(parents=True, exist_ok=True)
torch.manual_seed(11)


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


# 1. safetensors in, safetensors out, with taps
net = build("grcnn56", 10).eval()
x = torch.rand(3, 3, 32, 32) * 2 - 1
safetensors_io.save(work / "w56.safetensors", list(net.state_dict().items()))
safetensors_io.save(work / "x56.safetensors", [("input", x)])
taps = {}
hooks = []
for name in ["stage_1", "stage_3.conv_g_r", "lastact.1"]:
    def hook(_m, _i, out, name=name):
        taps.setdefault(name, []).append(out.detach().clone())
    hooks.append(dict(net.named_modules())[name].register_forward_hook(hook))
with torch.no_grad():
    want = net(x)
subprocess.run([infer, "--arch", "grcnn56", "--weights", str(work / "w56.safetensors"), "--input",
                str(work / "x56.safetensors"), "--output", str(work / "y56.safetensors"), "--taps",
                "stage_1,stage_3.conv_g_r,lastact.1"], check=True)
got, _ = safetensors_io.load(work / "y56.safetensors")
errors = {"logits": rel(got["logits"], want)}
errors["stage_1"] = rel(got["stage_1"], taps["stage_1"][0])
errors["lastact.1"] = rel(got["lastact.1"], taps["lastact.1"][0])
for k, t in enumerate(taps["stage_3.conv_g_r"]):
    errors[f"stage_3.conv_g_r.{k}"] = rel(got[f"stage_3.conv_g_r.{k}"], t)
print("grcnn56 relative errors:", {k: f"{v:.2e}" for k, v in errors.items()})
assert len(taps["stage_3.conv_g_r"]) == 7
assert errors["logits"] <= 1e-5, errors
assert all(v <= 2e-4 for v in errors.values()), errors

# 1b. --precision bf16: logits and taps come back as f32, within bf16's error of PyTorch's CPU bf16 autocast
subprocess.run([infer, "--arch", "grcnn56", "--weights", str(work / "w56.safetensors"), "--input",
                str(work / "x56.safetensors"), "--output", str(work / "y56_bf16.safetensors"), "--taps", "stage_1",
                "--precision", "bf16"], check=True)
got16, _ = safetensors_io.load(work / "y56_bf16.safetensors")
with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
    auto = net(x).float()
ours16, torch16 = rel(got16["logits"], want), rel(auto, want)
print(f"grcnn56 bf16 logits against f32: ours {ours16:.2e}, PyTorch autocast {torch16:.2e}")
assert got16["logits"].dtype == torch.float32 and got16["stage_1"].dtype == torch.float32
assert ours16 <= max(2 * torch16, 1e-2), (ours16, torch16)
tap16 = rel(got16["stage_1"], taps["stage_1"][0])  # the f32 hook of section 1
print(f"grcnn56 bf16 stage_1 tap against f32: {tap16:.2e}")
assert tap16 <= 3e-2, tap16

# 2. --image with top-5 names
net = build("grcnn55", 1000).eval()
safetensors_io.save(work / "w55.safetensors", list(net.state_dict().items()))
img = Image.open(image).convert("RGB")
w, h = img.size
img = img.resize((256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256), Image.BILINEAR)
top, left = int(round((img.size[1] - 224) / 2.0)), int(round((img.size[0] - 224) / 2.0))
arr = np.asarray(img.crop((left, top, left + 224, top + 224))).astype(np.float32) / 255.0
t = (torch.from_numpy(arr).permute(2, 0, 1) - torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)) / torch.tensor(
    [0.229, 0.224, 0.225]).view(3, 1, 1)
with torch.no_grad():
    want_top5 = net(t[None]).topk(5).indices[0].tolist()
out = subprocess.run([infer, "--arch", "grcnn55", "--weights", str(work / "w55.safetensors"), "--image", image],
                     check=True, capture_output=True, text=True).stdout
print(out)
got_top5 = [int(m) for m in re.findall(r"class +(\d+)", out)]
assert got_top5 == want_top5, (got_top5, want_top5)
assert re.search(r"class +\d+  \S", out), "class names missing"
print("top-5 matches PyTorch:", want_top5)
