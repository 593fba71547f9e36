#!/usr/bin/env python3
"""Converts grcnn weights (a grcnn-train checkpoint, its best.safetensors, or a plain state_dict file) to a
PyTorch state_dict .pt that the original GRCNN classes load with load_state_dict(strict=True).

  safetensors_to_torch.py IN.safetensors OUT.pt [--arch ARCH] [--classes N]

The opposite direction of tools/torch_to_safetensors.py. OUT.pt is torch.save of an OrderedDict of
tensors under the original code's names, in its registration order (Jianf-Wang/GRCNN; the project's
rebuild is tests/torch/grcnn_reference.py), so Brain-Score's `grcnn` model plugin, which wraps those
classes, loads it as it loads the released checkpoint_params_grcnn55.pt.

- A training checkpoint (metadata format = grcnn-checkpoint-1) holds the model as `model.<name>`, the
  optimizer state as `optimizer.*` and the trainer state and run settings in its metadata: the model is
  written, everything else is left out and listed on stdout. A plain file (io::save_state_dict, or what
  torch_to_safetensors.py wrote) is all model.
- The architecture and class count come from the checkpoint's metadata (`arch`, `classes`); for a plain
  file give --arch (the class count is then read from the classifier). An --arch or --classes that
  contradicts the metadata is refused.
- Every tensor is checked against the architecture before anything is written: no name missing or
  unexpected, every shape as the original has it, floating weights and statistics finite, the BN
  counters `num_batches_tracked` int64 scalars (written as PyTorch's 0-d int64 tensors; as PyTorch's
  load_state_dict and grcnn's loader, a one-element 1-d counter is taken as 0-d and a missing one as 0,
  and the output says so). A file of another architecture is refused, naming the one its tensors match
  when there is one.
- Weight-sharing variants (*_share): grcnn writes a shared tensor under every name that uses it, as
  PyTorch's state_dict does; the copies must agree. They are written under every name as one tensor (so
  torch.save stores it once and torch.load gives one tensor back, as state_dict() of the original
  does). A file that holds a shared tensor under only some of its names is completed from them.
- Floating tensors keep the file's dtype (grcnn writes f32; load_state_dict casts others on copy).

Any problem (not a safetensors file, truncated, unknown dtype, another architecture, wrong shapes,
non-finite values) is one line on stderr naming the file, exit status 1, and nothing written. The output
is written atomically (a temporary file in its folder, fsynced, renamed over it; through a symlink to
its target; straight into a device or FIFO such as /dev/null), by tools/safetensors_io.py's writer.
Supported architectures: those of grcnn's registry that the original code or its CIFAR/weight-sharing
siblings define (grcnn55, grcnn109, skgrcnn55, skgrcnn109, grcnn55_share, grcnn109_share, grcnn56,
grcnn56_share, grcnn110, grcnn110_share, grcnn110_sk, grcnn110_sk_share) and grcnn_small; not
vone_grcnn55.
"""
import argparse
import io
import os
import sys
from collections import OrderedDict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import safetensors_io  # noqa: E402

CHECKPOINT_FORMAT = "grcnn-checkpoint-1"

