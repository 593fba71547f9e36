#!/usr/bin/env python3
"""tools/safetensors_to_torch.py (grcnn weights -> a PyTorch state_dict .pt for the original GRCNN code)
end to end:

  check_safetensors_to_torch.py BUILD_DIR WORK_DIR                     (BUILD_DIR/examples/grcnn-{infer,train})
  check_safetensors_to_torch.py GRCNN_INFER GRCNN_TRAIN WORK_DIR

1. Real grcnn-train checkpoints (grcnn_small, and the weight-sharing grcnn56_share; 2 steps on a tiny
   IDX dataset written here): converted with no --arch (arch and classes from the metadata), loaded with
   strict=True into tests/torch/grcnn_reference.build(); its logits equal grcnn-infer's on the checkpoint
   within f32 rounding, and swapping two same-shaped tensors moves them far beyond that (the comparison
   can fail). Shared tensors come back as one tensor under every name, num_batches_tracked as int64 0-d
   tensors; the optimizer and trainer state are dropped and listed.
2. The other way round: a PyTorch grcnn_small with random weights and BN statistics -> torch.save ->
   torch_to_safetensors.py -> grcnn-infer, and -> this tool (--arch) -> PyTorch: the logits agree.
   Round trips safetensors -> .pt -> torch_to_safetensors.py give back equal tensors; a shared tensor
   stored under one of its names only is completed; a one-element 1-d counter becomes 0-d and a missing
   counter 0, as PyTorch's load_state_dict takes them.
3. Every variant of the rebuild: the tool's table (names, order, shapes, dtypes, shared groups) equals
   grcnn_reference's state_dict (grcnn55 also the spec's list), and a checkpoint-like dict of each
   converts and loads with strict=True.
4. Hostile inputs (truncated, garbage, empty, trailing bytes, an unknown dtype, non-string metadata, a
   name twice, another architecture, wrong shapes, integer weights, float counters, NaN, disagreeing
   shared copies, missing or extra tensors, contradicting --arch/--classes, output = input): each exits
   non-zero with one line on stderr naming the file and the problem, and writes nothing (no output, an
   existing output unchanged, no temporary file left). Four run as processes, the rest through main()
   in this process (no interpreter start-up each).
"""
import contextlib
import io
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "torch"))
sys.path.insert(0, str(ROOT / "tools"))
import safetensors_io  # noqa: E402
import safetensors_to_torch as s2t  # noqa: E402
from grcnn_reference import VARIANTS, build  # noqa: E402

TOOL = ROOT / "tools" / "safetensors_to_torch.py"
BACK = ROOT / "tools" / "torch_to_safetensors.py"
TOLERANCE = 1e-5  # logits, relative to their largest magnitude: f32 rounding (check_infer.py's bound)

if len(sys.argv) == 3:
    infer, train = Path(sys.argv[1]) / "examples" / "grcnn-infer", Path(sys.argv[1]) / "examples" / "grcnn-train"
elif len(sys.argv) == 4:
    infer, train = Path(sys.argv[1]), Path(sys.argv[2])
else:
    sys.exit(__doc__)
work = Path(sys.argv[-1]).resolve()
shutil.rmtree(work, ignore_errors=True)  # a rerun starts clean (grcnn-train refuses a folder holding checkpoints)
work.mkdir(parents=True)
torch.manual_seed(24)


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    print("ok:", what)


def executable(path):
    """The tool, waiting up to 2 minutes while a concurrent build relinks it."""
    for _ in range(24):
        if os.access(path, os.X_OK):
            return str(path)
        print(f"waiting for {path} (being relinked?)")
        time.sleep(5)
    sys.exit(f"FAIL: {path} does not exist")


