#!/usr/bin/env python3
"""PyTorch reference results for one GRCNN variant (tests/torch/grcnn_reference.py):

  make_model_fixtures.py VARIANT OUT.safetensors [--batch B] [--classes K] [--size S]

Writes "weights.<name>" for the whole state_dict (duplicated keys of shared weights included), "input"
(NCHW f32), "labels", "logits_eval" (eval mode), "loss" and "logits_train" (train mode), "grad.<name>"
for every parameter after backward of the mean cross-entropy (named_parameters(): shared weights once),
and "after.<name>" for every buffer after the training forward (BN running statistics). The same keys
prefixed "f64." hold the same computation in float64 from the same weights: the numerical truth that
f32 results (ours and PyTorch's) are measured against. With --bf16 the keys prefixed "bf16." hold it under
torch.autocast("cpu", torch.bfloat16) (convolutions and linear layers in bf16, f32 weights): the
yardstick for grcnn's bf16 mixed precision, whose error against float64 should be of the same size.
"""
import contextlib
import argparse
import copy
import re
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from grcnn_reference import VARIANTS, build, calibrate_batch_norms

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import safetensors_io  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("variant", choices=sorted(VARIANTS))
parser.add_argument("out")
parser.add_argument("--batch", type=int, default=2)
parser.add_argument("--classes", type=int, default=10)
parser.add_argument("--size", type=int, default=0, help="image size (default: 224 ImageNet, 32 CIFAR)")
parser.add_argument("--bf16", action="store_true", help="also run the step under CPU bf16 autocast (prefix bf16.)")
args = parser.parse_args()

torch.manual_seed(7)
torch.set_num_threads(2)
net = build(args.variant, args.classes)
size = args.size or (32 if VARIANTS[args.variant]["cifar"] else 224)
calibrate_batch_norms(net, args.variant, size)
x = torch.rand(args.batch, 3, size, size) * 2 - 1
labels = torch.randint(0, args.classes, (args.batch,))
out = [(f"weights.{k}", v.clone()) for k, v in net.state_dict().items()]
out += [("input", x), ("labels", labels)]
reference = copy.deepcopy(net).double()  # the same weights in float64: the numerical truth
mixed = copy.deepcopy(net)  # the same weights for the bf16 autocast run
# PyTorch's f32 eval logits in the memory layout grcnn computes in (channels-last), beside its NCHW ones: NCHW
# runs oneDNN's blocked (nChw16c) convolution kernels, whose summation order is about 2x closer to float64.
with torch.no_grad():
    channels_last = copy.deepcopy(net).eval().to(memory_format=torch.channels_last)
    out.append(("cl.logits_eval", channels_last(x.to(memory_format=torch.channels_last)).contiguous()))
    del channels_last


# Module outputs recorded by forward hooks in eval mode ("tap.<name>.<call>"; a shared conv_g_r is called
# once per iteration). They are the reference for grcnn's named activation taps.
if VARIANTS[args.variant]["cifar"]:
    TAPS = ["conv_3x3", "stage_1", "stage_2.conv_f", "stage_1.iter_2.8", "stage_3.conv_g_r", "stage_1.iter_g_2.1",
            "stage_1.bn_f", "lastact.0", "lastact.1", "classifier"]
else:
    TAPS = ["conv1", "bn1", "maxpool", "conv2", "layer1", "layer3.conv_f", "layer2.iter_3.8", "layer1.iter_g_2.1",
            "layer1.conv_g_r", "layer4.bn_f", "lastact.1", "classifier"]
if VARIANTS[args.variant]["sk"]:
    # SK bottlenecks end at index 6; tap the SKConv (index 5) and its attention logits instead.
    body = [n for n in TAPS if re.search(r"\.iter_\d+\.8$", n)]
    TAPS = [n for n in TAPS if n not in body]
    TAPS += [n[:-1] + "5" for n in body] + [n[:-1] + "5.fc2" for n in body] + [n[:-1] + "6" for n in body]
if VARIANTS[args.variant]["share"]:  # a hook on a shared bottleneck conv fires in every iteration: not a per-name tap
    TAPS = [n for n in TAPS if ".iter_" not in n]
TAPS = [n for n in TAPS if n in dict(net.named_modules())]  # grcnn_small has a single iteration in stage_1


def record_taps(model):
    modules = dict(model.named_modules())
    calls = {}
    handles = []
    for name in TAPS:
        def hook(_module, _inputs, output, name=name):
            k = calls.get(name, 0)
            calls[name] = k + 1
            out.append((f"tap.{name}.{k}", output.detach().clone()))
        handles.append(modules[name].register_forward_hook(hook))
    return handles


def run(model, inputs, prefix):
    mixed = prefix == "bf16."

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16) if mixed else contextlib.nullcontext()
    model.eval()
    handles = record_taps(model) if prefix == "" else []
    with torch.no_grad(), autocast():
        y = model(inputs)
        out.append((prefix + "logits_eval", y.float() if mixed else y))
    for h in handles:
        h.remove()
    model.train()
    with autocast():
        logits = model(inputs)
        if mixed:
            logits = logits.float()  # the loss in f32, as grcnn's bf16 networks return f32 logits
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    out.extend([(prefix + "logits_train", logits.detach()), (prefix + "loss", loss.detach().reshape(()))])
    # named_parameters() lists a shared weight once; an unused module (CIFAR's d_bn_1e) has no gradient.
    out.extend((f"{prefix}grad.{k}", p.grad) for k, p in model.named_parameters() if p.grad is not None)
    out.extend((f"{prefix}after.{k}", b.clone()) for k, b in model.named_buffers())
    return loss.item()


loss = run(net, x, "")
run(reference, x.double(), "f64.")
if args.bf16:
    run(mixed, x, "bf16.")

safetensors_io.save(args.out, out)
print(f"{args.variant}: {sum(p.numel() for p in net.parameters())} parameters, batch {args.batch} at {size}x{size}, "
      f"loss {loss:.6f}")
