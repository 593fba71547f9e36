#!/usr/bin/env python3
"""Writes a PyTorch checkpoint the way released GRCNN weights and Brain-Score submissions store them
({"state_dict": {"module.<name>": tensor}}, via torch.save) for a variant of the reference model, plus
the expected plain state_dict as safetensors, for the converter test:

  make_checkpoint.py VARIANT CHECKPOINT.pt EXPECTED.safetensors [NESTED.pt]

NESTED.pt, when given, holds the same weights under "module.model.<name>" (how VOne-GRCNN submissions
nest the body), for the converter's --strip.
"""
import sys
from pathlib import Path

import torch

from grcnn_reference import build

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import safetensors_io  # noqa: E402

variant, ckpt, expected = sys.argv[1:4]
torch.manual_seed(3)
net = build(variant, 10)
state = net.state_dict()
torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in state.items()}}, ckpt)
safetensors_io.save(expected, list(state.items()))
if len(sys.argv) > 4:
    torch.save({"state_dict": {"module.model." + k: v for k, v in state.items()}}, sys.argv[4])
print(f"{variant}: {len(state)} entries")