def run_exe(path, args):
    for attempt in range(3):
        p = subprocess.run([executable(path)] + [str(a) for a in args], capture_output=True, text=True)
        if p.returncode == 0 or os.access(path, os.X_OK):
            break
        time.sleep(5)  # vanished while starting: relinked under us
    if p.returncode != 0:
        sys.exit(f"FAIL: {path.name} {' '.join(map(str, args))} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p.stdout


def tool(args, ok=True, in_process=False):
    """Runs the tool; in_process: its main() here (no interpreter start-up), exit status as Python's would be."""
    args = [str(a) for a in args]
    if not in_process:
        p = subprocess.run([sys.executable, str(TOOL)] + args, capture_output=True, text=True)
    else:
        out, err, argv, code = io.StringIO(), io.StringIO(), sys.argv, 0
        sys.argv = [str(TOOL)] + args
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                s2t.main()
        except SystemExit as e:  # sys.exit("error: ...") prints the text and exits with 1
            code = e.code if isinstance(e.code, int) else 1
            if isinstance(e.code, str):
                err.write(e.code + "\n")
        finally:
            sys.argv = argv
        p = subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
    if ok and p.returncode != 0:
        sys.exit(f"FAIL: safetensors_to_torch.py {' '.join(map(str, args))} exited {p.returncode}\n{p.stdout}{p.stderr}")
    return p


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


def torch_logits(state, arch, classes, x):
    net = build(arch, classes)
    net.load_state_dict(state, strict=True)  # raises on any missing, unexpected or misshapen entry
    net.eval()
    with torch.no_grad():
        return net(x)


def grcnn_logits(arch, weights, x, name):
    safetensors_io.save(work / f"{name}_x.safetensors", [("input", x)])
    run_exe(infer, ["--arch", arch, "--weights", weights, "--input", work / f"{name}_x.safetensors", "--output",
                    work / f"{name}_y.safetensors", "--backend", "cpu"])
    return safetensors_io.load(work / f"{name}_y.safetensors")[0]["logits"]


def write_idx(folder, n_train, n_test):
    """A tiny Fashion-MNIST-shaped dataset (IDX files of random 28x28 images, labels 0-9)."""
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(7)
    for split, n in (("train", n_train), ("t10k", n_test)):
        pixels = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
        labels = torch.arange(n, dtype=torch.uint8) % 10
        (folder / f"{split}-images-idx3-ubyte").write_bytes(struct.pack(">4i", 0x803, n, 28, 28) + pixels.numpy().tobytes())
        (folder / f"{split}-labels-idx1-ubyte").write_bytes(struct.pack(">2i", 0x801, n) + labels.numpy().tobytes())


def same_tensors(a, b):
    return list(a) == list(b) and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------------------------------------
# 1. grcnn-train checkpoints -> .pt -> PyTorch, against grcnn-infer
data = work / "idx"
write_idx(data, 8, 4)
x = torch.rand(3, 3, 32, 32) * 2 - 1
for arch in ("grcnn_small", "grcnn56_share"):
    run = work / f"run_{arch}"
    run_exe(train, ["--arch", arch, "--dataset", "fashion-mnist", "--data", data, "--epochs", "1", "--batch", "4",
                    "--lr", "0.01", "--seed", "5", "--backend", "cpu", "--threads", "2", "--out", run])
    ckpt = run / "best.safetensors"
    check(ckpt.exists(), f"grcnn-train wrote {ckpt.name} for {arch}")
    tensors, meta = safetensors_io.load_checked(ckpt)
    check(meta.get("format") == "grcnn-checkpoint-1" and meta.get("arch") == arch and meta.get("classes") == "10"
          and any(k.startswith("optimizer.") for k in tensors), f"{arch}: a training checkpoint naming arch and classes")
    out = work / f"{arch}.pt"
    p = tool([ckpt, out])
    print(p.stdout.rstrip())
    check("optimizer.*" in p.stdout and "sgd optimizer's state" in p.stdout and "global_step = 2" in p.stdout,
          f"{arch}: the optimizer and trainer state are dropped and listed on stdout")
    state = torch.load(out)
    check(type(state).__name__ == "OrderedDict" and all(torch.is_tensor(t) for t in state.values()),
          f"{arch}: the .pt is an OrderedDict of tensors")
    model = {k[len("model."):]: t for k, t in tensors.items() if k.startswith("model.")}
    check(list(state) == list(build(arch, 10).state_dict()), f"{arch}: names in the original's registration order")
    check(all(torch.equal(state[k], model[k]) and state[k].dtype == model[k].dtype for k in state)
          and set(state) == set(model), f"{arch}: every tensor equals the checkpoint's model.<name>")
    counters = [k for k in state if k.endswith("num_batches_tracked")]
    check(counters and all(state[k].dtype == torch.int64 and state[k].dim() == 0 and int(state[k]) in (0, 2)
                           for k in counters),
          f"{arch}: {len(counters)} num_batches_tracked are int64 0-d tensors (2 steps, or 0 for unused BNs)")
    got = grcnn_logits(arch, ckpt, x, arch)
    want = torch_logits(state, arch, 10, x)
    err = rel(want, got)
    print(f"{arch}: logits of the converted weights in PyTorch vs grcnn-infer on the checkpoint: relative error {err:.2e}")
    check(err <= TOLERANCE, f"{arch}: PyTorch logits equal grcnn-infer's within f32 rounding ({err:.2e} <= {TOLERANCE})")
    if arch == "grcnn56_share":
        a, b = state["stage_2.iter_1.2.weight"], state["stage_2.iter_4.2.weight"]
        check(a is b, "grcnn56_share: a shared conv is one tensor under every iteration's name")
        share_state, share_ckpt = state, ckpt
        # swapping the shared 1x1 (every iteration's) with d_conv_1 of the same shape must show in the logits
        bad = dict(state)
        for k in [k for k in state if k.startswith("stage_1.iter_") and k.endswith(".2.weight")]:
            bad[k] = state["stage_1.d_conv_1.weight"]
        bad["stage_1.d_conv_1.weight"] = state["stage_1.iter_1.2.weight"]
    else:
        small_state, small_ckpt = state, ckpt
        bad = dict(state)
        bad["stage_2.iter_1.2.weight"], bad["stage_2.iter_2.2.weight"] = state["stage_2.iter_2.2.weight"], state["stage_2.iter_1.2.weight"]
    moved = rel(torch_logits(bad, arch, 10, x), got)
    check(moved > 1e3 * TOLERANCE, f"{arch}: two swapped tensors move the logits by {moved:.2e} (the comparison can fail)")

# ---------------------------------------------------------------------------------------------------------
# 2. PyTorch (random weights) -> torch_to_safetensors -> grcnn-infer / this tool -> PyTorch
net = build("grcnn_small", 10)
with torch.no_grad():
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0, 0.1)
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.num_batches_tracked.fill_(int(torch.randint(1, 10**6, ())))
torch.save({"state_dict": net.state_dict(), "epoch": 3}, work / "random.pth")
subprocess.run([sys.executable, str(BACK), work / "random.pth", work / "random.safetensors"], check=True,
               stdout=subprocess.DEVNULL)
