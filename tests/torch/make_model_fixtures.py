#!/usr/bin/env python3
"""PyTorch reference results for one GRCNN variant (tests/torch/grcnn_reference.py):

  make_model_fixtures.py VARIANT OUT.safetensors [--batch B] [--classes K] [--size S]

Writes "weights.<name>" for the whole state_dict (duplicated keys of shared weights included), "input"
(NCHW f32), "labels", "logits_eval" (eval mode), "loss" and "logits_train" (train mode), "grad.<name>"
for every parameter after backward of the mean cross-entropy (named_parameters(): shared weights once),
and "after.<name>" for every buffer after the training forward (BN running statistics). The same keys
prefixed "f64." hold the same computation in float64 from the same weights: the numerical truth that
f32 results (ours and PyTorch's) are measured against.
"""
import argparse
import copy
import json
import struct

import torch
import torch.nn.functional as F

from grcnn_reference import VARIANTS, build

parser = argparse.ArgumentParser()
parser.add_argument("variant", choices=sorted(VARIANTS))
parser.add_argument("out")
parser.add_argument("--batch", type=int, default=2)
parser.add_argument("--classes", type=int, default=10)
parser.add_argument("--size", type=int, default=0, help="image size (default: 224 ImageNet, 32 CIFAR)")
args = parser.parse_args()

torch.manual_seed(7)
torch.set_num_threads(2)
net = build(args.variant, args.classes)
size = args.size or (32 if VARIANTS[args.variant]["cifar"] else 224)
# Non-trivial BN statistics so that eval mode differs from train mode.
with torch.no_grad():
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.uniform_(0.8, 1.2)
            m.bias.uniform_(-0.1, 0.1)
x = torch.rand(args.batch, 3, size, size) * 2 - 1
labels = torch.randint(0, args.classes, (args.batch,))
out = [(f"weights.{k}", v.clone()) for k, v in net.state_dict().items()]
out += [("input", x), ("labels", labels)]
reference = copy.deepcopy(net).double()  # the same weights in float64: the numerical truth


def run(model, inputs, prefix):
    model.eval()
    with torch.no_grad():
        out.append((prefix + "logits_eval", model(inputs)))
    model.train()
    logits = model(inputs)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    out.extend([(prefix + "logits_train", logits.detach()), (prefix + "loss", loss.detach().reshape(()))])
    # named_parameters() lists a shared weight once; an unused module (CIFAR's d_bn_1e) has no gradient.
    out.extend((f"{prefix}grad.{k}", p.grad) for k, p in model.named_parameters() if p.grad is not None)
    out.extend((f"{prefix}after.{k}", b.clone()) for k, b in model.named_buffers())
    return loss.item()


loss = run(net, x, "")
run(reference, x.double(), "f64.")

header, blobs, offset = {}, [], 0
for name, t in out:
    t = t.detach().contiguous()
    code = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}[t.dtype]
    raw = t.numpy().tobytes()
    header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
    blobs.append(raw)
    offset += len(raw)
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(args.out, "wb") as f:
    f.write(struct.pack("<Q", len(h)))
    f.write(h)
    for b in blobs:
        f.write(b)
print(f"{args.variant}: {sum(p.numel() for p in net.parameters())} parameters, batch {args.batch} at {size}x{size}, "
      f"loss {loss:.6f}")