# The original code's variants (shared/spec/grcnn-and-paper-methods.md 1.1, 1.7, 1.8) and grcnn_small.
VARIANTS = {
    "grcnn55": dict(iters=[3, 3, 4, 3], planes=[64, 128, 256, 512], sk=False, share=False, cifar=False),
    "grcnn109": dict(iters=[3, 3, 22, 3], planes=[64, 128, 256, 512], sk=False, share=False, cifar=False),
    "skgrcnn55": dict(iters=[3, 3, 4, 3], planes=[128, 256, 512, 1024], sk=True, share=False, cifar=False),
    "skgrcnn109": dict(iters=[3, 3, 22, 3], planes=[128, 256, 512, 1024], sk=True, share=False, cifar=False),
    "grcnn55_share": dict(iters=[3, 3, 4, 3], planes=[64, 128, 256, 512], sk=False, share=True, cifar=False),
    "grcnn109_share": dict(iters=[3, 3, 22, 3], planes=[64, 128, 256, 512], sk=False, share=True, cifar=False),
    "grcnn56": dict(iters=[3, 5, 7], planes=[128, 160, 192], sk=False, share=False, cifar=True),
    "grcnn56_share": dict(iters=[3, 5, 7], planes=[128, 160, 192], sk=False, share=True, cifar=True),
    "grcnn110": dict(iters=[6, 9, 18], planes=[128, 160, 192], sk=False, share=False, cifar=True),
    "grcnn110_share": dict(iters=[6, 9, 18], planes=[128, 160, 192], sk=False, share=True, cifar=True),
    "grcnn110_sk": dict(iters=[6, 9, 18], planes=[192, 320, 448], sk=True, share=False, cifar=True),
    "grcnn110_sk_share": dict(iters=[6, 9, 18], planes=[192, 320, 448], sk=True, share=True, cifar=True),
    "grcnn_small": dict(iters=[1, 2, 2], planes=[16, 32, 48], sk=False, share=False, cifar=True, stem=32),
}
UNSUPPORTED = {
    "vone_grcnn55": "its original is VOneNet's Sequential around a GRCNN back end, with other module names "
                    "(module.vone_block, module.bottleneck, module.model.layer1, ...) than grcnn's; not converted",
}


class ConversionError(Exception):
    """A problem with the input, reported as one line naming the file."""


