#!/usr/bin/env python3
"""PyTorch references for the training components (tests/test_train.cpp):

  make_train_fixtures.py OUT.safetensors

Optimizers: grcnn_small (tests/torch/grcnn_reference.py) in float64 on 16x16 inputs, batch 4; from the
same initial state ("init.<name>", whole state_dict) each configuration runs 20 steps of
mean cross-entropy + backward + torch.optim step on batches "input.<k>"/"labels.<k>", and writes
"<config>.step10.<name>" and "<config>.final.<name>" for every state entry plus "<config>.losses".
Schedules: "sched.<name>.lr" (and "sched.onecycle.momentum"), the lr each iteration/epoch sees under
torch.optim.lr_scheduler. Targets: logits and the reference losses of GRCNN's smoothing, PyTorch's
smoothing and the SK recipe's smoothed mixup target.
"""
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from grcnn_reference import build

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import safetensors_io  # noqa: E402

out = []
torch.manual_seed(11)
torch.set_num_threads(2)
torch.set_default_dtype(torch.float64)

# ---------------------------------------------------------------- optimizers
net = build("grcnn_small", 10).double()
init = {k: v.clone() for k, v in net.state_dict().items()}
for k, v in init.items():
    out.append(("init." + k, v))
STEPS, BATCH, SIZE = 20, 4, 16
batches = [(torch.randn(BATCH, 3, SIZE, SIZE), torch.randint(0, 10, (BATCH,))) for _ in range(STEPS)]
for k, (x, y) in enumerate(batches):
    out += [(f"input.{k}", x), (f"labels.{k}", y)]


def groups_by_rank(model, decay_lr, decay_wd, other_lr):
    decay = [p for p in model.parameters() if p.dim() > 1]
    other = [p for p in model.parameters() if p.dim() <= 1]
    return [dict(params=decay, lr=decay_lr, weight_decay=decay_wd), dict(params=other, lr=other_lr, weight_decay=0.0)]


CONFIGS = {
    "sgd_momentum": lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4),
    "sgd_nesterov": lambda m: torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4),
    "sgd_plain": lambda m: torch.optim.SGD(m.parameters(), lr=0.05, weight_decay=1e-3),
    "sgd_groups": lambda m: torch.optim.SGD(groups_by_rank(m, 0.1, 1e-3, 0.02), lr=0.1, momentum=0.9),
    "sgd_frozen": lambda m: torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1, momentum=0.9,
                                            weight_decay=1e-4),
    "adamw": lambda m: torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.05),
    "adamw_groups": lambda m: torch.optim.AdamW(groups_by_rank(m, 2e-3, 0.1, 5e-4), betas=(0.8, 0.99), eps=1e-6),
}
for name, make in CONFIGS.items():
    net.load_state_dict(init)
    for pname, p in net.named_parameters():
        p.requires_grad_(name != "sgd_frozen" or pname.startswith("stage_1."))
    net.train()
    opt = make(net)
    losses = []
    for k, (x, y) in enumerate(batches):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if k + 1 == 10:
            out += [(f"{name}.step10.{n}", v.clone()) for n, v in net.state_dict().items()]
    out += [(f"{name}.final.{n}", v.clone()) for n, v in net.state_dict().items()]
    out.append((f"{name}.losses", torch.tensor(losses)))
for p in net.parameters():
    p.requires_grad_(True)

# ---------------------------------------------------------------- schedules
torch.set_default_dtype(torch.float32)


def run(make_sched, n, base=0.1, step_every=1, momentum=0.0):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base, momentum=momentum)
    sched = make_sched(opt)
    lrs, moms = [], []
    for i in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
        opt.step()
        if (i + 1) % step_every == 0:
            sched.step()
    return torch.tensor(lrs, dtype=torch.float64), torch.tensor(moms, dtype=torch.float64)


S = torch.optim.lr_scheduler
EPOCHS, PER = 10, 7  # per-iteration schedules: 10 epochs of 7 iterations
# per-epoch schedules: one value per epoch
out.append(("sched.step.lr", run(lambda o: S.StepLR(o, step_size=3, gamma=0.5), 10)[0]))
out.append(("sched.multistep.lr", run(lambda o: S.MultiStepLR(o, milestones=[30, 60, 90], gamma=0.1), 100)[0]))
out.append(("sched.cosine_epoch.lr", run(lambda o: S.CosineAnnealingLR(o, T_max=20), 20)[0]))
# per-iteration schedules: one value per iteration
out.append(("sched.cosine_iter.lr", run(lambda o: S.CosineAnnealingLR(o, T_max=EPOCHS * PER), EPOCHS * PER)[0]))
out.append(("sched.warmup_cosine.lr", run(lambda o: S.ChainedScheduler(
    [S.LinearLR(o, start_factor=0.1, total_iters=12), S.CosineAnnealingLR(o, T_max=EPOCHS * PER)]), EPOCHS * PER)[0]))
