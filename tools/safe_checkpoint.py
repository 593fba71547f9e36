"""Reads PyTorch checkpoints (torch.save files) without torch.load and without torch.jit: no code from
the file runs.

  import safe_checkpoint
  obj = safe_checkpoint.load("ckpt.pt")   # raises safe_checkpoint.CheckpointError with a message

torch.load(weights_only=True) is not enough on the torch this project uses (1.13): it hands a
TorchScript archive to torch.jit.load, which runs the archive's code, and it rejects the Python floats
of an ordinary training checkpoint's optimizer state. This reader instead:

- understands both formats torch.save writes: the zip archive (torch >= 1.6: <name>/data.pkl, the
  storages as <name>/data/<key>, <name>/version, an optional <name>/byteorder record) and the legacy
  stream (pickled magic number 0x1950a86a20f9469cfc6c, protocol version, sys_info, the main pickle,
  the sorted storage keys, then each storage as an 8-byte little-endian element count and its bytes).
  The legacy tar format of the first torch releases is refused, as is anything else that is not one of
  these (a plain pickle, a text file, an empty file).
- refuses TorchScript archives (torch.jit.save: constants.pkl, code/, bytecode.pkl, extra/) by name.
- unpickles with a restricted unpickler (pure-Python pickle, so every opcode goes through this
  module): the only globals it admits are collections.OrderedDict, torch._utils' tensor rebuild
  functions (answered by our own functions here, never torch's), the storage types (answered by inert
  markers, never the torch classes), torch dtypes, and protocol 2's spellings of bytes and sets
  (_codecs.encode, bytes, set, frozenset: answered by stand-ins that build only those, as protocol 4
  does by opcode). Nothing is imported. Any other global is refused by name, as are the opcodes
  that build arbitrary objects (INST, OBJ, NEWOBJ, NEWOBJ_EX, extension codes, out-of-band buffers);
  REDUCE may call only OrderedDict, our rebuild functions and the stand-ins, BUILD may set only an
  OrderedDict's attributes (a state_dict's _metadata), items go only into dicts, lists and sets.
- builds each tensor itself: the storage bytes (read from the zip member or the legacy stream, sizes
  checked against what the file holds before anything is allocated; the byteorder record honoured;
  bfloat16 through an int16 view) become one flat tensor per storage, and every tensor is a
  torch.as_strided view of it after its offset, sizes and strides are checked to lie within the
  storage. Tensors that shared a storage in the file share it here (weight sharing survives).

Plain data (dict, list, tuple, int, float, str, bool, None; bytes and sets as above) comes from
pickle's own opcodes, so optimizer state (floats, bools, momentum buffers), epochs, accuracies and
names load. Tensors come back on the CPU as plain tensors (a saved nn.Parameter loads as its data),
whatever device they were saved from; a storage saved outside any tensor comes back as a StorageRef.
"""
import collections
import io
import os
import pickle
import stat
import struct
import sys
import zipfile

import numpy as np
import torch

MAGIC_NUMBER = 0x1950a86a20f9469cfc6c
PROTOCOL_VERSION = 1001
MAX_DIMS = 64

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}
# how each dtype's bytes read with numpy (bfloat16 through int16, bool through uint8)
_NUMPY = {torch.float32: "f4", torch.float64: "f8", torch.float16: "f2", torch.bfloat16: "i2",
          torch.int64: "i8", torch.int32: "i4", torch.int16: "i2", torch.int8: "i1",
          torch.uint8: "u1", torch.bool: "u1"}