got = grcnn_logits("grcnn_small", work / "random.safetensors", x, "random")
p = tool([work / "random.safetensors", work / "random.pt", "--arch", "grcnn_small"])
state = torch.load(work / "random.pt")
check(same_tensors(state, net.state_dict()), "random grcnn_small: torch -> safetensors -> .pt gives the state_dict back")
net.eval()
with torch.no_grad():
    err_torch = rel(net(x), got)
err = rel(torch_logits(state, "grcnn_small", 10, x), got)
print(f"random grcnn_small: relative logits error, converted .pt vs grcnn-infer: {err:.2e} (original module: {err_torch:.2e})")
check(err <= TOLERANCE, f"random grcnn_small: converted weights give grcnn-infer's logits ({err:.2e})")

# round trips: safetensors -> .pt -> torch_to_safetensors -> the same tensors
for name, src, pt in (("plain grcnn_small", work / "random.safetensors", work / "random.pt"),
                      ("grcnn56_share checkpoint", share_ckpt, work / "grcnn56_share.pt")):
    back = work / (pt.stem + "_back.safetensors")
    subprocess.run([sys.executable, str(BACK), pt, back], check=True, stdout=subprocess.DEVNULL)
    original, meta = safetensors_io.load_checked(src)
    if meta.get("format") == "grcnn-checkpoint-1":
        original = {k[len("model."):]: t for k, t in original.items() if k.startswith("model.")}
    check(same_tensors(safetensors_io.load_checked(back)[0], original),
          f"{name}: safetensors -> .pt -> torch_to_safetensors.py gives equal tensors, names and dtypes")