lr, mom = run(lambda o: S.OneCycleLR(o, max_lr=0.3, total_steps=EPOCHS * PER), EPOCHS * PER, base=0.3, momentum=0.9)
out += [("sched.onecycle.lr", lr), ("sched.onecycle.momentum", mom)]
# a per-iteration warm-up multiplying a per-epoch multistep schedule: each stepped at its own rate
warm = run(lambda o: S.LinearLR(o, start_factor=0.1, total_iters=12), EPOCHS * PER)[0]
steps = run(lambda o: S.MultiStepLR(o, milestones=[3, 6], gamma=0.1), EPOCHS * PER, step_every=PER)[0]
out.append(("sched.warmup_multistep.lr", warm * steps / 0.1))

# ---------------------------------------------------------------- targets and losses
torch.set_default_dtype(torch.float64)
K = 7
logits = torch.randn(5, K) * 2
labels = torch.tensor([0, 3, 6, 3, 1])
eps = 0.1
target = torch.full((5, K), eps / (K - 1))
target[torch.arange(5), labels] = 1 - eps
out += [("loss.logits", logits), ("loss.labels", labels), ("loss.grcnn_target", target)]
out.append(("loss.grcnn", (-(target * F.log_softmax(logits, 1)).sum(1).mean()).reshape(1)))
out.append(("loss.pytorch", F.cross_entropy(logits, labels, label_smoothing=eps).reshape(1)))
lam, perm = 0.3, torch.tensor([2, 0, 1, 4, 3])
mixed = lam * F.one_hot(labels, K).double() + (1 - lam) * F.one_hot(labels[perm], K).double()
nonzero = (mixed != 0).sum(1, keepdim=True).double()
sk = torch.where(mixed != 0, mixed - eps / nonzero, eps / (K - nonzero))
out += [("loss.mix_permutation", perm), ("loss.sk_target", sk)]
out.append(("loss.mixup_sk", (-(sk * F.log_softmax(logits, 1)).sum(1).mean()).reshape(1)))
ce_a = F.cross_entropy(logits, labels)
ce_b = F.cross_entropy(logits, labels[perm])
out.append(("loss.mixup_two_ce", (lam * ce_a + (1 - lam) * ce_b).reshape(1)))

# ---------------------------------------------------------------- CutMix (clovaai/CutMix-PyTorch train.py)
import numpy as np  # noqa: E402


def rand_bbox(size, lam, cx, cy):
    """The original's rand_bbox with its two draws given (cx along dim 2, cy along dim 3)."""
    W, H = size[2], size[3]
    cut_rat = np.sqrt(1. - lam)
    cut_w, cut_h = int(W * cut_rat), int(H * cut_rat)
    return (np.clip(cx - cut_w // 2, 0, W), np.clip(cy - cut_h // 2, 0, H),
            np.clip(cx + cut_w // 2, 0, W), np.clip(cy + cut_h // 2, 0, H))


rng = np.random.default_rng(2)
cases, boxes = [], []
for _ in range(200):
    h, w = int(rng.integers(1, 40)), int(rng.integers(1, 40))
    lam = float(rng.choice([0.0, 1.0, rng.random()]))
    cy, cx = int(rng.integers(h)), int(rng.integers(w))  # our (row, column) = the original's (dim 2, dim 3)
    x1, y1, x2, y2 = rand_bbox((1, 3, h, w), lam, cy, cx)
    cases.append([h, w, lam, cy, cx])
    boxes.append([x1, x2, y1, y2])  # rows [x1, x2), columns [y1, y2) in the original's naming
out += [("cutmix.cases", torch.tensor(cases, dtype=torch.float64)), ("cutmix.boxes", torch.tensor(boxes, dtype=torch.int64))]
# The recomputed lambda's distribution on 32x32 images, beta = 1, by simulation of the original.
n = 200000  # rand_bbox's arithmetic, vectorised over the draws
lam = rng.beta(1.0, 1.0, n)
cut = (32 * np.sqrt(1.0 - lam)).astype(np.int64)
cx, cy = rng.integers(0, 32, n), rng.integers(0, 32, n)
side = lambda c: np.clip(c + cut // 2, 0, 32) - np.clip(c - cut // 2, 0, 32)  # noqa: E731
lams = 1 - side(cx) * side(cy) / 1024
out.append(("cutmix.lambda_stats", torch.tensor([np.mean(lams), np.std(lams)], dtype=torch.float64)))

safetensors_io.save(sys.argv[1], out)
print(f"wrote {len(out)} tensors to {sys.argv[1]}")
