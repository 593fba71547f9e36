#!/usr/bin/env python3
"""Checks tools/safe_checkpoint.py and tools/torch_to_safetensors.py (issue 21: no code from a file runs):

  check_safe_checkpoint.py OUTDIR

(a) an original-GRCNN-style training checkpoint (epoch, arch, best_acc1, DataParallel state_dict, SGD
    optimizer state with Python floats and momentum buffers) converts bit for bit, and the converter
    reports what it dropped; (b) the same in torch.save's legacy format; (c) TorchScript archives are
    refused by name and nothing in them runs; (d) malicious pickles in zip checkpoints, (e) in legacy
    ones and in plain pickles are refused naming the global, and their payloads (live: torch.load runs
    them) do not run; nor is any module imported; (f) garbage, empty, text, truncated and hand-forged
    hostile files (storage sizes, offsets, strides, compressed members) are clear errors: exit code 1,
    "error:" and the file name, no traceback; (g) shared storages, bf16/f16/f64/i64, non-contiguous,
    offset, empty and 0-d tensors round trip bit for bit (NaN and -0.0 included), weight sharing
    survives the reader, plain data (bytes, sets, big ints) reads, a big-endian byteorder record and
    _rebuild_tensor_v3 read right; (h) outputs: a directory is refused, a symlink stays a symlink and
    its target gets the file, a FIFO and /dev/null are written through and stay what they are;
    (i) failed writes (missing folder, a write cut short by RLIMIT_FSIZE, a read-only folder when not
    root) leave no temporary file and the earlier output intact.
"""
import builtins
import collections
import glob
import io
import os
import pickle
import resource
import shlex
import shutil
import stat
import subprocess
import sys
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

TOOLS = Path(__file__).resolve().parents[2] / "tools"
sys.path.insert(0, str(TOOLS))
import safe_checkpoint  # noqa: E402
import safetensors_io  # noqa: E402

CONVERTER = str(TOOLS / "torch_to_safetensors.py")
out = Path(sys.argv[1]).resolve()
out.mkdir(parents=True, exist_ok=True)
for old in out.iterdir():  # a clean folder: markers from an earlier run must not count
    if old.is_dir() and not old.is_symlink():
        os.chmod(old, 0o755)
        shutil.rmtree(old)
    else:
        old.unlink()
checks = 0


def check(cond, what):
    global checks
    if not cond:
        sys.exit(f"FAIL: {what}")
    checks += 1


def convert(*args, cwd=None, env=None, preexec_fn=None):
    p = subprocess.run([sys.executable, CONVERTER, *map(str, args)], capture_output=True, text=True,
                       cwd=cwd, env=env, preexec_fn=preexec_fn, timeout=120)
    return p.returncode, p.stdout, p.stderr


def bits(t):
    """A tensor's values as integers of its width, so that comparisons are bit for bit (NaN, -0.0)."""
    t = t.contiguous()
    if t.dtype.is_floating_point:
        t = t.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])
    return t


def same(a, b):
    return a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape) and torch.equal(bits(a), bits(b))


def check_converted(path, expected, what):
    got, _ = safetensors_io.load(path)
    check(list(got) == list(expected), f"{what}: names {list(got)[:5]}... != {list(expected)[:5]}...")
    for k, v in expected.items():
        check(same(got[k], v), f"{what}: tensor '{k}' differs")


def expect_error(path, needle, *args, out_path=None, cwd=None, env=None, name=None):
    """The converter on path fails cleanly: exit 1, 'error:', the file's name, the needle, no traceback."""
    rc, so, se = convert(path, out_path or out / "never.safetensors", *args, cwd=cwd, env=env)
    what = f"converter on {Path(path).name}"
    check(rc == 1, f"{what}: exit code {rc}, stderr {se!r}")
    check("error:" in se and (name or str(path)) in se, f"{what}: stderr {se!r} lacks 'error:' or the file name")
    check(needle in se, f"{what}: stderr {se!r} lacks {needle!r}")
    check("Traceback" not in se, f"{what}: a traceback: {se!r}")
    return se


def no_tmp(folder):
    return not glob.glob(str(Path(folder) / "*.tmp")) and not glob.glob(str(Path(folder) / ".*.tmp"))


