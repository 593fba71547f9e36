#!/usr/bin/env python3
"""GPU check of grcnn-infer: a PyTorch grcnn55 (tests/torch/grcnn_reference.py, random weights, eval mode)
and a random batch are written to safetensors; grcnn-infer runs them with --backend cpu and --backend cuda;
both logits are compared with PyTorch in float64 (CPU) and PyTorch f32 on the GPU. Exit 1 when the CUDA
logits are further from float64 than 1e-4 relative (f32 through 55 layers) or than 5x the CPU's error."""
import argparse
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))
from grcnn_reference import build  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--infer", required=True)
p.add_argument("--work", required=True)
p.add_argument("--arch", default="grcnn55")
p.add_argument("--batch", type=int, default=4)
a = p.parse_args()
work = Path(a.work)
work.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)
net = build(a.arch, 1000).eval()
# Non-trivial running statistics, so eval-mode BN is exercised.
with torch.no_grad():
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(work / "weights.safetensors"))
x = torch.rand(a.batch, 3, 224, 224) * 2 - 1
save_file({"input": x}, str(work / "input.safetensors"))
with torch.no_grad():
    ref = net.double()(x.double())
    gpu = build(a.arch, 1000).eval()
    gpu.load_state_dict({k: v.float() for k, v in net.state_dict().items()})
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    t32 = gpu.cuda()(x.cuda()).double().cpu()


def err(y):
    return ((y - ref).abs().max() / ref.abs().max()).item()


res = {}
for backend in ("cpu", "cuda"):
    out = work / f"logits-{backend}.safetensors"
    subprocess.run([a.infer, "--arch", a.arch, "--weights", str(work / "weights.safetensors"), "--input",
                    str(work / "input.safetensors"), "--output", str(out), "--backend", backend, "--taps", "layer1"],
                   check=True)
    res[backend] = err(load_file(str(out))["logits"].double())
print(f"grcnn-infer {a.arch} batch {a.batch}: logits relative error against PyTorch float64: "
      f"cpu (oneDNN) {res['cpu']:.3g}, cuda {res['cuda']:.3g}; PyTorch f32 on the GPU {err(t32):.3g}")
ok = res["cuda"] <= 1e-4 and res["cuda"] <= 5 * max(res["cpu"], err(t32)) + 1e-7
print("grcnn-infer cuda check:", "ok" if ok else "FAILED")
sys.exit(0 if ok else 1)
