#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/ (checked in; rerun after
changing it: `/usr/bin/python3 tests/fuzz/make_seeds.py`). Seeds are small valid files in the real formats
plus near-valid variants (truncated, a field out of range, a size that does not match), each well under
the 200 KB a corpus may take. Inputs that fuzzing found are left alone: crash-* (crashed a target),
regress-* (found a problem outside grcnn that the target now tolerates) and found-* (new coverage, kept
from a fuzzing run by tests/fuzz/merge_corpus.sh).

Needs numpy, PIL and libnetcdf (ctypes) -- Debian's python3-numpy, python3-pil, libnetcdf-dev.
"""
import ctypes
import ctypes.util
import gzip
import io
import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CORPUS = HERE / "corpus"
RNG = np.random.default_rng(21)


def out(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def clear(target):
    d = CORPUS / target
    if d.exists():
        for f in d.iterdir():
            if f.is_file() and not f.name.startswith(("crash-", "regress-", "found-")):
                f.unlink()


# ---------------------------------------------------------------- safetensors
def safetensors_bytes(tensors, metadata=None, align=True, header_override=None):
    """tensors: list of (name, dtype code, shape, raw bytes)."""
    header, data, off = {}, b"", 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, code, shape, raw in tensors:
        header[name] = {"dtype": code, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        data += raw
        off += len(raw)
    h = header_override if header_override is not None else json.dumps(header, separators=(",", ":"))
    h = h.encode()
    if align:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def bf16(a):
    return (np.asarray(a, np.float32).view(np.uint32) >> 16).astype(np.uint16).tobytes()


def seeds_safetensors():
    t = "safetensors"
    clear(t)
    f32 = RNG.standard_normal((2, 3)).astype(np.float32)
    valid = [
        ("conv.weight", "F32", (2, 3), f32.tobytes()),
        ("bn.running_mean", "F64", (3,), np.arange(3, dtype=np.float64).tobytes()),
        ("emb", "BF16", (2, 2), bf16([[1, -2], [0.5, 3e38]])),
        ("half", "F16", (4,), np.array([1, -0.0, 65504, np.inf], np.float16).tobytes()),
        ("bn.num_batches_tracked", "I64", (), np.array(7, np.int64).tobytes()),
    ]
    out(t, "valid-all-dtypes.safetensors", safetensors_bytes(valid, {"format": "pt", "epoch": "3"}))
    out(t, "valid-one-f32.safetensors", safetensors_bytes(valid[:1]))
    out(t, "valid-empty-tensor.safetensors",
        safetensors_bytes([("empty", "F32", (0, 5), b""), ("x", "F32", (1,), f32.tobytes()[:4])]))
    out(t, "valid-rank6.safetensors", safetensors_bytes([("r6", "F32", (1, 2, 1, 2, 1, 1), f32.tobytes()[:16])]))
    out(t, "valid-no-tensors.safetensors", safetensors_bytes([], {"k": "v"}))
    out(t, "valid-unaligned-header.safetensors", safetensors_bytes(valid[:2], align=False))
    # A state dict as the converter writes it (names with dots, a scalar), with metadata.
    out(t, "valid-state-dict.safetensors", safetensors_bytes(
        [("module.layer1.conv_f.weight", "F32", (2, 1, 1, 1), f32.tobytes()[:8]),
         ("module.layer1.bn_f.num_batches_tracked", "I64", (), struct.pack("<q", 100))],
        {"grcnn.arch": "grcnn_small", "grcnn.step": "100"}))
    # Near-valid.
    good = safetensors_bytes(valid)
    out(t, "bad-truncated-data.safetensors", good[:-5])
    out(t, "bad-truncated-header.safetensors", good[:20])
    out(t, "bad-short.safetensors", b"\x10\x00\x00")
    out(t, "bad-header-len-huge.safetensors", struct.pack("<Q", 1 << 40) + b"{}")
    out(t, "bad-header-len-past-end.safetensors", struct.pack("<Q", 64) + b'{"a":1}')
    out(t, "bad-header-not-object.safetensors", safetensors_bytes([], header_override="[1,2,3]"))
    out(t, "bad-json.safetensors", safetensors_bytes([], header_override='{"x": {"dtype": "F32", '))
    out(t, "bad-duplicate-key.safetensors", safetensors_bytes([("x", "F32", (1,), b"\0" * 4)], header_override=(
        '{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}')))
    out(t, "bad-dtype.safetensors", safetensors_bytes([("x", "U8", (4,), b"\1\2\3\4")]))
    out(t, "bad-shape-mismatch.safetensors", safetensors_bytes([("x", "F32", (3,), b"\0" * 8)]))
    out(t, "bad-negative-extent.safetensors", safetensors_bytes([("x", "F32", (-1,), b"")]))
    out(t, "bad-huge-extent.safetensors", safetensors_bytes([("x", "F32", (1 << 62, 4), b"")]))
    out(t, "bad-uint64-extent.safetensors", safetensors_bytes([("x", "F32", (0, (1 << 64) - 1), b"")]))
    out(t, "bad-rank7.safetensors", safetensors_bytes([("x", "F32", (1,) * 7, b"\0" * 4)]))
    h = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}'
    out(t, "bad-overlap.safetensors", struct.pack("<Q", len(h)) + h.encode() + b"\0" * 6)
    h = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'
    out(t, "bad-gap.safetensors", struct.pack("<Q", len(h)) + h.encode() + b"\0" * 8)
    h = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}'
    out(t, "bad-offsets-reversed.safetensors", struct.pack("<Q", len(h)) + h.encode() + b"\0" * 8)
    h = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}}'
    out(t, "bad-offsets-float.safetensors", struct.pack("<Q", len(h)) + h.encode() + b"\0" * 4)
    h = '{"__metadata__":{"a":1},"b":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}'
    out(t, "bad-metadata-number.safetensors", struct.pack("<Q", len(h)) + h.encode() + b"\0" * 4)
    h = '{"a":{"dtype":"F32","shape":[1e999],"data_offsets":[0,4]}}'
    out(t, "bad-extent-inf.safetensors", struct.pack("<Q", len(h)) + h.encode() + b"\0" * 4)
    h = '{"a":' * 200 + "1" + "}" * 200
    out(t, "bad-deep-nesting.safetensors", struct.pack("<Q", len(h)) + h.encode())


# ---------------------------------------------------------------- images
def png_bytes(img, **kw):
    b = io.BytesIO()
    img.save(b, "PNG", **kw)
    return b.getvalue()


def jpeg_bytes(img, **kw):
    b = io.BytesIO()
    img.save(b, "JPEG", **kw)
    return b.getvalue()


def png_chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def raw_png(width, height, bit_depth, color_type, rows, interlace=0, extra=b""):
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra + png_chunk(b"IDAT", zlib.compress(rows, 9))
            + png_chunk(b"IEND", b""))


def adam7(px):
    """The filtered (filter 0) scanlines of an interlaced PNG: the seven passes' sub-images in order."""
    out_rows = b""
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
        sub = px[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        out_rows += b"".join(b"\0" + row.tobytes() for row in sub)
    return out_rows


def seeds_image():
    t = "image"
    clear(t)
    stim = Image.open(ROOT / "tests" / "data" / "stimulus.png").convert("RGB")
    small = stim.resize((24, 16), Image.BILINEAR)
    grad = Image.fromarray(np.add.outer(np.arange(9) * 20, np.arange(13) * 9).astype(np.uint8))  # 13 x 9 gray
    # PNG: every color type and depth decode_png converts.
    out(t, "rgb8.png", png_bytes(small))
    out(t, "rgba8.png", png_bytes(small.convert("RGBA")))
    out(t, "gray8.png", png_bytes(grad))
    out(t, "gray-alpha8.png", png_bytes(grad.convert("LA")))
    out(t, "gray1.png", png_bytes(grad.convert("1")))
    out(t, "palette.png", png_bytes(small.convert("P", palette=Image.ADAPTIVE, colors=16)))
    pal = small.convert("P", palette=Image.ADAPTIVE, colors=4)
    out(t, "palette-2bit-trns.png", png_bytes(pal, bits=2, transparency=1))
    # Adam7 (PIL writes no interlaced PNG).
    px = np.asarray(small.resize((9, 7)))
    out(t, "rgb8-interlaced.png", raw_png(9, 7, 8, 2, adam7(px), interlace=1))
    g16 = (np.add.outer(np.arange(6), np.arange(7)) * 5000).astype(">u2")
    out(t, "gray16.png", raw_png(7, 6, 16, 0, b"".join(b"\0" + r.tobytes() for r in g16)))
    rgb16 = RNG.integers(0, 65536, (4, 5, 3)).astype(">u2")
    out(t, "rgb16.png", raw_png(5, 4, 16, 2, b"".join(b"\0" + r.tobytes() for r in rgb16)))
    rgba16 = RNG.integers(0, 65536, (3, 3, 4)).astype(">u2")
    out(t, "rgba16.png", raw_png(3, 3, 16, 6, b"".join(b"\0" + r.tobytes() for r in rgba16)))
    g4 = RNG.integers(0, 256, (5, 2), dtype=np.uint8)  # 4-bit gray, 4 px a row
    out(t, "gray4-trns.png", raw_png(4, 5, 4, 0, b"".join(b"\0" + r.tobytes() for r in g4),
                                    extra=png_chunk(b"tRNS", b"\0\3")))
    out(t, "rgb8-filters.png", raw_png(4, 5, 8, 2, b"".join(bytes([f]) + bytes(RNG.integers(0, 256, 12, dtype=np.uint8))
                                                            for f in range(5))))
    # JPEG: baseline 4:2:0 and 4:4:4, grayscale, progressive, optimized, restart intervals, CMYK.
    out(t, "baseline420.jpg", jpeg_bytes(small, quality=75))
    out(t, "baseline444.jpg", jpeg_bytes(small, quality=90, subsampling=0))
    out(t, "gray.jpg", jpeg_bytes(grad, quality=80))
    out(t, "progressive.jpg", jpeg_bytes(small, quality=70, progressive=True))
    out(t, "progressive-gray.jpg", jpeg_bytes(grad, progressive=True))
    out(t, "optimized-422.jpg", jpeg_bytes(small, optimize=True, subsampling=1))
    out(t, "cmyk.jpg", jpeg_bytes(small.convert("CMYK"), quality=60))
    out(t, "exif.jpg", jpeg_bytes(small, quality=50, exif=b"Exif\0\0MM\0*\0\0\0\x08\0\0"))
    out(t, "odd-size-1x1.jpg", jpeg_bytes(small.resize((1, 1))))
    out(t, "odd-size-1x1.png", png_bytes(small.resize((1, 1))))
    # Near-valid: truncated, corrupt, and headers declaring sizes the checks must refuse.
    base = jpeg_bytes(small, quality=75)
    out(t, "bad-truncated.jpg", base[: len(base) // 2])
    out(t, "bad-header-only.jpg", base[:200])
    p = png_bytes(small)
    out(t, "bad-truncated.png", p[: len(p) * 2 // 3])
    bad_crc = bytearray(p)
    bad_crc[29] ^= 0xFF
    out(t, "bad-crc.png", bytes(bad_crc))
    out(t, "bad-huge-declared.png", raw_png(100000, 100000, 8, 2, b"\0" * 100))
    out(t, "bad-wide-declared.png", raw_png(2 ** 31 - 1, 1, 8, 2, b"\0" * 10))
    out(t, "bad-zero-width.png", raw_png(0, 5, 8, 0, b""))
    sof = base.find(b"\xff\xc0")
    big = bytearray(base)
    big[sof + 5:sof + 9] = struct.pack(">HH", 65000, 65000)
    out(t, "bad-huge-declared.jpg", bytes(big))
    big[sof + 5:sof + 9] = struct.pack(">HH", 9000, 9000)
    out(t, "bad-large-declared-short.jpg", bytes(big))
    out(t, "bad-signature-only.png", b"\x89PNG\r\n\x1a\n")
    out(t, "bad-signature-only.jpg", b"\xff\xd8\xff")
    out(t, "bad-neither.bin", b"GIF89a\x01\x00\x01\x00")


# ---------------------------------------------------------------- IDX
def idx_bytes(dims, values, type_code=0x08):
    return bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(values)


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


def seeds_idx():
    t = "idx"
    clear(t)
    labels = idx_bytes([10], list(range(10)))
    images = idx_bytes([3, 4, 5], RNG.integers(0, 256, 60, dtype=np.uint8))
    out(t, "labels-idx1-ubyte", labels)
    out(t, "labels-idx1-ubyte.gz", gz(labels))
    out(t, "images-idx3-ubyte", images)
    out(t, "images-idx3-ubyte.gz", gz(images))
    out(t, "rank2-idx2-ubyte", idx_bytes([2, 3], [1, 2, 3, 4, 5, 6]))
    out(t, "rank4-idx4-ubyte.gz", gz(idx_bytes([1, 2, 2, 2], range(8))))
    out(t, "empty-dim-idx3-ubyte", idx_bytes([0, 28, 28], []))
    # Near-valid.
    out(t, "bad-truncated-idx3-ubyte", images[:-7])
    out(t, "bad-truncated-idx3-ubyte.gz", gz(images)[:-12])
    out(t, "bad-huge-idx3-ubyte", idx_bytes([60000, 28, 28], range(16)))
    out(t, "bad-huge-idx3-ubyte.gz", gz(idx_bytes([2 ** 31, 2 ** 31, 4], range(16))))
    out(t, "bad-max-dims-idx4-ubyte", idx_bytes([2 ** 32 - 1] * 4, []))
    out(t, "bad-type-float-idx1", idx_bytes([2], b"\0" * 8, type_code=0x0D))
    out(t, "bad-rank0-idx", bytes([0, 0, 8, 0]))
    out(t, "bad-rank5-idx", idx_bytes([1] * 5, [0]))
    out(t, "bad-magic", b"\x1f\x8b\x08\x00junk")
    out(t, "bad-dims-cut", bytes([0, 0, 8, 3, 0, 0, 0]))


# ---------------------------------------------------------------- CIFAR
def seeds_cifar():
    t = "cifar"
    clear(t)
    px = RNG.integers(0, 256, (3, 3072), dtype=np.uint8)
    c10 = b"".join(bytes([lab]) + px[i].tobytes() for i, lab in enumerate([3, 9, 0]))
    c100 = b"".join(bytes([coarse, fine]) + px[i].tobytes() for i, (coarse, fine) in enumerate([(19, 99), (0, 0)]))
    out(t, "cifar10-3-records.bin", c10)
    out(t, "cifar100-2-records.bin", c100)
    out(t, "cifar10-1-record.bin", c10[:3073])
    bad = bytearray(c10)
    bad[3073] = 10
    out(t, "bad-cifar10-label-10.bin", bytes(bad))
    bad = bytearray(c100)
    bad[1] = 100
    out(t, "bad-cifar100-label-100.bin", bytes(bad))
    out(t, "bad-short-record.bin", c10[:-1])
    out(t, "bad-empty.bin", b"")


# ---------------------------------------------------------------- netCDF assemblies
class NC:
    """Writes netCDF files through libnetcdf's C API (Debian ships no netCDF4 module for python3)."""
    lib = ctypes.CDLL(ctypes.util.find_library("netcdf") or "libnetcdf.so.19")
    BYTE, CHAR, SHORT, INT, FLOAT, DOUBLE, UBYTE, USHORT, UINT, INT64, UINT64, STRING = range(1, 13)
    CLOBBER, CLASSIC, OFFSET64, DATA64, NETCDF4 = 0, 0, 0x0200, 0x0020, 0x1000

    def __init__(self, path, mode):
        self.id = ctypes.c_int()
        self.check(self.lib.nc_create(str(path).encode(), mode, ctypes.byref(self.id)), "create")
        self.dims = {}

    def check(self, rc, what):
        if rc != 0:
            self.lib.nc_strerror.restype = ctypes.c_char_p
            raise RuntimeError(f"netcdf {what}: {self.lib.nc_strerror(rc).decode()}")

    def dim(self, name, n):
        d = ctypes.c_int()
        self.check(self.lib.nc_def_dim(self.id, name.encode(), ctypes.c_size_t(n), ctypes.byref(d)), name)
        self.dims[name] = d.value

    def var(self, name, kind, dims):
        v = ctypes.c_int()
        ids = (ctypes.c_int * max(1, len(dims)))(*[self.dims[d] for d in dims])
        self.check(self.lib.nc_def_var(self.id, name.encode(), kind, len(dims), ids, ctypes.byref(v)), name)
        return v.value

    def att_text(self, var, name, text):
        b = text.encode()
        self.check(self.lib.nc_put_att_text(self.id, var, name.encode(), ctypes.c_size_t(len(b)), b), name)

    def att_double(self, var, name, kind, value):
        x = ctypes.c_double(value)
        self.check(self.lib.nc_put_att_double(self.id, var, name.encode(), kind, ctypes.c_size_t(1), ctypes.byref(x)), name)

    def enddef(self):
        self.check(self.lib.nc_enddef(self.id), "enddef")

    def put_double(self, var, values):
        a = np.ascontiguousarray(values, np.float64)
        self.check(self.lib.nc_put_var_double(self.id, var, a.ctypes.data_as(ctypes.c_void_p)), "put double")

    def put_int(self, var, values):
        a = np.ascontiguousarray(values, np.int64)
        self.check(self.lib.nc_put_var_longlong(self.id, var, a.ctypes.data_as(ctypes.c_void_p)), "put int")

    def put_strings(self, var, values):
        arr = (ctypes.c_char_p * len(values))(*[s.encode() for s in values])
        self.check(self.lib.nc_put_var_string(self.id, var, arr), "put strings")

    def put_text(self, var, values, width):
        b = b"".join(s.encode().ljust(width, b"\0") for s in values)
        self.check(self.lib.nc_put_var_text(self.id, var, b), "put text")

    def close(self):
        self.check(self.lib.nc_close(self.id), "close")


def hvm_slice(n_images=4, n_reps=2, n_it=3, n_v4=3):
    """A cut of data/hvm-mini/majaj2015_subset.nc: real image ids, neuroid ids, regions and responses."""
    sys.path.insert(0, str(ROOT / "tests" / "torch"))
    import netcdf_ctypes
    src = netcdf_ctypes.Dataset(ROOT / "data" / "hvm-mini" / "majaj2015_subset.nc")
    image_id, rep = src.read("image_id"), src.read("repetition")
    region, neuroid_id, animal = src.read("region"), src.read("neuroid_id"), src.read("animal")
    data = src.read("dicarlo.Majaj2015")[:, :, 0]  # neuroid x presentation
    images = sorted(set(image_id))[:n_images]
    pres = [p for p in range(len(image_id)) if image_id[p] in images and rep[p] < n_reps]
    neur = [n for n in range(len(region)) if region[n] == "IT"][:n_it] + [n for n in range(len(region)) if region[n] == "V4"][:n_v4]
    return {
        "image_id": [str(image_id[p]) for p in pres], "repetition": [int(rep[p]) for p in pres],
        "neuroid_id": [str(neuroid_id[n]) for n in neur], "region": [str(region[n]) for n in neur],
        "animal": [str(animal[n]) for n in neur], "data": data[np.ix_(neur, pres)],  # neuroid x presentation
        "time_bin_start": int(src.read("time_bin_start")[0]), "time_bin_end": int(src.read("time_bin_end")[0]),
    }


def write_assembly(path, h, mode, strings="string", order=("neuroid", "presentation", "time_bin"), n_bins=1,
                   data_name="dicarlo.Majaj2015", sid="image_id", fill=None, scale=None, region_dim="neuroid",
                   dtype=None):
    P, N = len(h["image_id"]), len(h["neuroid_id"])
    f = NC(path, mode)
    sizes = {"presentation": P, "neuroid": N, "time_bin": n_bins}
    for d in order:
        f.dim(d, sizes[d])
    use_char = strings == "char"
    if use_char:
        f.dim("sid_len", max(len(s) for s in h["image_id"]))
        f.dim("nid_len", max(len(s) for s in h["neuroid_id"]))
        f.dim("reg_len", 2)
        f.dim("animal_len", max(len(s) for s in h["animal"]))
    v = f.var(data_name, dtype or NC.FLOAT, list(order))
    f.att_text(v, "stimulus_set_name", "dicarlo.hvm")
    if fill is not None:
        f.att_double(v, "_FillValue", dtype or NC.FLOAT, fill)
    if scale is not None:
        f.att_double(v, "scale_factor", NC.DOUBLE, scale)
        f.att_double(v, "add_offset", NC.DOUBLE, 0.25)
    text = {}
    for name, dim, lendim in (
        (sid, "presentation", "sid_len"), ("neuroid_id", "neuroid", "nid_len"), ("region", region_dim, "reg_len"),
        ("animal", "neuroid", "animal_len")):
        text[name] = f.var(name, NC.CHAR if use_char else NC.STRING, [dim, lendim] if use_char else [dim])
    vr = f.var("repetition", NC.INT64 if mode & NC.NETCDF4 or mode & NC.DATA64 else NC.INT, ["presentation"])
    vs = ve = None
    if "time_bin" in order:
        vs = f.var("time_bin_start", NC.INT, ["time_bin"])
        ve = f.var("time_bin_end", NC.INT, ["time_bin"])
    f.enddef()
    d = np.repeat(h["data"][:, :, None], n_bins, axis=2) + np.arange(n_bins)  # neuroid x presentation x bin
    axes = {"neuroid": 0, "presentation": 1, "time_bin": 2}
    if "time_bin" not in order:
        d = d[:, :, 0]
    d = np.transpose(d, [axes[a] for a in order])
    if fill is not None:
        d = d.copy()
        d.flat[1] = fill
    f.put_double(v, d)
    values = {sid: h["image_id"], "neuroid_id": h["neuroid_id"], "animal": h["animal"],
              "region": h["region"] if region_dim == "neuroid" else (h["region"] * P)[:P]}
    widths = {sid: max(len(s) for s in h["image_id"]), "neuroid_id": max(len(s) for s in h["neuroid_id"]), "region": 2,
              "animal": max(len(s) for s in h["animal"])}
    for name, var in text.items():
        if use_char:
            f.put_text(var, values[name], widths[name])
        else:
            f.put_strings(var, values[name])
    f.put_int(vr, h["repetition"])
    if vs is not None:
        f.put_int(vs, [h["time_bin_start"] + 50 * b for b in range(n_bins)])
        f.put_int(ve, [h["time_bin_end"] + 50 * b for b in range(n_bins)])
    f.close()


def seeds_assembly(tmp):
    t = "assembly"
    clear(t)
    h = hvm_slice()
    cases = {
        # netCDF-4/HDF5 as BrainIO writes it (dims neuroid, presentation, time_bin; NC_STRING coordinates).
        "hvm-cut-netcdf4.nc": dict(mode=NC.NETCDF4),
        # The same in the classic formats: char-array strings, no time_bin (2-D data).
        "hvm-cut-classic-char.nc": dict(mode=NC.CLASSIC, strings="char", order=("presentation", "neuroid")),
        "hvm-cut-offset64-2bins.nc": dict(mode=NC.OFFSET64, strings="char", order=("time_bin", "presentation", "neuroid"),
                                          n_bins=2, sid="stimulus_id", fill=-999.0),
        "hvm-cut-cdf5-scaled.nc": dict(mode=NC.DATA64, strings="char", order=("presentation", "time_bin", "neuroid"),
                                       scale=0.5, dtype=NC.SHORT, fill=-1),
        "hvm-cut-netcdf4-3bins-double.nc": dict(mode=NC.NETCDF4, n_bins=3, order=("presentation", "neuroid", "time_bin"),
                                                dtype=NC.DOUBLE, data_name="responses"),
        # Near-valid: a region coordinate along the wrong dimension.
        "bad-region-dim-classic.nc": dict(mode=NC.CLASSIC, strings="char", order=("presentation", "neuroid"),
                                          region_dim="presentation"),
    }
    for name, kw in cases.items():
        p = tmp / name
        if kw.get("dtype") == NC.SHORT:
            hh = dict(h, data=np.round(h["data"] * 10))
            write_assembly(p, hh, **kw)
        else:
            write_assembly(p, h, **kw)
        data = p.read_bytes()
        out(t, name, data)
    # Truncations of a classic file (header intact, data cut) and of the HDF5 one.
    classic = (CORPUS / t / "hvm-cut-classic-char.nc").read_bytes()
    out(t, "bad-truncated-classic.nc", classic[: len(classic) - 40])
    out(t, "bad-header-only-classic.nc", classic[:64])
    h5 = (CORPUS / t / "hvm-cut-netcdf4.nc").read_bytes()
    out(t, "bad-truncated-netcdf4.nc", h5[: len(h5) // 2])
    out(t, "bad-magic-only.nc", b"CDF\x01")


def seeds_assembly_gen():
    """fuzz_assembly_gen reads its input as instructions to libnetcdf's writer: any bytes are an input."""
    t = "assembly_gen"
    clear(t)
    rng = np.random.default_rng(2021)
    for i, n in enumerate((16, 48, 96, 160, 256, 400)):
        out(t, f"random-{i}.bin", rng.integers(0, 256, n, dtype=np.uint8).tobytes())


# ---------------------------------------------------------------- split files
SPLIT_IDS = [f"s{i}" for i in range(12)]


def seeds_splits():
    t = "splits"
    clear(t)
    dump = lambda o, **kw: json.dumps(o, **kw).encode()
    out(t, "valid-two.json", dump({"splits": [{"train": SPLIT_IDS[:9], "test": SPLIT_IDS[9:]},
                                             {"train": SPLIT_IDS[3:], "test": SPLIT_IDS[:3]}]}, indent=1))
    out(t, "valid-one-min.json", dump({"splits": [{"train": ["s0"], "test": ["s1"]}]}, separators=(",", ":")))
    out(t, "valid-odd-ids.json", dump({"splits": [{"train": ["", "a", "0"], "test": ["im\u00e4ge", "s1"]}],
                                       "note": "extra keys are ignored"}, ensure_ascii=False))
    out(t, "valid-escaped.json", b'{"splits":[{"test":["\\u0073\\u0030"],"train":["s\\u0031","b"]}]}')
    out(t, "bad-unknown-id.json", dump({"splits": [{"train": ["s0", "nope"], "test": ["s1"]}]}))
    out(t, "bad-repeated-id.json", dump({"splits": [{"train": ["s0", "s2"], "test": ["s2"]}]}))
    out(t, "bad-empty-test.json", dump({"splits": [{"train": ["s0"], "test": []}]}))
    out(t, "bad-no-splits.json", dump({"splits": []}))
    out(t, "bad-number-id.json", dump({"splits": [{"train": [0, 1], "test": ["s2"]}]}))
    out(t, "bad-not-object.json", dump([{"train": ["s0"], "test": ["s1"]}]))
    out(t, "bad-split-not-object.json", dump({"splits": [["s0"], ["s1"]]}))
    out(t, "bad-duplicate-key.json", b'{"splits":[{"train":["s0"],"test":["s1"],"test":["s2"]}]}')
    out(t, "bad-truncated.json", dump({"splits": [{"train": SPLIT_IDS[:9], "test": SPLIT_IDS[9:]}]})[:40])
    out(t, "bad-huge-number.json", b'{"splits":[{"train":["s0"],"test":["s1"]}],"x":1e999}')
    out(t, "bad-deep.json", b'{"splits":' + b"[" * 500 + b"]" * 500 + b"}")
    out(t, "bad-invalid-utf8.json", b'{"splits":[{"train":["s\xff"],"test":["s1"]}]}')


# ---------------------------------------------------------------- grcnn-score --out reports
def score_run(convention="squared", models=(("runs/grcnn55/best.safetensors", {"V4": 0.51, "IT": 0.47}),)):
    """A run as grcnn-score writes it with --out (examples/grcnn_score.cpp: score(), score_json())."""
    def layer(name, ceiled):
        return {"layer": name, "raw": 0.4, "error": 0.02, "ceiling": 0.8, "ceiled": ceiled, "per_split": [0.41, 0.39]}
    run = {"arch": "grcnn55", "metric": "pls", "ceiling_convention": convention, "degrees": 8.0, "model_degrees": 8.0,
           "assembly": "data/hvm-mini/majaj2015_subset.nc", "pca": 0, "models": []}
    run["regions"] = {r: {"ceiling": 0.81, "neuroids": 88, "stimuli": 25, "splits": 10} for r in ("V4", "IT")}
    for weights, scores in models:
        m = {"weights": weights, "regions": {}}
        for region, ceiled in scores.items():
            m["regions"][region] = {"best": "layer2", "ceiled": ceiled, "raw": 0.4, "error": 0.02, "per_split": [0.4, 0.41],
                                    "layers": [layer("layer1", 0.3), layer("layer2", ceiled)]}
        run["models"].append(m)
    return run


def seeds_score_report():
    t = "score_report"
    clear(t)
    dump = lambda o: json.dumps(o, indent=2, allow_nan=False).encode() + b"\n"
    out(t, "valid-one-model.json", dump(score_run()))
    out(t, "valid-two-models-ev.json", dump(score_run("explained-variance", (
        ("a.safetensors", {"V4": 0.2}), ("b/" + "x" * 50 + ".safetensors", {"IT": 0.3, "V1": 0.1})))))
    nan_run = score_run()
    nan_run["models"][0]["regions"]["V4"]["ceiled"] = None  # NaN is written as null
    out(t, "valid-null-score.json", dump(nan_run))
    out(t, "valid-no-models.json", dump(dict(score_run(), models=[])))
    minimal = {"models": [{"weights": "w", "regions": {"IT": {"ceiled": 1}}}]}
    out(t, "valid-minimal.json", json.dumps(minimal, separators=(",", ":")).encode())
    bad = score_run()
    bad["ceiling_convention"] = "cubed"
    out(t, "bad-convention.json", dump(bad))
    bad = score_run()
    bad["models"][0]["regions"]["V4"]["ceiled"] = "0.5"
    out(t, "bad-ceiled-string.json", dump(bad))
    bad = score_run()
    del bad["models"][0]["weights"]
    out(t, "bad-no-weights.json", dump(bad))
    out(t, "bad-models-object.json", b'{"models": {"weights": "w"}}')
    out(t, "bad-regions-array.json", b'{"models": [{"weights": "w", "regions": [1, 2]}]}')
    out(t, "bad-not-object.json", b'[{"models": []}]')
    out(t, "bad-duplicate-key.json", b'{"models": [], "models": []}')
    out(t, "bad-huge-number.json", b'{"models": [{"weights": "w", "regions": {"IT": {"ceiled": 1e400}}}]}')
    out(t, "bad-truncated.json", dump(score_run())[:100])
    out(t, "bad-empty.json", b"")


# ---------------------------------------------------------------- grcnn-train recipes
def seeds_recipe():
    t = "recipe"
    clear(t)
    for f in sorted((ROOT / "recipes").glob("*.toml")):
        out(t, "recipes-" + f.name, f.read_bytes())
    out(t, "valid-all-kinds.toml", b"""# every kind of value grcnn-train options take
arch = "grcnn_small"
dataset = 'cifar10'
epochs = 2
batch = 128
lr = 5e-2
momentum = 0.0
nesterov = true
no-decay-bn-bias = false
schedule = "multistep"
milestones = [1, 2]
gamma = 0.5
warmup = 0.5
label-smoothing = 0.1
smoothing-style = "pytorch"
mixup = 0.2
train-only = ["stage_1", "stage_2"]
blend = "texture,noise"
augmix-severity = 10
augmix-width = 16
augmix-depth = -1
jsd-weight = 0
vone-noise = "1234"
seed = 18446744073709551615
keep = 1000
max-image-pixels = 1000000
out = "runs/x y"
""")
    out(t, "valid-crlf-comments.toml", b"arch = \"grcnn56\"  # a comment\r\n\r\n# whole-line comment\r\nlr=0.2\r\nepochs   =   3\r\n")
    out(t, "valid-multiline-array.toml", b"milestones = [\n  30,\n  60,\n]\nschedule = \"multistep\"\n")
    out(t, "valid-empty.toml", b"")
    out(t, "bad-unknown-key.toml", b"lrr = 5.0\n")
    out(t, "bad-section.toml", b"[optimizer]\nlr = 0.1\n")
    out(t, "bad-range.toml", b"batch = 1\n")
    out(t, "bad-negative-lr.toml", b"lr = -0.1\n")
    out(t, "bad-not-number.toml", b"epochs = many\n")
    out(t, "bad-arch.toml", b"arch = \"resnet50\"\n")
    out(t, "bad-no-equals.toml", b"augmix\nlr 0.1\n")
    out(t, "bad-unterminated-string.toml", b"arch = \"grcnn55\nlr = 1\n")
    out(t, "bad-overflow.toml", b"epochs = 99999999999999999999999\n")
    out(t, "bad-vone-noise.toml", b"vone-noise = \"sometimes\"\n")
    out(t, "bad-blend.toml", b"blend = [\"texture\", \"paint\"]\n")
    out(t, "bad-recipe-key.toml", b"recipe = \"other.toml\"\n")


def main():
    import tempfile
    seeds_safetensors()
    seeds_image()
    seeds_idx()
    seeds_cifar()
    with tempfile.TemporaryDirectory() as tmp:
        seeds_assembly(Path(tmp))
    seeds_assembly_gen()
    seeds_splits()
    seeds_score_report()
    seeds_recipe()
    for d in sorted(CORPUS.iterdir()):
        files = [f for f in d.iterdir() if f.is_file()]
        total = sum(f.stat().st_size for f in files)
        print(f"{d.name}: {len(files)} files, {total} bytes")
        assert total < 200_000, f"corpus {d.name} is {total} bytes, above the 200 KB budget"


if __name__ == "__main__":
    main()