# ---------------------------------------------------------------------------------------------------
# (a) an original-GRCNN-style checkpoint: train.py's torch.save({'epoch', 'arch', 'state_dict',
#     'best_acc1', 'optimizer'}) of a DataParallel model after an optimizer step
torch.manual_seed(5)
model = torch.nn.Sequential(torch.nn.Conv2d(16, 32, 3, bias=False), torch.nn.BatchNorm2d(32), torch.nn.ReLU())
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
model(torch.randn(4, 16, 8, 8)).square().mean().backward()
opt.step()
model(torch.randn(4, 16, 8, 8))  # BN running statistics move too
state = torch.nn.DataParallel(model).state_dict()  # "module." keys, with _metadata
plain = {k[len("module."):]: v for k, v in state.items()}
ckpt = {"epoch": 89, "arch": "grcnn55", "state_dict": state, "best_acc1": 78.2, "optimizer": opt.state_dict()}
torch.save(ckpt, out / "grcnn_train.pt")
try:
    torch.load(out / "grcnn_train.pt", weights_only=True)
    print("note: this torch's weights_only loader reads the training checkpoint")
except Exception as e:  # noqa: BLE001 - torch 1.13: "Unsupported operand 71" (the floats)
    print(f"note: torch.load(weights_only=True) refuses the training checkpoint: ...{str(e).strip()[-40:]}")
rc, so, se = convert(out / "grcnn_train.pt", out / "grcnn_train.safetensors")
check(rc == 0, f"(a) converter failed: {se}")
check_converted(out / "grcnn_train.safetensors", plain, "(a)")
for needle in ("dropped from ", "grcnn_train.pt", "optimizer (optimizer state)", "epoch = 89", "best_acc1 = 78.2",
               "arch = 'grcnn55'"):
    check(needle in so, f"(a) the dropped report {so!r} lacks {needle!r}")
check("state_dict" not in so.split("wrote")[0], f"(a) the report lists the state_dict as dropped: {so!r}")
loaded = safe_checkpoint.load(out / "grcnn_train.pt")
check(loaded["epoch"] == 89 and loaded["arch"] == "grcnn55" and loaded["best_acc1"] == 78.2, "(a) scalars")
groups = loaded["optimizer"]["param_groups"]
check(groups[0]["lr"] == 0.1 and groups[0]["momentum"] == 0.9 and groups[0]["weight_decay"] == 1e-4
      and groups[0]["nesterov"] is False and groups[0]["params"] == [0, 1, 2], f"(a) optimizer groups {groups}")
for i, s in opt.state_dict()["state"].items():
    check(same(loaded["optimizer"]["state"][i]["momentum_buffer"], s["momentum_buffer"]), f"(a) momentum buffer {i}")
check(type(loaded["state_dict"]) is collections.OrderedDict and hasattr(loaded["state_dict"], "_metadata"),
      "(a) the state_dict is an OrderedDict with its _metadata")

# (b) the legacy format, with best_acc1 a tensor (as the ImageNet example's accuracy() gives it)
ckpt_legacy = dict(ckpt, best_acc1=torch.tensor(78.2))
torch.save(ckpt_legacy, out / "grcnn_legacy.pt", _use_new_zipfile_serialization=False)
check(not zipfile.is_zipfile(out / "grcnn_legacy.pt"), "(b) the legacy file is not a zip")
rc, so, se = convert(out / "grcnn_legacy.pt", out / "grcnn_legacy.safetensors")
check(rc == 0, f"(b) converter failed: {se}")
check_converted(out / "grcnn_legacy.safetensors", plain, "(b)")
check("best_acc1 = 78.2" in so and "optimizer (optimizer state)" in so, f"(b) report {so!r}")
legacy = safe_checkpoint.load(out / "grcnn_legacy.pt")
check(same(legacy["best_acc1"], torch.tensor(78.2)) and legacy["optimizer"]["param_groups"][0]["lr"] == 0.1,
      "(b) legacy scalars")
for k, v in ckpt["state_dict"].items():
    check(same(legacy["state_dict"][k], v), f"(b) legacy tensor {k}")


# ---------------------------------------------------------------------------------------------------
# payloads: objects whose unpickling runs code (os.system -> posix.system, builtins.exec)
class System:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, ("touch " + shlex.quote(self.marker),))


class Exec:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.exec, (f"open({self.marker!r}, 'w').close()",))


small = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
evil = {  # name: (payload, zip format, pickle protocol)
    "evil_zip_system.pt": (System, True, 2), "evil_zip_exec.pt": (Exec, True, 2),
    "evil_zip_exec_p4.pt": (Exec, True, 4), "evil_legacy_system.pt": (System, False, 2),
    "evil_legacy_exec.pt": (Exec, False, 2), "evil_legacy_system_p4.pt": (System, False, 4),
}
for name, (payload, zipped, protocol) in evil.items():
    for tag in ("", ".control"):
        torch.save({"state_dict": small, "extra": payload(out / (name + tag + ".marker"))}, out / (name + tag),
                   _use_new_zipfile_serialization=zipped, pickle_protocol=protocol)
# a plain pickle (not a checkpoint) whose first object is the payload
(out / "evil_plain.pkl").write_bytes(pickle.dumps(System(out / "evil_plain.pkl.marker"), protocol=2))
# a module on the path that would run on import: the reader must not import what a global names
(out / "grcnn_evil_module.py").write_text(f"open({str(out / 'import.marker')!r}, 'w').close()\nf = print\n")
with open(out / "evil_import.pkl", "wb") as f:
    f.write(b"\x80\x02cgrcnn_evil_module\nf\n.")
# the payloads are live: torch.load (unrestricted) runs them
subprocess.run([sys.executable, "-c", "import sys, torch\nfor p in sys.argv[1:]: torch.load(p)",
                *[str(out / (n + ".control")) for n in evil]], check=True, capture_output=True, timeout=120)
for n in evil:
    check((out / (n + ".control.marker")).exists(), f"the control payload of {n} did not run under torch.load")

# (c) TorchScript: a scripted module, and a crafted archive whose data.pkl and code would write a marker
torch.jit.save(torch.jit.script(model), str(out / "scripted.pt"))
with zipfile.ZipFile(out / "scripted_evil.pt", "w") as z:
    z.writestr("scripted_evil/data.pkl", pickle.dumps(System(out / "scripted_evil.marker"), protocol=2))
    z.writestr("scripted_evil/constants.pkl", pickle.dumps((), protocol=2))
    z.writestr("scripted_evil/code/__torch__/evil.py",
               f"import os\nos.system('touch {out / 'scripted_evil.marker'}')\n")
    z.writestr("scripted_evil/version", "3\n")
for name in ("scripted.pt", "scripted_evil.pt"):
    se = expect_error(out / name, "is a TorchScript archive (torch.jit.save)")
    check("save model.state_dict() with torch.save instead" in se, f"(c) {name}: {se!r}")
    try:
        safe_checkpoint.load(out / name)
        check(False, f"(c) load({name}) returned")
    except safe_checkpoint.CheckpointError as e:
        check("TorchScript" in str(e), f"(c) load({name}): {e}")

# (d), (e): malicious pickles refused by global; no marker
expect_error(out / "evil_zip_system.pt", "refusing global 'posix.system' in data.pkl of ")
# protocol 2 (torch.save's default) writes builtins under their Python 2 name, and the message names
# the global as the file spells it
expect_error(out / "evil_zip_exec.pt", "refusing global '__builtin__.exec' in data.pkl of ")
expect_error(out / "evil_zip_exec_p4.pt", "refusing global 'builtins.exec' in data.pkl of ")
expect_error(out / "evil_legacy_system.pt", "refusing global 'posix.system' in ")
expect_error(out / "evil_legacy_exec.pt", "refusing global '__builtin__.exec' in ")
expect_error(out / "evil_legacy_system_p4.pt", "refusing global 'posix.system' in ")
expect_error(out / "evil_plain.pkl", "refusing global 'posix.system' in ")
env = dict(os.environ, PYTHONPATH=str(out))
expect_error(out / "evil_import.pkl", "refusing global 'grcnn_evil_module.f' in ", cwd=out, env=env)
for name in list(evil) + ["evil_plain.pkl", "scripted_evil.pt"]:
    check(not (out / (name + ".marker")).exists() and not (out / "scripted_evil.marker").exists(),
          f"the payload of {name} ran")
check(not (out / "import.marker").exists(), "a global's module was imported")
check(not (out / "never.safetensors").exists(), "a refused file produced an output")


# ---------------------------------------------------------------------------------------------------
# (f) damaged and hostile files
class Storage:
    def __init__(self, key, numel, kind=torch.FloatStorage):
        self.key, self.numel, self.kind = key, numel, kind


class Tensor:
    def __init__(self, storage, offset, size, stride, rebuild=None, extra=()):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict()) + tuple(extra)
        self.rebuild = rebuild or torch._utils._rebuild_tensor_v2

    def __reduce__(self):
        return (self.rebuild, self.args)


class Forger(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.kind, obj.key, "cpu", obj.numel)
        return None