class _Spec:
    """The original's state_dict of one variant: (name, shape, kind) in registration order, kind 'float'
    (parameters, running statistics) or 'count' (num_batches_tracked), and the groups of names that
    hold one shared tensor."""

    def __init__(self):
        self.entries = []
        self.groups = {}  # (layer, name inside iter_t) -> [full names, t = 1..T]

    def add(self, name, shape, kind="float", share_key=None):
        self.entries.append((name, tuple(shape), kind))
        if share_key is not None:
            self.groups.setdefault(share_key, []).append(name)

    def conv(self, name, cout, cin, k, bias=False, share_key=None):
        self.add(f"{name}.weight", (cout, cin, k, k), share_key=share_key and (share_key + ".weight"))
        if bias:
            self.add(f"{name}.bias", (cout,))

    def bn(self, name, c, share_key=None):
        for s in ("weight", "bias", "running_mean", "running_var"):
            self.add(f"{name}.{s}", (c,), share_key=share_key and f"{share_key}.{s}")
        self.add(f"{name}.num_batches_tracked", (), "count", share_key and f"{share_key}.num_batches_tracked")

    def sk(self, name, cin, cout, groups, cifar, share_key=None):
        d = max(cin // (32 if cifar else 16), 32)

        def key(suffix):
            return share_key and f"{share_key}.{suffix}"
        for m in range(2):
            self.conv(f"{name}.conv.{m}.0", cout, cin // groups, 1 if cifar and m == 1 else 3, share_key=key(f"conv.{m}.0"))
            self.bn(f"{name}.conv.{m}.1", cout, share_key=key(f"conv.{m}.1"))
        self.conv(f"{name}.fc1.0", d, cout, 1, share_key=key("fc1.0"))
        self.bn(f"{name}.fc1.1", d, share_key=key("fc1.1"))
        self.conv(f"{name}.fc2", 2 * cout, d, 1, share_key=key("fc2"))


def architecture(arch, classes):
    """The original's state_dict of `arch` with `classes` classes, as a _Spec."""
    v = VARIANTS[arch]
    sk, share, cifar = v["sk"], v["share"], v["cifar"]
    e, groups = (2 if sk else 4), (16 if cifar else 32)
    s = _Spec()
    if cifar:
        cin = v.get("stem", 64)
        s.conv("conv_3x3", cin, 3, 3)
        names = [f"stage_{i + 1}" for i in range(3)]
    else:
        s.conv("conv1", 64, 3, 7)
        s.bn("bn1", 64)
        s.conv("conv2", 64, 64, 3)
        cin = 64
        names = [f"layer{i + 1}" for i in range(4)]
    for i, (layer, T, p) in enumerate(zip(names, v["iters"], v["planes"])):
        E = p * e
        s.bn(f"{layer}.bn_f", cin)
        s.conv(f"{layer}.conv_f", E, cin // groups, 3)
        s.bn(f"{layer}.bn_g_f", cin)
        s.conv(f"{layer}.conv_g_f", E, cin // groups, 1, bias=True)
        s.conv(f"{layer}.conv_g_r", E, E // groups, 1)
        for t in range(1, T + 1):
            it = f"{layer}.iter_{t}"

            def key(k):
                return f"{layer}.iter_*.{k}" if share else None
            s.bn(f"{it}.0", E)
            s.conv(f"{it}.2", p, E, 1, share_key=key(2))
            s.bn(f"{it}.3", p)
            if sk:
                s.sk(f"{it}.5", p, p, groups, cifar, share_key=key(5))
                s.conv(f"{it}.6", E, p, 1, share_key=key(6))
            else:
                s.conv(f"{it}.5", p, p, 3, share_key=key(5))
                s.bn(f"{it}.6", p)
                s.conv(f"{it}.8", E, p, 1, share_key=key(8))
            s.bn(f"{layer}.iter_g_{t}.0", E)
        if i + 1 < len(names):
            s.bn(f"{layer}.d_bn", E)
            s.conv(f"{layer}.d_conv", E, E, 1)
            s.bn(f"{layer}.d_bn_1", E)
            s.conv(f"{layer}.d_conv_1", p, E, 1)
            s.bn(f"{layer}.d_bn_3", p)
            if sk:
                s.sk(f"{layer}.d_conv_3", p, p, groups, cifar)
            else:
                s.conv(f"{layer}.d_conv_3", p, p, 3)
            if cifar and not sk:
                s.bn(f"{layer}.d_bn_1e", p)
            s.conv(f"{layer}.d_conv_1e", E, p, 1)
        cin = E
    s.bn("lastact.0", cin)
    s.add("classifier.weight", (classes, cin))
    s.add("classifier.bias", (classes,))
    s.groups = {k: g for k, g in s.groups.items() if len(g) > 1}
    return s


def _code(t):
    return safetensors_io.CODES.get(t.dtype, str(t.dtype).replace("torch.", ""))


def _nonfinite(t):
    """None, or a description of the NaN/Inf values of a floating tensor."""
    bad = ~torch.isfinite(t.float() if t.dtype in (torch.float16, torch.bfloat16) else t)
    n = int(bad.sum())
    if n == 0:
        return None
    i = int(bad.reshape(-1).nonzero()[0])
    v = float(t.reshape(-1)[i])
    return f"holds {'NaN' if v != v else '+Inf' if v > 0 else '-Inf'} at element {i} ({n} non-finite value{'s' * (n != 1)})"


def check_against(model, spec):
    """Problems of `model` ({name: tensor}) as a state_dict of `spec`, the completed state_dict, and notes on
    what was accommodated as PyTorch's load_state_dict (and grcnn's) accommodates it: a counter stored as a
    one-element 1-d tensor is read as 0-d, a missing counter (checkpoints from before BatchNorm counted
    batches) is 0."""
    problems, out = [], OrderedDict()
    from_vectors, counters_filled = [], []
    group_of = {n: g for g in spec.groups.values() for n in g}
    for name, shape, kind in spec.entries:
        t = model.get(name)
        if t is None:
            donors = [n for n in group_of.get(name, []) if n in model]
            if donors:
                t = model[donors[0]]  # a shared tensor stored under fewer names: the same value
            elif kind == "count":
                t = torch.zeros((), dtype=torch.int64)
                counters_filled.append(name)
            else:
                problems.append(f"missing '{name}'")
                continue
        if kind == "count" and tuple(t.shape) == (1,):
            t = t.reshape(())
            from_vectors.append(name)
        if tuple(t.shape) != shape:
            problems.append(f"'{name}' has shape {list(t.shape)}, {list(shape)} expected")
        elif kind == "count" and t.dtype != torch.int64:
            problems.append(f"'{name}' is {_code(t)}, an I64 counter expected")
        elif kind == "float" and not t.dtype.is_floating_point:
            problems.append(f"'{name}' is {_code(t)}, a floating tensor expected")
        elif kind == "float" and _nonfinite(t):
            problems.append(f"'{name}' {_nonfinite(t)}")
        else:
            out[name] = t
    known = {n for n, _, _ in spec.entries}
    problems += [f"unexpected '{n}'" for n in model if n not in known]
    # Shared tensors: every stored copy equal, then one tensor under every name; the rest get their own
    # compact storage.
    for g in spec.groups.values():
        present = [n for n in g if n in out and n in model]
        for n in present[1:]:
            a, b = out[present[0]], out[n]
            if a.dtype != b.dtype or not torch.equal(a, b):
                problems.append(f"'{n}' is shared with '{present[0]}' but holds different values")
    for g in spec.groups.values():
        members = [n for n in g if n in out]
        if members:
            shared = out[members[0]].clone()
            for n in members:
                out[n] = shared
    for name in out:
        if name not in group_of:
            out[name] = out[name].clone()
    notes = []
    for names, what in ((from_vectors, "one-element 1-d counters written as 0-d"),
                        (counters_filled, "missing num_batches_tracked written as 0")):
        if names:
            notes.append(f"as PyTorch's load_state_dict does: {len(names)} {what} ('{names[0]}'{', ...' * (len(names) > 1)})")
    return problems, out, notes


def summarize(problems, limit=6):
    more = len(problems) - limit
    return "; ".join(problems[:limit]) + (f" (and {more} more)" if more > 0 else "")


def _names_match(model, spec):
    """Whether `model` has the names and shapes of `spec` (a shared tensor under some of its names suffices)."""
    want = {n: s for n, s, _ in spec.entries}
    if any(n not in want for n in model):
        return False
    optional = {n for g in spec.groups.values() if any(m in model for m in g) for n in g}
    return all(tuple(model[n].shape) == s if n in model else n in optional for n, s in want.items())


def matching_architectures(model, classes, exclude=None):
    """Variants whose names and shapes `model` has (for the hint in an error)."""
    return [a for a in VARIANTS if a != exclude and _names_match(model, architecture(a, classes))]


TRAINER_STATE = ("epoch", "iteration", "global_step", "best_top1", "pending_eval", "world_size", "vone_noise_calls", "rng")


def describe_metadata(meta):
    """What a .pt cannot keep of the metadata: (trainer state items, run setting items), as 'key = value'."""
    def item(k, v):
        if k == "rng":
            return f"rng (the trainer's generator, {len(v)} characters)"
        r = repr(v) if not v else v if len(v) <= 40 else v[:37] + "..."
        return f"{k} = {r}"
    state = [item(k, meta[k]) for k in TRAINER_STATE if k in meta]
    settings = [item(k, v) for k, v in meta.items()
                if k not in TRAINER_STATE and k != "format" and not k.startswith("optimizer.")]
    return state, settings


def convert(tensors, meta, origin, arch=None, classes=None):
    """tensors: {name: tensor} of a grcnn file, meta its metadata. Returns (arch, classes, state_dict, dropped,
    notes); raises ConversionError."""
    checkpoint = meta.get("format") == CHECKPOINT_FORMAT
    if checkpoint:
        model = {n[len("model."):]: t for n, t in tensors.items() if n.startswith("model.")}
        if not model:
            raise ConversionError(f"'{origin}' is a grcnn training checkpoint without model.* tensors")
    else:
        model = dict(tensors)
    if not model:
        raise ConversionError(f"'{origin}' holds no tensors")
    meta_arch = meta.get("arch")
    if arch is not None and meta_arch is not None and arch != meta_arch:
        raise ConversionError(f"'{origin}' is a checkpoint of {meta_arch} (its metadata says so), not {arch} as --arch says")
    arch = arch or meta_arch
    if arch in UNSUPPORTED:
        raise ConversionError(f"'{origin}': {arch}: {UNSUPPORTED[arch]}")
    if arch is not None and arch not in VARIANTS:
        raise ConversionError(f"'{origin}': unknown architecture '{arch}' (known: {', '.join(VARIANTS)})")
    meta_classes = meta.get("classes")
    if meta_classes is not None:
        if not (meta_classes.isascii() and meta_classes.isdigit()) or int(meta_classes) < 1:
            raise ConversionError(f"'{origin}' has a malformed 'classes' in its metadata: {meta_classes!r}")
        if classes is not None and classes != int(meta_classes):
            raise ConversionError(f"'{origin}' is a checkpoint with {meta_classes} classes (its metadata says so), "
                                  f"not {classes} as --classes says")
        classes = int(meta_classes)
    if classes is None:
        w = model.get("classifier.weight")
        if w is None or w.dim() != 2 or w.shape[0] < 1:
            raise ConversionError(f"'{origin}' has no 'classifier.weight' [classes, features] to take the class "
                                  "count from (not a GRCNN state_dict?); give --classes")
        classes = int(w.shape[0])
    if arch is None:
        hint = matching_architectures(model, classes)
        raise ConversionError(f"'{origin}' does not name its architecture (no 'arch' in its metadata); give --arch"
                              + (f" (its tensors match {' or '.join(hint)})" if hint else ""))
    spec = architecture(arch, classes)
    problems, state, notes = check_against(model, spec)
    if problems:
        hint = [] if meta_arch else matching_architectures(model, classes, exclude=arch)
        raise ConversionError(f"'{origin}' is not a {arch} state_dict with {classes} classes: {len(problems)} problem(s): "
                              + summarize(problems) + (f"; its tensors match {' or '.join(hint)}" if hint else ""))
    dropped = []
    if checkpoint:
        rest = [n for n in tensors if not n.startswith("model.")]
        by_prefix = OrderedDict()
        for n in rest:
            by_prefix.setdefault(n.split(".", 1)[0], []).append(n)
        for prefix, names in by_prefix.items():
            what = f"{prefix}.* ({len(names)} tensors"
            if prefix == "optimizer":
                kind = meta.get("optimizer.kind")
                what += f": the {kind} optimizer's state" if kind else ": optimizer state"
            dropped.append(what + ")")
    filled = sum(1 for g in spec.groups.values() for n in g if n not in model)
    shared = sum(len(g) for g in spec.groups.values())
    if shared:
        notes.append(f"{len(spec.groups)} shared tensors written under their {shared} names"
                     + (f" ({filled} names not in the file filled from the others)" if filled else ""))
    return arch, classes, state, dropped, notes


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights", help="grcnn safetensors: a grcnn-train checkpoint, best.safetensors or a plain state_dict")
    p.add_argument("out", help="the .pt to write")
    p.add_argument("--arch", choices=list(VARIANTS) + list(UNSUPPORTED), default=None,
                   help="architecture (default: the checkpoint's metadata; required for plain files)")
    p.add_argument("--classes", type=int, default=None,
                   help="class count (default: the checkpoint's metadata, else the classifier's rows)")
    a = p.parse_args()
    try:
        if a.classes is not None and a.classes < 1:
            raise ConversionError(f"--classes must be at least 1, got {a.classes}")
        if os.path.isdir(a.out):
            raise ConversionError(f"output '{a.out}' is a directory")
        if os.path.exists(a.out) and os.path.exists(a.weights) and os.path.samefile(a.out, a.weights):
            raise ConversionError(f"output '{a.out}' is the input file")
        try:
            tensors, meta = safetensors_io.load_checked(a.weights)
        except safetensors_io.FormatError as e:
            raise ConversionError(f"'{a.weights}': {e}") from None
        except OSError as e:
            raise ConversionError(f"cannot read '{a.weights}': {e.strerror or e}") from None
        arch, classes, state, dropped, notes = convert(tensors, meta, a.weights, a.arch, a.classes)
        buf = io.BytesIO()
        torch.save(state, buf)
        try:
            safetensors_io.write_atomic(a.out, [buf.getbuffer()])
        except IsADirectoryError:
            raise ConversionError(f"output '{a.out}' is a directory") from None
        except OSError as e:
            raise ConversionError(f"cannot write '{a.out}': {e.strerror or e}") from None
    except ConversionError as e:
        sys.exit(f"error: {e}")
    state_items, settings = describe_metadata(meta)
    if state_items:
        dropped.append(f"trainer state ({', '.join(state_items)})")
    if dropped:
        print(f"dropped from '{a.weights}': {'; '.join(dropped)}")
    if settings:
        print(f"not carried over (a .pt state_dict holds tensors only): {len(settings)} metadata entries: {', '.join(settings)}")
    for n in notes:
        print(n)
    print(f"wrote {len(state)} tensors ({arch}, {classes} classes) to {a.out}")


if __name__ == "__main__":
    main()
