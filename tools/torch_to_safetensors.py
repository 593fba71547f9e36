#!/usr/bin/env python3
"""Converts a PyTorch GRCNN checkpoint to safetensors for grcnn (io::load_state_dict, grcnn-infer).

  torch_to_safetensors.py CHECKPOINT.pt OUT.safetensors [--key state_dict] [--keep-prefix] [--strip PREFIX ...]

Accepts a plain state_dict, a dict holding one under "state_dict" (or --key), and keys prefixed with
"module." (DataParallel / DDP checkpoints, as the released GRCNN weights and Brain-Score submissions
store them). --strip removes further leading prefixes after that, e.g. --strip model. for VOne-GRCNN
submissions, whose body sits under "model." (VOneNet's Sequential) where grcnn's is at the top. Loads with torch.load(weights_only=True): no code from the file is executed. Tensors that
share storage (weight-sharing variants) are written under every key, each with its own copy, as
safetensors requires; grcnn ties them again on load.
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import safetensors_io  # noqa: E402


def load_checkpoint(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # a torch without weights_only: refuse rather than unpickle arbitrary code
        sys.exit("error: this torch has no torch.load(weights_only=True); refusing to unpickle an untrusted file")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("out")
    p.add_argument("--key", default=None, help="the dict entry holding the state_dict (default: state_dict if present)")
    p.add_argument("--keep-prefix", action="store_true", help="do not strip a leading 'module.'")
    p.add_argument("--strip", action="append", default=[], metavar="PREFIX",
                   help="also remove this leading prefix (after 'module.'), e.g. 'model.'; repeatable")
    a = p.parse_args()
    try:
        obj = load_checkpoint(a.checkpoint)
    except Exception as e:  # noqa: BLE001 - report any load failure with the file name
        sys.exit(f"error: cannot load '{a.checkpoint}': {e}")
    if a.key is not None:
        if not isinstance(obj, dict) or a.key not in obj:
            sys.exit(f"error: '{a.checkpoint}' has no entry '{a.key}'")
        obj = obj[a.key]
    elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        sys.exit(f"error: '{a.checkpoint}' holds no state_dict (a name -> tensor dict)")
    tensors = []
    for name, t in obj.items():
        if not torch.is_tensor(t):
            sys.exit(f"error: entry '{name}' of '{a.checkpoint}' is a {type(t).__name__}, not a tensor")
        if not a.keep_prefix and name.startswith("module."):
            name = name[len("module."):]
        for prefix in a.strip:
            if name.startswith(prefix):
                name = name[len(prefix):]
                break
        if t.dtype not in safetensors_io.CODES:
            sys.exit(f"error: tensor '{name}' has dtype {t.dtype}, which grcnn does not read")
        tensors.append((name, t.clone()))
    names = [n for n, _ in tensors]
    if len(set(names)) != len(names):
        sys.exit("error: stripping prefixes made two keys equal; use --keep-prefix or another --strip")
    safetensors_io.save(a.out, tensors, {"format": "pt", "source": Path(a.checkpoint).name})
    print(f"wrote {len(tensors)} tensors to {a.out}")


if __name__ == "__main__":
    main()