# a shared tensor stored under its first name only is completed (the same .pt as from the full file)
model = {k[len("model."):]: t for k, t in safetensors_io.load_checked(share_ckpt)[0].items() if k.startswith("model.")}
groups = s2t.architecture("grcnn56_share", 10).groups.values()
once = [(k, t) for k, t in model.items() if not any(k in g[1:] for g in groups)]
safetensors_io.save(work / "share_once.safetensors", once)
p = tool([work / "share_once.safetensors", work / "share_once.pt", "--arch", "grcnn56_share"])
check("filled from the others" in p.stdout and same_tensors(torch.load(work / "share_once.pt"), share_state),
      f"grcnn56_share stored once ({len(once)} of {len(model)} names): completed to the full state_dict")

# PyTorch's (and grcnn's loader's) accommodations: a one-element 1-d counter is 0-d, a missing counter 0
old = dict(safetensors_io.load_checked(work / "random.safetensors")[0])
old["stage_1.bn_f.num_batches_tracked"] = old["stage_1.bn_f.num_batches_tracked"].reshape(1)
del old["lastact.0.num_batches_tracked"]
safetensors_io.save(work / "old_counters.safetensors", list(old.items()))
p = tool([work / "old_counters.safetensors", work / "old_counters.pt", "--arch", "grcnn_small"], in_process=True)
converted = torch.load(work / "old_counters.pt")
check("1 one-element 1-d counters written as 0-d" in p.stdout and "1 missing num_batches_tracked written as 0" in p.stdout
      and converted["stage_1.bn_f.num_batches_tracked"].dim() == 0
      and int(converted["stage_1.bn_f.num_batches_tracked"]) == int(state["stage_1.bn_f.num_batches_tracked"])
      and converted["lastact.0.num_batches_tracked"].dim() == 0 and int(converted["lastact.0.num_batches_tracked"]) == 0
      and converted["lastact.0.num_batches_tracked"].dtype == torch.int64,
      "a [1] counter is written 0-d and a missing one as 0, as PyTorch loads them, and both are noted")
build("grcnn_small", 10).load_state_dict(converted, strict=True)

# ---------------------------------------------------------------------------------------------------------
# 3. every variant of the rebuild
spec_file = [line.split(" ", 1) for line in (HERE / "data" / "grcnn55-state-dict.txt").read_text().splitlines()
             if line and not line.startswith("#")]
check([(n, tuple(eval(s))) for n, s in spec_file] == [(n, s) for n, s, _ in s2t.architecture("grcnn55", 1000).entries],
      "grcnn55: the tool's names, order and shapes are the spec's 426 entries")
check(set(s2t.VARIANTS) == set(VARIANTS), "the tool knows every variant of the rebuild")
t0 = time.time()
for arch in VARIANTS:
    classes = 7
    ref = build(arch, classes).state_dict()
    spec = s2t.architecture(arch, classes)
    same = ([(n, s, k) for n, s, k in spec.entries] ==
            [(n, tuple(t.shape), "count" if t.dtype == torch.int64 else "float") for n, t in ref.items()])
    by_storage = {}
    for n, t in ref.items():
        by_storage.setdefault(t.data_ptr(), []).append(n)
    shared = sorted(g for g in by_storage.values() if len(g) > 1)
    tensors = {"model." + n: t + 0 if t.is_floating_point() else t.clone() for n, t in ref.items()}
    tensors["optimizer.0.0.momentum_buffer"] = torch.zeros(3)
    meta = {"format": "grcnn-checkpoint-1", "arch": arch, "classes": str(classes), "epoch": "1", "rng": "1 2 3"}
    got_arch, got_classes, state, dropped, _ = s2t.convert(tensors, meta, f"<{arch}>")
    fresh = build(arch, classes)
    fresh.load_state_dict(state, strict=True)
    loaded = fresh.state_dict()
    check(same and shared == sorted(spec.groups.values()) and (got_arch, got_classes) == (arch, classes)
          and dropped and all(torch.equal(loaded[n], ref[n]) for n in ref),
          f"{arch}: {len(spec.entries)} entries and {len(shared)} shared groups as the rebuild's; "
          "a checkpoint of it loads with strict=True, every value kept")
