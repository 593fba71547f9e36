#!/usr/bin/env python3
"""PyTorch reference logits for the readout modes (network::set_readout, grcnn-infer --readout):

  make_readout_fixtures.py VARIANT SIZE OUT.safetensors

The original model's AvgPool2d(7) (AvgPool2d(8) in the CIFAR code) with stride 7 takes final maps of 7 to
13 pixels and averages their top-left window: "logits_original" is the unchanged rebuild
(tests/torch/grcnn_reference.py) at SIZE pixels; "logits_global" the same weights with the pool replaced
by AdaptiveAvgPool2d(1), the mean of the whole map. Both in eval mode and float64 (the truth), from
"weights.<name>" (the f32 state_dict, BN statistics calibrated as make_model_fixtures.py does) and
"input" (NCHW f32, batch 2).
"""
import argparse
import copy
import sys
from pathlib import Path

import torch

from grcnn_reference import VARIANTS, build, calibrate_batch_norms

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import safetensors_io  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("variant", choices=sorted(VARIANTS))
parser.add_argument("size", type=int)
parser.add_argument("out")
args = parser.parse_args()

torch.manual_seed(11)
torch.set_num_threads(2)
net = build(args.variant, 10)
calibrate_batch_norms(net, args.variant, args.size)
net.eval()
x = torch.rand(2, 3, args.size, args.size) * 2 - 1
out = [(f"weights.{k}", v.clone()) for k, v in net.state_dict().items()] + [("input", x)]
exact = copy.deepcopy(net).double()
final = []
hook = exact.lastact.register_forward_hook(lambda _m, _i, y: final.append(tuple(y.shape[2:])))
with torch.no_grad():
    out.append(("logits_original", exact(x.double())))
    hook.remove()
    exact.avgpool = torch.nn.AdaptiveAvgPool2d(1)
    out.append(("logits_global", exact(x.double())))
safetensors_io.save(args.out, out)
print(f"{args.variant} at {args.size}x{args.size}: final map {final[0]}")