_DTYPE_NAMES = {"float32": torch.float32, "float": torch.float32, "float64": torch.float64,
                "double": torch.float64, "float16": torch.float16, "half": torch.float16,
                "bfloat16": torch.bfloat16, "int64": torch.int64, "long": torch.int64,
                "int32": torch.int32, "int": torch.int32, "int16": torch.int16, "short": torch.int16,
                "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool}
_ONLY = "only tensors, storages, OrderedDict/dict/list/tuple, numbers, strings and None are read"
_TORCHSCRIPT_FILES = {"constants.pkl", "bytecode.pkl"}
_TORCHSCRIPT_DIRS = {"code", "extra", "constants"}


class CheckpointError(Exception):
    """The file is not a checkpoint this reader accepts; the message says why and names the file."""


_ITEMSIZE = {}


def _itemsize(dtype):
    if dtype not in _ITEMSIZE:
        _ITEMSIZE[dtype] = torch.empty((), dtype=dtype).element_size()
    return _ITEMSIZE[dtype]


class _StorageType:
    """What a storage-type global (torch.FloatStorage, ...) unpickles to: a name and a dtype, nothing
    callable."""
    __slots__ = ("name", "dtype")

    def __init__(self, name, dtype):
        self.name, self.dtype = name, dtype

    def __repr__(self):
        return f"<storage type {self.name}>"


class _Storage:
    """One storage of the file: its dtype, element count and (once read) raw bytes."""
    __slots__ = ("key", "dtype", "numel", "raw", "byteorder", "_flat")

    def __init__(self, key, dtype, numel, byteorder="little"):
        self.key, self.dtype, self.numel, self.byteorder = key, dtype, numel, byteorder
        self.raw, self._flat = None, {}

    @property
    def nbytes(self):
        return self.numel * _itemsize(self.dtype)

    def flat(self, dtype):
        """The whole storage as a 1-D tensor of dtype (one per dtype, so views share it)."""
        if dtype not in self._flat:
            isz = _itemsize(dtype)
            count = len(self.raw) // isz
            if count == 0:
                t = torch.empty(0, dtype=dtype)
            else:
                npdt = np.dtype(_NUMPY[dtype]).newbyteorder("<" if self.byteorder == "little" else ">")
                arr = np.frombuffer(self.raw, dtype=npdt, count=count)
                if not npdt.isnative:
                    arr = arr.astype(npdt.newbyteorder("="))
                t = torch.from_numpy(arr)
                if dtype == torch.bfloat16:
                    t = t.view(torch.bfloat16)
                elif dtype == torch.bool:
                    t = t != 0
            self._flat[dtype] = t
        return self._flat[dtype]


class StorageRef:
    """What a persistent id unpickles to: a byte range of a storage (the whole storage, or a legacy
    storage view). Tensors are built over it; one saved on its own comes back as this."""
    __slots__ = ("storage", "byte_offset", "nbytes")

    def __init__(self, storage, byte_offset, nbytes):
        self.storage, self.byte_offset, self.nbytes = storage, byte_offset, nbytes

    def __repr__(self):
        return f"<StorageRef of storage '{self.storage.key}': {self.nbytes} bytes of {self.storage.dtype}>"


def _is_int(x):
    return type(x) is int


def _text(x):
    return x.decode("ascii") if isinstance(x, bytes) else x


def _refuse_opcode(name):
    def refuse(self):
        raise CheckpointError(f"refusing pickle opcode {name} in {self.where}: it builds arbitrary objects; {_ONLY}")
    return refuse


class _Dispatch(dict):
    def __missing__(self, key):
        raise pickle.UnpicklingError(f"invalid pickle opcode {bytes([key])!r}")


def _codecs_encode(text, encoding="utf-8"):
    """Protocol 2 writes a non-empty bytes object as _codecs.encode(its latin-1 text, 'latin1')."""
    if type(text) is not str or encoding not in ("latin1", "latin-1"):
        raise CheckpointError("_codecs.encode is read only as protocol 2's spelling of bytes")
    return text.encode("latin1")


def _empty_bytes(*args):
    """Protocol 2 writes b'' as bytes()."""
    if args:
        raise CheckpointError("bytes() is read only as protocol 2's spelling of b''")
    return b""


def _set(items=()):
    """Protocol 2 writes a set as set([items]) (protocol 4 has opcodes for it)."""
    if type(items) is not list:
        raise CheckpointError("set() is read only over a list, as protocol 2 writes sets")
    return set(items)


def _frozenset(items=()):
    if type(items) is not list:
        raise CheckpointError("frozenset() is read only over a list, as protocol 2 writes frozensets")
    return frozenset(items)


# protocol 2's spellings of plain data that protocol 4 gives by opcode (stand-ins, not the builtins)
_PLAIN = {("_codecs", "encode"): _codecs_encode, ("builtins", "bytes"): _empty_bytes,
          ("__builtin__", "bytes"): _empty_bytes, ("builtins", "set"): _set, ("__builtin__", "set"): _set,
          ("builtins", "frozenset"): _frozenset, ("__builtin__", "frozenset"): _frozenset}


class _Unpickler(pickle._Unpickler):  # the pure-Python unpickler: every opcode goes through here
    dispatch = _Dispatch(pickle._Unpickler.dispatch)
    for _op, _name in ((pickle.INST, "INST"), (pickle.OBJ, "OBJ"), (pickle.NEWOBJ, "NEWOBJ"),
                       (pickle.NEWOBJ_EX, "NEWOBJ_EX"), (pickle.EXT1, "EXT1"), (pickle.EXT2, "EXT2"),
                       (pickle.EXT4, "EXT4"), (pickle.BYTEARRAY8, "BYTEARRAY8"),
                       (pickle.NEXT_BUFFER, "NEXT_BUFFER"), (pickle.READONLY_BUFFER, "READONLY_BUFFER")):
        dispatch[_op[0]] = _refuse_opcode(_name)
    del _op, _name

    def __init__(self, file, where, source):
        """where: how messages name this pickle; source: the _Source that persistent ids resolve
        through (None: a pickle that may hold no storages)."""
        super().__init__(file, encoding="utf-8")
        self.where, self.source = where, source
        # bound once, so that REDUCE can tell them by identity
        self._rebuilds = {"_rebuild_tensor": self._rebuild_tensor, "_rebuild_tensor_v2": self._rebuild_tensor_v2,
                          "_rebuild_tensor_v3": self._rebuild_tensor_v3, "_rebuild_parameter": self._rebuild_parameter,
                          "_rebuild_parameter_with_state": self._rebuild_parameter_with_state}
        self._callables = (collections.OrderedDict,) + tuple(self._rebuilds.values()) + tuple(_PLAIN.values())

    # --- globals -------------------------------------------------------------------------------
    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if (module, name) in _PLAIN:
            return _PLAIN[(module, name)]
        if module == "torch._utils" and name in self._rebuilds:
            return self._rebuilds[name]
        if module in ("torch", "torch.cuda") and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        if module in ("torch", "torch.storage") and name in ("UntypedStorage", "_UntypedStorage"):
            return _StorageType(name, torch.uint8)
        if module in ("torch", "torch.storage") and name in ("TypedStorage", "_TypedStorage"):
            return _StorageType(name, None)
        if module == "torch" and name in _DTYPE_NAMES:
            return _DTYPE_NAMES[name]
        raise CheckpointError(f"refusing global '{module}.{name}' in {self.where}: {_ONLY}")

    # --- opcodes that act on objects: only on the plain containers ------------------------------
    def load_reduce(self):
        stack = self.stack
        args = stack.pop()
        func = stack[-1]
        if not any(func is c for c in self._callables):
            raise CheckpointError(f"refusing to call a {type(func).__name__} in {self.where}: {_ONLY}")
        if type(args) is not tuple:
            raise pickle.UnpicklingError("REDUCE arguments are not a tuple")
        stack[-1] = func(*args)
    dispatch[pickle.REDUCE[0]] = load_reduce

    def load_build(self):
        stack = self.stack
        state = stack.pop()
        inst = stack[-1]
        if type(state) is tuple and len(state) == 2 and state[1] is None:
            state = state[0]
        if type(inst) is not collections.OrderedDict or type(state) is not dict \
                or not all(type(k) is str for k in state):
            raise CheckpointError(f"refusing to set the state of a {type(inst).__name__} in {self.where}: {_ONLY}")
        inst.__dict__.update(state)  # a state_dict's _metadata
    dispatch[pickle.BUILD[0]] = load_build

    def _target(self, kinds, what):
        obj = self.stack[-1]
        if type(obj) not in kinds:
            raise CheckpointError(f"refusing to {what} a {type(obj).__name__} in {self.where}: {_ONLY}")
        return obj

    def load_setitem(self):
        value = self.stack.pop()
        key = self.stack.pop()
        self._target((dict, collections.OrderedDict), "set items of")[key] = value
    dispatch[pickle.SETITEM[0]] = load_setitem

    def load_setitems(self):
        items = self.pop_mark()
        d = self._target((dict, collections.OrderedDict), "set items of")
        for i in range(0, len(items), 2):
            d[items[i]] = items[i + 1]
    dispatch[pickle.SETITEMS[0]] = load_setitems

    def load_append(self):
        value = self.stack.pop()
        self._target((list,), "append to").append(value)
    dispatch[pickle.APPEND[0]] = load_append

    def load_appends(self):
        items = self.pop_mark()
        self._target((list,), "append to").extend(items)
    dispatch[pickle.APPENDS[0]] = load_appends

    def load_additems(self):
        items = self.pop_mark()
        self._target((set,), "add items to").update(items)
    dispatch[pickle.ADDITEMS[0]] = load_additems

    # --- storages and tensors --------------------------------------------------------------------
    def persistent_load(self, pid):
        if self.source is None:
            raise CheckpointError(f"{self.where} refers to a storage where none may be")
        if type(pid) is not tuple or not pid:
            raise CheckpointError(f"{self.where} holds a persistent id that is not a storage: {type(pid).__name__}")
        kind = _text(pid[0])
        if kind == "module":
            raise CheckpointError(f"{self.where} holds a pickled module (its class and source); {_ONLY}")
        if kind != "storage":
            raise CheckpointError(f"{self.where} holds a persistent id of unknown kind {kind!r}")
        return self.source.persistent(pid[1:], self.where)

    def _tensor(self, ref, offset, size, stride, dtype=None):
        if not isinstance(ref, StorageRef):
            raise CheckpointError(f"{self.where}: a tensor's storage is a {type(ref).__name__}, not a storage")
        dtype = ref.storage.dtype if dtype is None else dtype
        if dtype not in _NUMPY:
            raise CheckpointError(f"{self.where}: a tensor has dtype {dtype}, which this reader does not read")
        if isinstance(size, list):
            size = tuple(size)
        if isinstance(stride, list):
            stride = tuple(stride)
        if not (_is_int(offset) and type(size) is tuple and type(stride) is tuple and len(size) == len(stride)
                and len(size) <= MAX_DIMS and all(_is_int(v) for v in size + stride)):
            raise CheckpointError(f"{self.where}: a tensor's offset, sizes or strides are malformed")
        if offset < 0 or any(v < 0 for v in size + stride):
            raise CheckpointError(f"{self.where}: a tensor has a negative offset, size or stride")
        isz = _itemsize(dtype)
        if ref.byte_offset % isz:
            raise CheckpointError(f"{self.where}: a {dtype} tensor starts inside an element of its storage")
        available = ref.nbytes // isz  # elements of dtype in the storage (view)
        numel = 1
        for v in size:
            numel *= v
        if numel == 0:
            last = offset - 1
        else:
            last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= available or offset > available:
            raise CheckpointError(
                f"{self.where}: a tensor of sizes {list(size)}, strides {list(stride)} at offset {offset} reaches "
                f"element {last} of a storage holding {available}; its offset or strides point outside its storage")
        if numel > available:
            raise CheckpointError(
                f"{self.where}: a tensor of sizes {list(size)} has {numel} elements but its storage holds "
                f"{available}; this reader reads only tensors no larger than their storage")
        if ref.storage.raw is None:  # first pass over a legacy file: the bytes come later
            return None
        flat = ref.storage.flat(dtype)
        return torch.as_strided(flat, size, stride, ref.byte_offset // isz + offset)

    def _rebuild_tensor(self, storage, storage_offset, size, stride):
        return self._tensor(storage, storage_offset, size, stride)

    def _rebuild_tensor_v2(self, storage, storage_offset, size, stride, requires_grad, backward_hooks,
                           metadata=None):
        return self._tensor(storage, storage_offset, size, stride)

    def _rebuild_tensor_v3(self, storage, storage_offset, size, stride, requires_grad, backward_hooks,
                           dtype, metadata=None):
        if not isinstance(dtype, torch.dtype):
            raise CheckpointError(f"{self.where}: a tensor's dtype is a {type(dtype).__name__}")
        return self._tensor(storage, storage_offset, size, stride, dtype)

    def _rebuild_parameter(self, data, requires_grad, backward_hooks):
        if data is not None and not torch.is_tensor(data):
            raise CheckpointError(f"{self.where}: a parameter's data is a {type(data).__name__}, not a tensor")
        return data

    def _rebuild_parameter_with_state(self, data, requires_grad, backward_hooks, state):
        return self._rebuild_parameter(data, requires_grad, backward_hooks)


class _Source:
    """Resolves ('storage', type, key, location, numel[, view]) ids to StorageRefs, once per key."""

    def __init__(self, byteorder="little"):
        self.byteorder = byteorder
        self.storages = {}

    def persistent(self, data, where):
        legacy = isinstance(self, _LegacySource)
        if len(data) != (5 if legacy else 4):
            raise CheckpointError(f"{where} holds a storage id with {len(data) + 1} fields, not {6 if legacy else 5}")
        storage_type, key, location, numel = data[:4]
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"{where} holds a storage whose type is a {type(storage_type).__name__}")
        if storage_type.dtype is None:
            raise CheckpointError(f"{where} holds a storage of type {storage_type.name}, which carries no dtype")
        key, location = _text(key), _text(location)
        if type(key) is not str or type(location) is not str or not _is_int(numel) or numel < 0:
            raise CheckpointError(f"{where} holds a malformed storage id")
        s = self.storages.get(key)
        if s is None:
            s = self.storages[key] = _Storage(key, storage_type.dtype, numel, self.byteorder)
            self.read(s, where)
        elif s.dtype != storage_type.dtype or s.numel != numel:
            raise CheckpointError(f"{where} refers to storage '{key}' as {s.numel} x {s.dtype} and as "
                                  f"{numel} x {storage_type.dtype}")
        ref = StorageRef(s, 0, s.nbytes)
        view = data[4] if legacy else None
        if view is not None:
            if type(view) is not tuple or len(view) != 3 or not _is_int(view[1]) or not _is_int(view[2]):
                raise CheckpointError(f"{where} holds a malformed storage view")
            isz = _itemsize(s.dtype)
            off, n = view[1] * isz, view[2] * isz
            if off < 0 or n < 0 or off + n > s.nbytes:
                raise CheckpointError(f"{where} holds a view of storage '{key}' that reaches past its end")
            ref = StorageRef(s, off, n)
        return ref

    def read(self, storage, where):
        raise NotImplementedError


class _ZipSource(_Source):
    def __init__(self, zf, prefix, path, archive_size, byteorder):
        super().__init__(byteorder)
        self.zf, self.prefix, self.path, self.archive_size = zf, prefix, path, archive_size

    def read(self, s, where):
        name = f"{self.prefix}/data/{s.key}"
        try:
            info = self.zf.getinfo(name)
        except KeyError:
            raise CheckpointError(f"{where} refers to storage '{s.key}', which '{self.path}' lacks ({name})") from None
        need = s.nbytes
        if need > info.file_size:
            raise CheckpointError(
                f"storage '{s.key}' of '{self.path}' claims {need} bytes ({s.numel} x {s.dtype}) but {name} "
                f"holds only {info.file_size}")
        s.raw = _read_member(self.zf, info, self.path, self.archive_size)
        del s.raw[need:]


class _LegacySource(_Source):
    def read(self, s, where):
        pass  # the first pass records the storages; _load_legacy reads their bytes after the main pickle


def _read_member(zf, info, path, archive_size):
    """A zip member's bytes, after checking that the archive really holds them (stored, not
    compressed: torch.save never compresses, and a compressed member could claim any size)."""
    if info.compress_type != zipfile.ZIP_STORED:
        raise CheckpointError(f"member {info.filename} of '{path}' is compressed; torch.save stores members "
                              f"uncompressed")
    if info.file_size != info.compress_size or info.file_size > archive_size:
        raise CheckpointError(f"member {info.filename} of '{path}' claims {info.file_size} bytes, more than the "
                              f"archive holds")
    buf = bytearray(info.file_size)
    view = memoryview(buf)
    pos = 0
    try:
        with zf.open(info) as m:
            while pos < len(buf):
                n = m.readinto(view[pos:])
                if not n:
                    break
                pos += n
            m.read(1)  # reach the end, where zipfile checks the CRC
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, RuntimeError, NotImplementedError) as e:
        raise CheckpointError(f"member {info.filename} of '{path}' is damaged or unreadable: {e}") from None
    view.release()  # so the caller may shorten buf
    if pos != len(buf):
        raise CheckpointError(f"member {info.filename} of '{path}' is truncated")
    return buf