print(f"(all variants: {time.time() - t0:.1f} s)")

# ---------------------------------------------------------------------------------------------------------
# 4. hostile inputs: a message, a non-zero exit, nothing written. The first few run as processes (exit
# status and stderr as a shell sees them), the rest in this process (the same main(), without starting
# an interpreter and importing torch each time).
small_plain = work / "random.safetensors"
plain = safetensors_io.load_checked(small_plain)[0]
bad_dir = work / "bad"
bad_dir.mkdir()


def variant(name, change, meta=None):
    t = dict(plain)
    change(t)
    path = bad_dir / f"{name}.safetensors"
    safetensors_io.save(path, list(t.items()), meta)
    return path


def raw_file(name, data):
    path = bad_dir / name
    path.write_bytes(data)
    return path


ckpt_bytes = small_ckpt.read_bytes()
features = plain["classifier.weight"].shape[1]
conv_f = list(plain["stage_2.conv_f.weight"].shape)
nan_bias = plain["classifier.bias"].clone()
nan_bias[3] = float("nan")
header_len = struct.unpack("<Q", ckpt_bytes[:8])[0]
bad_header = b'{"x": {"dtype": "I32", "shape": [2], "data_offsets": [0, 8]}}'
meta_header = b'{"__metadata__": {"arch": 5}, "x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}'
twice_header = b'{"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}'
share_model = {k: t for k, t in safetensors_io.load_checked(share_ckpt)[0].items()}
share_model["model.stage_2.iter_3.2.weight"] = share_model["model.stage_2.iter_3.2.weight"] * 1.001
share_meta = safetensors_io.load_checked(share_ckpt)[1]
safetensors_io.save(bad_dir / "share_disagree.safetensors", list(share_model.items()), share_meta)
cases = [
    ("truncated data", raw_file("truncated.safetensors", ckpt_bytes[:len(ckpt_bytes) // 2]), [], "truncated"),
    ("truncated header", raw_file("truncated_header.safetensors", ckpt_bytes[:8 + header_len // 2]), [], "truncated"),
    ("garbage bytes", raw_file("garbage.safetensors", bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).tolist())),
     [], "not a safetensors file"),
    ("a text file", raw_file("text.safetensors", b"this is not a checkpoint, just some text\n"), [], "not a safetensors file"),
    ("an empty file", raw_file("empty.safetensors", b""), [], "shorter than the 8-byte header"),
    ("bytes after the tensors", raw_file("tail.safetensors", small_plain.read_bytes() + b"\0" * 8), ["--arch", "grcnn_small"],
     "belong to no tensor"),
    ("an unknown dtype", raw_file("i32.safetensors", struct.pack("<Q", len(bad_header)) + bad_header + b"\0" * 8), [],
     "dtype I32"),
    ("a metadata value that is not a string", raw_file("meta.safetensors", struct.pack("<Q", len(meta_header)) + meta_header
                                                        + b"\0" * 8), [], "metadata 'arch' is 5, not a string"),
    ("a tensor named twice", raw_file("twice.safetensors", struct.pack("<Q", len(twice_header)) + twice_header + b"\0" * 8),
     [], "gives the key 'x' twice"),
    ("a grcnn_small checkpoint as --arch grcnn56_share", small_ckpt, ["--arch", "grcnn56_share"],
     "is a checkpoint of grcnn_small (its metadata says so), not grcnn56_share"),
    ("a plain grcnn_small file as --arch grcnn56", small_plain, ["--arch", "grcnn56"],
     "is not a grcnn56 state_dict", "its tensors match grcnn_small"),
    ("a plain file without --arch", small_plain, [], "give --arch", "its tensors match grcnn_small"),
    ("--classes against the metadata", small_ckpt, ["--classes", "100"], "10 classes (its metadata says so), not 100"),
    ("--classes against the classifier", small_plain, ["--arch", "grcnn_small", "--classes", "11"],
     f"'classifier.weight' has shape [10, {features}], [11, {features}] expected"),
    ("a wrong shape", variant("shape", lambda t: t.update({"stage_2.conv_f.weight": t["stage_2.conv_f.weight"][:, :, :2, :2]})),
     ["--arch", "grcnn_small"], f"'stage_2.conv_f.weight' has shape {conv_f[:2] + [2, 2]}, {conv_f} expected"),
    ("integer weights", variant("int_weight", lambda t: t.update({"stage_1.conv_g_f.bias": t["stage_1.conv_g_f.bias"].long()})),
     ["--arch", "grcnn_small"], "'stage_1.conv_g_f.bias' is I64, a floating tensor expected"),
    ("a float counter", variant("float_count", lambda t: t.update({"lastact.0.num_batches_tracked": torch.tensor(3.0)})),
     ["--arch", "grcnn_small"], "'lastact.0.num_batches_tracked' is F32, an I64 counter expected"),
    ("a counter of shape [2]", variant("count_2", lambda t: t.update({"lastact.0.num_batches_tracked": torch.tensor([3, 4])})),
     ["--arch", "grcnn_small"], "'lastact.0.num_batches_tracked' has shape [2], [] expected"),
    ("a float counter of shape [1]", variant("count_f1", lambda t: t.update({"lastact.0.num_batches_tracked": torch.tensor([3.0])})),
     ["--arch", "grcnn_small"], "'lastact.0.num_batches_tracked' is F32, an I64 counter expected"),
    ("a NaN weight", variant("nan", lambda t: t.update({"classifier.bias": nan_bias})), ["--arch", "grcnn_small"],
     "'classifier.bias' holds NaN at element 3"),
    ("a missing tensor", variant("missing", lambda t: t.pop("stage_3.iter_2.5.weight")), ["--arch", "grcnn_small"],
     "missing 'stage_3.iter_2.5.weight'"),
    ("an extra tensor", variant("extra", lambda t: t.update({"ema.classifier.bias": torch.zeros(10)})), ["--arch", "grcnn_small"],
     "unexpected 'ema.classifier.bias'"),
    ("disagreeing shared copies", bad_dir / "share_disagree.safetensors", [],
     "'stage_2.iter_3.2.weight' is shared with 'stage_2.iter_1.2.weight' but holds different values"),
    ("vone_grcnn55", small_plain, ["--arch", "vone_grcnn55"], "not converted"),
    ("a checkpoint marker without model.*", variant("no_model", lambda t: None, {"format": "grcnn-checkpoint-1"}), [],
     "without model.* tensors"),
]
for i, case in enumerate(cases):
    what, src, extra, needles = case[0], case[1], case[2], case[3:]
    out = bad_dir / "out.pt"
    before = sorted(os.listdir(bad_dir))
    in_process = what not in ("truncated data", "garbage bytes", "a wrong shape",
                              "a grcnn_small checkpoint as --arch grcnn56_share")
    p = tool([src, out] + extra, ok=False, in_process=in_process)
    lines = p.stderr.strip().splitlines()
    check(p.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: ") and str(src) in lines[0]
          and all(n in lines[0] for n in needles) and not out.exists() and sorted(os.listdir(bad_dir)) == before,
          f"refused, nothing written{'' if in_process else ' (a process, exit ' + str(p.returncode) + ')'}: {what}: "
          f"{lines[0] if lines else p.stderr!r}")

# an existing output stays as it was; output = input and an unwritable output are refused
keep = bad_dir / "keep.pt"
keep.write_bytes(b"earlier contents")
p = tool([bad_dir / "truncated.safetensors", keep], ok=False)
check(p.returncode != 0 and keep.read_bytes() == b"earlier contents" and sorted(os.listdir(bad_dir)).count("keep.pt") == 1,
      "a failed conversion leaves an existing output as it was")
p = tool([small_plain, small_plain, "--arch", "grcnn_small"], ok=False, in_process=True)
check(p.returncode != 0 and "is the input file" in p.stderr and safetensors_io.load_checked(small_plain),
      f"output = input refused: {p.stderr.strip()}")
p = tool([small_plain, work / "no_such_dir" / "out.pt", "--arch", "grcnn_small"], ok=False, in_process=True)
check(p.returncode != 0 and "cannot write" in p.stderr and not (work / "no_such_dir").exists(),
      f"an output in a missing folder refused: {p.stderr.strip()}")
print("all safetensors_to_torch checks passed")
