"""Minimal safetensors writer/reader for torch tensors (the format: an 8-byte little-endian header
length, a JSON header of {name: {dtype, shape, data_offsets}} plus optional "__metadata__", raw
little-endian data). Used by tools/torch_to_safetensors.py and the test fixture scripts, so none of them
needs the safetensors package.

save() writes atomically: into a temporary file in the output's folder, fsynced, then renamed over
the output, so a failed or interrupted write leaves any earlier file intact and no temporary file
behind. A symlink is resolved and its target replaced (the link stays a link); an output that exists
and is not a regular file (/dev/null, a FIFO) is written through directly; a directory is refused."""
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
    _write(path, [struct.pack("<Q", len(h)), h] + blobs)


def _write(path, chunks):
    """Writes chunks to path as save() describes; raises OSError (IsADirectoryError for a directory)."""
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
