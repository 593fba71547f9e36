#!/usr/bin/env python3
"""Converts a PyTorch GRCNN checkpoint to safetensors for grcnn (io::load_state_dict, grcnn-infer).

  torch_to_safetensors.py CHECKPOINT.pt OUT.safetensors [--key state_dict] [--keep-prefix] [--strip PREFIX ...]

Accepts a plain state_dict, a dict holding one under "state_dict" (or --key), and keys prefixed with
"module." (DataParallel / DDP checkpoints, as the released GRCNN weights and Brain-Score submissions
store them). --strip removes further leading prefixes after that, e.g. --strip model. for VOne-GRCNN
submissions, whose body sits under "model." (VOneNet's Sequential) where grcnn's is at the top.

The checkpoint is read by tools/safe_checkpoint.py, not torch.load: our own restricted unpickler that
admits only tensors, storages, OrderedDict/dict/list/tuple, numbers, strings and None, builds the
tensors itself and never calls torch.jit, so no code from the file runs. It reads torch.save's zip
format and its legacy format, including the original GRCNN training scripts' checkpoints (epoch, arch,
best_acc1 and the optimizer state beside the state_dict, which torch 1.13's weights_only loader
rejects); it refuses TorchScript archives (torch.jit.save), which hold code, and names any other
global a file asks for. What the converter leaves out of a checkpoint's top-level dict (optimizer
state, epoch, ...) it lists on stdout.

Tensors that share storage (weight-sharing variants) are written under every key, each with its own
copy, as safetensors requires; grcnn ties them again on load. The output is written atomically (a
temporary file in its folder, renamed over it; through a symlink to its target; straight into an
existing device or FIFO such as /dev/null).

tools/safetensors_to_torch.py converts the other way: grcnn weights and training checkpoints to a .pt
state_dict for the original GRCNN classes (and Brain-Score's plugin).
"""
import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import safe_checkpoint  # noqa: E402
import safetensors_io  # noqa: E402


def describe(value):
    """A short account of a dropped entry: the value of a scalar, the kind of anything else."""
    if value is None or isinstance(value, (bool, int)):
        return f" = {value!r}"
    if isinstance(value, float):
        return f" = {value:.6g}"
    if isinstance(value, (str, bytes)):
        r = repr(value)
        return f" = {r if len(r) <= 40 else r[:37] + '...'}"
    if torch.is_tensor(value):
        if value.numel() == 1 and value.dim() <= 1 and value.dtype.is_floating_point:
            return f" = {value.item():.6g}"
        if value.numel() == 1 and value.dim() <= 1:
            return f" = {value.item()!r}"
        return f" (tensor {'x'.join(map(str, value.shape)) or 'scalar'} {str(value.dtype).replace('torch.', '')})"
    if isinstance(value, dict):
        if "state" in value and "param_groups" in value:
            return " (optimizer state)"
        if value and all(torch.is_tensor(v) for v in value.values()):
            return f" (state_dict of {len(value)} tensors)"
        return f" (dict of {len(value)} entries)"
    if isinstance(value, (list, tuple, set, frozenset)):
        return f" ({type(value).__name__} of {len(value)} items)"
    return f" ({type(value).__name__})"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("out")
    p.add_argument("--key", default=None, help="the dict entry holding the state_dict (default: state_dict if present)")
    p.add_argument("--keep-prefix", action="store_true", help="do not strip a leading 'module.'")
    p.add_argument("--strip", action="append", default=[], metavar="PREFIX",
                   help="also remove this leading prefix (after 'module.'), e.g. 'model.'; repeatable")
    a = p.parse_args()
    if os.path.isdir(a.out):
        sys.exit(f"error: output '{a.out}' is a directory")
    try:
        obj = safe_checkpoint.load(a.checkpoint)
    except safe_checkpoint.CheckpointError as e:
        sys.exit(f"error: {e}")
    except Exception as e:  # noqa: BLE001 - report any load failure with the file name
        sys.exit(f"error: cannot load '{a.checkpoint}': {type(e).__name__}: {e}")
    top, selected = obj, None
    if a.key is not None:
        if not isinstance(obj, dict) or a.key not in obj:
            sys.exit(f"error: '{a.checkpoint}' has no entry '{a.key}'")
        selected, obj = a.key, obj[a.key]
    elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        selected, obj = "state_dict", obj["state_dict"]
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
    if selected is not None:
        dropped = [f"{k}{describe(v)}" for k, v in top.items() if k != selected]
        if dropped:
            print(f"dropped from '{a.checkpoint}': {', '.join(dropped)}")
    try:
        safetensors_io.save(a.out, tensors, {"format": "pt", "source": Path(a.checkpoint).name})
    except IsADirectoryError:
        sys.exit(f"error: output '{a.out}' is a directory")
    except OSError as e:
        sys.exit(f"error: cannot write '{a.out}': {e.strerror or e}")
    print(f"wrote {len(tensors)} tensors to {a.out}")


if __name__ == "__main__":
    main()