def _unpickle(file, where, source):
    try:
        return _Unpickler(file, where, source).load()
    except CheckpointError:
        raise
    except EOFError:
        raise CheckpointError(f"{where} ends early: the file is truncated") from None
    except Exception as e:  # noqa: BLE001 - any failure of a hostile or damaged pickle
        raise CheckpointError(f"{where} is damaged: cannot unpickle it ({type(e).__name__}: {e})") from None


def _load_zip(f, path, size):
    try:
        zf = zipfile.ZipFile(f)
        names = zf.namelist()
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"'{path}' is a damaged or truncated zip archive: {e}") from None
    for n in names:
        parts = n.split("/")
        if len(parts) >= 2 and (parts[1] in _TORCHSCRIPT_FILES or (parts[1] in _TORCHSCRIPT_DIRS and len(parts) > 2)):
            raise CheckpointError(
                f"'{path}' is a TorchScript archive (torch.jit.save); it holds code, which grcnn never runs; "
                f"save model.state_dict() with torch.save instead")
    pkls = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
    if not pkls:
        raise CheckpointError(f"'{path}' is a zip archive but not a torch.save checkpoint (it has no data.pkl)")
    if len(pkls) > 1:
        raise CheckpointError(f"'{path}' holds several data.pkl ({', '.join(pkls)}); not a torch.save checkpoint")
    prefix = pkls[0][:-len("/data.pkl")]
    byteorder = "little"
    if f"{prefix}/byteorder" in names:
        rec = bytes(_read_member(zf, zf.getinfo(f"{prefix}/byteorder"), path, size))
        if rec not in (b"little", b"big"):
            raise CheckpointError(f"'{path}' has an unknown byteorder record {rec[:20]!r}")
        byteorder = rec.decode()
    data = _read_member(zf, zf.getinfo(pkls[0]), path, size)
    source = _ZipSource(zf, prefix, path, size, byteorder)
    return _unpickle(io.BytesIO(bytes(data)), f"data.pkl of '{path}'", source)


