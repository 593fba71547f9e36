"""Minimal safetensors writer/reader for torch tensors (the format: an 8-byte little-endian header
length, a JSON header of {name: {dtype, shape, data_offsets}} plus optional "__metadata__", raw
little-endian data). Used by tools/torch_to_safetensors.py and the test fixture scripts, so none of them
needs the safetensors package.

save() writes atomically: into a temporary file in the output's folder, fsynced, then renamed over
the output, so a failed or interrupted write leaves any earlier file intact and no temporary file
behind. A symlink is resolved and its target replaced (the link stays a link); an output that exists
and is not a regular file (/dev/null, a FIFO) is written through directly; a directory is refused.

load() trusts its input (the fixture scripts read what they wrote); load_checked() reads untrusted files
as grcnn's reader (include/grcnn/io/safetensors.hpp) does and raises FormatError naming the problem:
short or truncated files, headers that are not a JSON object (duplicate keys, NaN), unknown dtypes,
bad shapes or offsets, and bytes of the data section outside every tensor or claimed twice.
write_atomic() is save()'s writer, for other formats (tools/safetensors_to_torch.py writes .pt with it)."""
import errno
import json
import os
import stat
import struct
import tempfile

import torch

CODES = {torch.float32: "F32", torch.float64: "F64", torch.bfloat16: "BF16", torch.float16: "F16",
         torch.int64: "I64"}
DTYPES = {v: k for k, v in CODES.items()}


def _raw(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: write its bits
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def save(path, tensors, metadata=None):
    """tensors: a list of (name, tensor) pairs, written in that order."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors:
        if t.dtype not in CODES:
            raise ValueError(f"tensor '{name}' has dtype {t.dtype}; safetensors_io writes {sorted(CODES.values())}")
        raw = _raw(t)
        header[name] = {"dtype": CODES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    write_atomic(path, [struct.pack("<Q", len(h)), h] + blobs)


def write_atomic(path, chunks):
    """Writes chunks (bytes-like) to path as save() describes; raises OSError (IsADirectoryError for a directory)."""
    path = os.fspath(path)
    target = os.path.realpath(path)  # through any symlinks, to the file they name
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if st is not None and not stat.S_ISREG(st.st_mode):  # a device or FIFO: nothing to replace
        with open(path, "wb") as f:
            for c in chunks:
                f.write(c)
        return
    folder, name = os.path.split(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            for c in chunks:
                f.write(c)
            f.flush()
            if st is not None:  # keep the replaced file's permissions
                mode = stat.S_IMODE(st.st_mode)
            else:  # what open() would have given a new file
                umask = os.umask(0)
                os.umask(umask)
                mode = 0o666 & ~umask
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder or ".", os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def load(path):
    """Returns ({name: tensor}, metadata)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        a, b = e["data_offsets"]
        dtype = DTYPES[e["dtype"]]
        buf = bytearray(data[a:b])
        if dtype == torch.bfloat16:
            t = torch.frombuffer(buf, dtype=torch.int16).view(torch.bfloat16) if buf else torch.empty(0, dtype=dtype)
        else:
            t = torch.frombuffer(buf, dtype=dtype) if buf else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(e["shape"])
    return out, meta


_write = write_atomic  # the earlier name

MAX_HEADER_BYTES = 100 << 20  # the reference implementation's limit, as grcnn's reader
ITEM_SIZES = {"F32": 4, "F64": 8, "BF16": 2, "F16": 2, "I64": 8}


class FormatError(ValueError):
    """A file that is not a well-formed safetensors file of the dtypes grcnn reads."""


def _header_object(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise FormatError(f"the header gives the key '{k}' twice in one object")
        d[k] = v
    return d


def _not_json(constant):
    raise FormatError(f"the header holds {constant}, which is not JSON")


def _count(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def load_checked(path):
    """Returns ({name: tensor} in the header's order, metadata); raises FormatError (or OSError)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(0)
        if size < 8:
            raise FormatError(f"{size} bytes, shorter than the 8-byte header length (empty or truncated)")
        (n,) = struct.unpack("<Q", f.read(8))
        if n > MAX_HEADER_BYTES:
            raise FormatError(f"declares a header of {n} bytes (limit {MAX_HEADER_BYTES}): not a safetensors file")
        if n > size - 8:
            raise FormatError(f"declares a header of {n} bytes but the file has only {size - 8} after the length "
                              "(truncated, or not a safetensors file)")
        raw = f.read(n)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError("the header is not UTF-8 text: not a safetensors file") from None
        try:
            header = json.loads(text, object_pairs_hook=_header_object, parse_constant=_not_json)
        except json.JSONDecodeError as e:
            raise FormatError(f"the header is not JSON ({e.msg} at character {e.pos}): not a safetensors file") from None
        if not isinstance(header, dict):
            raise FormatError("the header is not a JSON object")
        meta = header.pop("__metadata__", {})
        if not isinstance(meta, dict):
            raise FormatError("__metadata__ is not an object")
        for k, v in meta.items():
            if not isinstance(v, str):
                raise FormatError(f"metadata '{k}' is {json.dumps(v)[:40]}, not a string")
        data_size = size - 8 - n
        entries = []
        for name, e in header.items():
            ctx = f"tensor '{name}': "
            if not isinstance(e, dict) or not {"dtype", "shape", "data_offsets"} <= e.keys():
                raise FormatError(ctx + "needs dtype, shape and data_offsets")
            code = e["dtype"]
            if not isinstance(code, str):
                raise FormatError(ctx + "dtype is not a string")
            if code not in ITEM_SIZES:
                raise FormatError(ctx + f"dtype {code} is not one grcnn reads ({', '.join(ITEM_SIZES)})")
            shape = e["shape"]
            if not isinstance(shape, list) or len(shape) > 8 or not all(_count(d) for d in shape):
                raise FormatError(ctx + "shape must be a list of at most 8 non-negative integers")
            off = e["data_offsets"]
            if not isinstance(off, list) or len(off) != 2 or not all(_count(o) for o in off):
                raise FormatError(ctx + "data_offsets must be two non-negative integers")
            a, b = off
            if not a <= b <= data_size:
                raise FormatError(ctx + f"data_offsets [{a}, {b}] outside the {data_size}-byte data section (truncated?)")
            need = ITEM_SIZES[code]
            for d in shape:
                need *= d
            if b - a != need:
                raise FormatError(ctx + f"shape {shape} of {code} needs {need} bytes, data_offsets give {b - a}")
            entries.append((a, b, name, code, shape))
        covered = 0
        for a, b, name, _, _ in sorted(entries):
            if a == b:
                continue
            if a < covered:
                raise FormatError(f"tensor '{name}' overlaps the tensor before it (data_offsets [{a}, {b}])")
            if a > covered:
                raise FormatError(f"bytes [{covered}, {a}) of the data section belong to no tensor (before '{name}')")
            covered = b
        if covered != data_size:
            raise FormatError(f"bytes [{covered}, {data_size}) at the end of the data section belong to no tensor")
        data = bytearray(f.read())
        if len(data) != data_size:
            raise FormatError("the file changed while it was read")
    out = {}
    for a, b, name, code, shape in entries:
        dtype = DTYPES[code]
        if a == b:
            t = torch.empty(shape, dtype=dtype)
        elif dtype == torch.bfloat16:
            t = torch.frombuffer(data, dtype=torch.int16, count=(b - a) // 2, offset=a).view(torch.bfloat16)
        else:
            t = torch.frombuffer(data, dtype=dtype, count=(b - a) // ITEM_SIZES[code], offset=a)
        out[name] = t.reshape(shape)
    return {name: out[name] for name in header}, meta