def forge(name, obj, storages, byteorder=None, compress=False):
    """A zip checkpoint written by hand: data.pkl from obj, storages {key: bytes}."""
    buf = io.BytesIO()
    Forger(buf, protocol=2).dump(obj)
    with zipfile.ZipFile(out / name, "w") as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        if byteorder:
            z.writestr("archive/byteorder", byteorder)
        for key, raw in storages.items():
            z.writestr(f"archive/data/{key}", raw, zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED)
        z.writestr("archive/version", "3\n")
    return out / name


four = torch.tensor([1.5, -2.0, 3.25, 4.0])
s4 = Storage("0", 4)
good = forge("forged_good.pt", {"w": Tensor(s4, 1, (2,), (2,))}, {"0": four.numpy().tobytes()})
check(same(safe_checkpoint.load(good)["w"], four[1::2]), "(f) the forger's good file reads")
check(same(torch.load(good, weights_only=True)["w"], four[1::2]), "(f) torch reads the forger's good file alike")

(out / "garbage.pt").write_bytes(bytes((i * 7919 + 13) % 251 for i in range(4096)))
(out / "garbage_pickle.pt").write_bytes(b"\x80\x02" + bytes((i * 31 + 7) % 256 for i in range(512)))
(out / "empty.pt").write_bytes(b"")
(out / "text.pt").write_text("this is not a checkpoint\n")
(out / "plain.pkl").write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
whole = (out / "grcnn_train.pt").read_bytes()
(out / "truncated.pt").write_bytes(whole[:len(whole) // 2])
whole_legacy = (out / "grcnn_legacy.pt").read_bytes()
(out / "truncated_legacy_tail.pt").write_bytes(whole_legacy[:-7])
(out / "truncated_legacy_head.pt").write_bytes(whole_legacy[:40])
tar_like = bytearray(1024)
tar_like[0:4] = b"sys_"
tar_like[257:263] = b"ustar\x00"
(out / "tar.pt").write_bytes(bytes(tar_like))
cases = [
    (out / "garbage.pt", "is not a PyTorch checkpoint"),
    (out / "garbage_pickle.pt", "is not a PyTorch checkpoint"),
    (out / "empty.pt", "is empty"),
    (out / "text.pt", "is not a PyTorch checkpoint"),
    (out / "plain.pkl", "is not a PyTorch checkpoint"),
    (out / "missing.pt", "cannot open"),
    (out / "truncated.pt", "damaged or truncated zip archive"),
    (out / "truncated_legacy_tail.pt", "remain in the file"),
    (out / "truncated_legacy_head.pt", "ends early"),
    (out / "tar.pt", "legacy tar checkpoint not supported"),
    (forge("claims_more.pt", {"w": Tensor(Storage("0", 1000), 0, (4,), (1,))}, {"0": four.numpy().tobytes()}),
     "claims 4000 bytes"),
    (forge("claims_huge.pt", {"w": Tensor(Storage("0", 10 ** 15), 0, (4,), (1,))}, {"0": four.numpy().tobytes()}),
     "claims 4000000000000000 bytes"),
    (forge("stride_out.pt", {"w": Tensor(s4, 0, (2, 2), (3, 1))}, {"0": four.numpy().tobytes()}),
     "point outside its storage"),
    (forge("offset_out.pt", {"w": Tensor(s4, 10, (1,), (1,))}, {"0": four.numpy().tobytes()}),
     "point outside its storage"),
    (forge("offset_out_empty.pt", {"w": Tensor(s4, 10 ** 12, (0,), (1,))}, {"0": four.numpy().tobytes()}),
     "point outside its storage"),
    (forge("expand_huge.pt", {"w": Tensor(s4, 0, (10 ** 6, 10 ** 6), (0, 0))}, {"0": four.numpy().tobytes()}),
     "no larger than their storage"),
    (forge("negative_stride.pt", {"w": Tensor(s4, 3, (4,), (-1,))}, {"0": four.numpy().tobytes()}),
     "negative offset, size or stride"),
    (forge("missing_storage.pt", {"w": Tensor(s4, 0, (4,), (1,))}, {}), "which "),
    (forge("compressed.pt", {"w": Tensor(s4, 0, (4,), (1,))}, {"0": four.numpy().tobytes()}, compress=True),
     "is compressed"),
    (forge("bad_byteorder.pt", {"w": Tensor(s4, 0, (4,), (1,))}, {"0": four.numpy().tobytes()}, byteorder="middle"),
     "unknown byteorder record"),
    (forge("quantized.pt", {"w": Tensor(Storage("0", 4, torch.QInt8Storage), 0, (4,), (1,))}, {"0": bytes(4)}),
     "refusing global 'torch.QInt8Storage'"),
]
with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
    for f in [pool.submit(expect_error, p, needle) for p, needle in cases]:
        f.result()
for p, needle in cases:  # the library says the same
    try:
        safe_checkpoint.load(p)
        check(False, f"(f) load({p.name}) returned")
    except safe_checkpoint.CheckpointError as e:
        check(needle in str(e) and str(p) in str(e), f"(f) load({p.name}): {e}")
check(not (out / "never.safetensors").exists(), "a refused file produced an output")

# ---------------------------------------------------------------------------------------------------
# (g) shared storages, dtypes, non-contiguous, offset, empty and 0-d tensors
base = torch.randn(6, 5)
base[0, 0], base[0, 1] = float("nan"), -0.0
g = collections.OrderedDict([
    ("shared.a", base), ("shared.b", base), ("row", base[2]), ("transposed", base.t()), ("strided", base[:, ::2]),
    ("offset", base.view(-1)[7:19]),
    ("bf16", torch.randn(3, 4).to(torch.bfloat16)), ("f16", torch.randn(7).half()),
    ("f64", torch.randn(2, 3, dtype=torch.float64)), ("i64", torch.tensor([-(2 ** 62), 5, 2 ** 40])),
    ("i64_t", torch.arange(12).reshape(3, 4).t()), ("bf16_t", torch.randn(4, 3).to(torch.bfloat16).t()),
    ("empty", torch.empty(0, 3)), ("scalar", torch.tensor(2.5)),
])
g["bf16"][0, 0] = float("-inf")
# plain data beside it; protocol 2 spells bytes and sets with globals (_codecs.encode, __builtin__.set)
meta = {"bytes": b"\x00\xffgrcnn", "empty": b"", "set": {1, 2}, "frozen": frozenset(["a"]), "none": None,
        "nested": [(1, 2.5, True), {"k": -1}], "big": 2 ** 70, "text": "\u00e9t\u00e9"}
for fmt, zipped in (("zip", True), ("legacy", False)):
    path = out / f"dtypes_{fmt}.pt"
    torch.save({"state_dict": g, "meta": meta}, path, _use_new_zipfile_serialization=zipped)
    rc, so, se = convert(path, out / f"dtypes_{fmt}.safetensors")
    check(rc == 0, f"(g) {fmt}: converter failed: {se}")
    check("meta (dict of 8 entries)" in so, f"(g) {fmt}: report {so!r}")
    check(safe_checkpoint.load(path)["meta"] == meta, f"(g) {fmt}: plain data")
    check_converted(out / f"dtypes_{fmt}.safetensors", g, f"(g) {fmt}")
    r = safe_checkpoint.load(path)["state_dict"]
    check(all(same(r[k], v) and r[k].stride() == v.stride() for k, v in g.items()), f"(g) {fmt}: load")
    check(r["shared.a"].data_ptr() == r["shared.b"].data_ptr() == r["transposed"].data_ptr()
          and r["row"].storage_offset() == 10, f"(g) {fmt}: the shared storage is not shared")
# a big-endian archive (torch >= 2.1's byteorder record) and _rebuild_tensor_v3 over an untyped storage
be = torch.tensor([1.0, -2.5, 3.0e10, float("nan")], dtype=torch.float64)
p = forge("big_endian.pt", {"w": Tensor(Storage("0", 4, torch.DoubleStorage), 0, (4,), (1,))},
          {"0": be.numpy().astype(">f8").tobytes()}, byteorder="big")
check(same(safe_checkpoint.load(p)["w"], be), "(g) big-endian byteorder")


def _rebuild_tensor_v3():  # stands in for torch 2.x's function while pickling (torch 1.13 has none)
    raise AssertionError("never called")


_rebuild_tensor_v3.__module__, _rebuild_tensor_v3.__qualname__ = "torch._utils", "_rebuild_tensor_v3"
torch._utils._rebuild_tensor_v3 = _rebuild_tensor_v3
try:
    v3 = torch.tensor([[1, 2], [3, 4]], dtype=torch.int32)
    p = forge("v3.pt", {"w": Tensor(Storage("0", 16, torch.UntypedStorage), 1, (2,), (2,), _rebuild_tensor_v3,
                                    (torch.int32,))}, {"0": v3.numpy().tobytes()})
finally:
    del torch._utils._rebuild_tensor_v3
check(same(safe_checkpoint.load(p)["w"], v3.view(-1)[1::2]), "(g) _rebuild_tensor_v3 over an untyped storage")

# ---------------------------------------------------------------------------------------------------
# (h) outputs: a directory, a symlink, a FIFO, /dev/null
src = out / "grcnn_train.pt"
(out / "adir").mkdir()
expect_error(src, "output '", out_path=out / "adir", name=str(out / "adir"))
check(sorted(os.listdir(out / "adir")) == [], "(h) something was written into the directory")
(out / "real").mkdir()
(out / "real" / "target.safetensors").write_bytes(b"old")
os.symlink(out / "real" / "target.safetensors", out / "link.safetensors")
os.symlink(out / "real" / "new.safetensors", out / "dangling.safetensors")
for link, target in (("link.safetensors", "target.safetensors"), ("dangling.safetensors", "new.safetensors")):
    rc, so, se = convert(src, out / link)
    check(rc == 0, f"(h) {link}: {se}")
    check((out / link).is_symlink() and os.readlink(out / link) == str(out / "real" / target),
          f"(h) {link} is no longer the same symlink")
    check(stat.S_ISREG(os.lstat(out / "real" / target).st_mode), f"(h) {target} is not a regular file")
    check_converted(out / "real" / target, plain, f"(h) through {link}")
check(no_tmp(out) and no_tmp(out / "real"), "(h) a temporary file was left")
expected_bytes = (out / "real" / "target.safetensors").read_bytes()
os.mkfifo(out / "fifo")
got = []
reader = threading.Thread(target=lambda: got.append(open(out / "fifo", "rb").read()), daemon=True)
reader.start()
rc, so, se = convert(src, out / "fifo")
if reader.is_alive() and not got:  # the converter never opened it: let the reader go
    os.close(os.open(out / "fifo", os.O_WRONLY | os.O_NONBLOCK))
reader.join(30)
check(rc == 0, f"(h) FIFO: {se}")
check(stat.S_ISFIFO(os.lstat(out / "fifo").st_mode), "(h) the FIFO was replaced")
check(got and got[0] == expected_bytes, "(h) the FIFO's reader did not get the safetensors bytes")
check(no_tmp(out), "(h) a temporary file was left beside the FIFO")
rc, so, se = convert(src, "/dev/null")
check(rc == 0, f"(h) /dev/null: {se}")
check(stat.S_ISCHR(os.lstat("/dev/null").st_mode), "(h) /dev/null is no longer a character device")
check(no_tmp("/dev"), "(h) a temporary file was left in /dev")

# ---------------------------------------------------------------------------------------------------
# (i) failed writes leave no temporary file and the earlier output intact
se = expect_error(src, "No such file or directory", out_path=out / "nowhere" / "x.safetensors",
                  name=str(out / "nowhere" / "x.safetensors"))
check("cannot write" in se, f"(i) missing folder: {se!r}")
(out / "cut").mkdir()
(out / "cut" / "x.safetensors").write_bytes(b"earlier output")
limit = 4096
check((out / "grcnn_train.safetensors").stat().st_size > limit, "(i) the output is not bigger than the limit")


def small_files():
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


rc, so, se = convert(src, out / "cut" / "x.safetensors", preexec_fn=small_files)
check(rc == 1 and "error: cannot write" in se and str(out / "cut" / "x.safetensors") in se
      and "File too large" in se and "Traceback" not in se, f"(i) a write cut short: rc {rc}, {se!r}")
check((out / "cut" / "x.safetensors").read_bytes() == b"earlier output", "(i) the earlier output was damaged")
check(sorted(os.listdir(out / "cut")) == ["x.safetensors"], f"(i) left behind: {os.listdir(out / 'cut')}")
if os.geteuid() != 0:
    (out / "ro").mkdir()
    os.chmod(out / "ro", 0o555)
    try:
        se = expect_error(src, "Permission denied", out_path=out / "ro" / "x.safetensors",
                          name=str(out / "ro" / "x.safetensors"))
        check(os.listdir(out / "ro") == [], "(i) a temporary file was left in the read-only folder")
    finally:
        os.chmod(out / "ro", 0o755)
else:
    print("note: running as root; the read-only folder case is skipped (root writes anyway)")
check(no_tmp(out), "a temporary file was left")
print(f"check_safe_checkpoint: {checks} checks passed")