class _Bounded:
    """A file read no further than its size, so no length field in it can ask for more."""

    def __init__(self, f, end):
        self.f, self.end = f, end

    def remaining(self):
        return max(0, self.end - self.f.tell())

    def read(self, n=-1):
        r = self.remaining()
        return self.f.read(r if n is None or n < 0 else min(n, r))

    def readline(self):
        return self.f.readline(self.remaining())

    def readinto(self, buf):
        view = memoryview(buf)[:self.remaining()]
        pos = 0
        while pos < len(view):
            n = self.f.readinto(view[pos:])
            if not n:
                break
            pos += n
        return pos

    def tell(self):
        return self.f.tell()

    def seek(self, pos):
        return self.f.seek(pos)


def _load_legacy(f, path, size):
    r = _Bounded(f, size)
    r.seek(0)
    where = f"'{path}'"
    try:
        magic = _Unpickler(r, where, None).load()
    except CheckpointError:
        raise
    except Exception:  # noqa: BLE001
        magic = None
    if not _is_int(magic) or magic != MAGIC_NUMBER:
        raise CheckpointError(f"'{path}' is not a PyTorch checkpoint (it does not start with torch.save's "
                              f"pickled magic number)")
    version = _unpickle(r, where, None)
    if not _is_int(version) or version != PROTOCOL_VERSION:
        raise CheckpointError(f"'{path}' has legacy protocol version {version!r}, not {PROTOCOL_VERSION}")
    sys_info = _unpickle(r, where, None)
    if type(sys_info) is not dict:
        raise CheckpointError(f"'{path}' is damaged: its sys_info is a {type(sys_info).__name__}")
    start = r.tell()
    source = _LegacySource()
    _unpickle(r, where, source)  # first pass: records the storages, builds no tensor
    keys = _unpickle(r, where, None)
    if type(keys) is not list or not all(type(k) is str for k in keys) or len(set(keys)) != len(keys):
        raise CheckpointError(f"'{path}' is damaged: its storage key list is malformed")
    if set(keys) != set(source.storages):
        raise CheckpointError(f"'{path}' is damaged: its storage key list does not match the storages it uses")
    for key in keys:
        s = source.storages[key]
        head = r.read(8)
        if len(head) != 8:
            raise CheckpointError(f"'{path}' ends early: storage '{key}' is missing")
        (count,) = struct.unpack("<q", head)
        if count != s.numel:
            raise CheckpointError(f"'{path}' is damaged: storage '{key}' holds {count} elements where its "
                                  f"pickle says {s.numel}")
        if s.nbytes > r.remaining():
            raise CheckpointError(f"storage '{key}' of '{path}' claims {s.nbytes} bytes ({s.numel} x {s.dtype}) "
                                  f"but only {r.remaining()} remain in the file")
        raw = bytearray(s.nbytes)
        if s.nbytes and r.readinto(raw) != s.nbytes:
            raise CheckpointError(f"'{path}' ends early in storage '{key}'")
        s.raw = raw
    r.seek(start)
    return _unpickle(r, where, source)  # second pass: the tensors, over the storages now read


def load(path):
    """The object a torch.save file holds, read without running any code from it; tensors on the CPU.
    Raises CheckpointError (naming the file) for anything else."""
    path = os.fspath(path)
    try:
        f = open(path, "rb")
    except OSError as e:
        raise CheckpointError(f"cannot open '{path}': {e.strerror or e}") from None
    with f:
        try:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise CheckpointError(f"'{path}' is not a regular file")
            size = st.st_size
            if size == 0:
                raise CheckpointError(f"'{path}' is empty, not a PyTorch checkpoint")
            head = f.read(512)
            f.seek(0)
            if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
                return _load_zip(f, path, size)
            if len(head) >= 262 and head[257:262] == b"ustar":
                raise CheckpointError(f"legacy tar checkpoint not supported: '{path}' is a tar archive (the format "
                                      f"of the first torch releases); load and re-save it with a newer torch")
            if head[:1] == b"\x80":
                return _load_legacy(f, path, size)
            raise CheckpointError(f"'{path}' is not a PyTorch checkpoint (neither torch.save's zip archive nor "
                                  f"its legacy format)")
        except CheckpointError:
            raise
        except OSError as e:
            raise CheckpointError(f"cannot read '{path}': {e.strerror or e}") from None
        except Exception as e:  # noqa: BLE001 - whatever else a damaged file provokes, named with the file
            raise CheckpointError(f"cannot read '{path}': {type(e).__name__}: {e}") from None


if __name__ == "__main__":  # python3 safe_checkpoint.py FILE: what a file holds, for a look
    try:
        obj = load(sys.argv[1])
    except CheckpointError as e:
        sys.exit(f"error: {e}")
    if isinstance(obj, dict):
        for k, v in obj.items():
            print(k, tuple(v.shape) if torch.is_tensor(v) else type(v).__name__)
    else:
        print(type(obj).__name__)
