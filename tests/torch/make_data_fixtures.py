#!/usr/bin/env python3
"""Data-pipeline references from torchvision and PIL (tests/test_data.cpp):

  make_data_fixtures.py OUT_DIR

Writes under OUT_DIR:
  folder/          an ImageFolder tree (classes "b_dog", "a_cat", "C_upper"; JPEG and PNG files, nested
                   sub-folders, a non-image file) and folder.json: torchvision.datasets.ImageFolder's
                   classes and (path, class index) samples in order;
  corrupt/         the same layout with one truncated JPEG, named in corrupt.json;
  cifar10/, cifar100/  small CIFAR binary files (records written by this script) and their labels;
  mnist/           gzip IDX files of 5 images;
  transforms.safetensors: for a photo-like image, torchvision's F.resized_crop (PIL bilinear) for
                   given boxes, hflip, pad + crop, and ToTensor + Normalize values.
"""
import gzip
import json
import struct
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision
import torchvision.transforms.functional as TF
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import safetensors_io  # noqa: E402

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(3)


def photo(w, h, seed):
    """A smooth image with edges (JPEG-friendly, not constant)."""
    y, x = np.mgrid[0:h, 0:w]
    r = 127 + 100 * np.sin(x / (5 + seed)) * np.cos(y / 7)
    g = 127 + 90 * np.cos((x + y) / (9 + seed))
    b = np.where((x // 8 + y // 8) % 2 == 0, 200, 40)
    return Image.fromarray(np.stack([r, g, b], -1).clip(0, 255).astype(np.uint8))


# ImageFolder ---------------------------------------------------------------------------------------
folder = out / "folder"
# b_dog: torchvision lists 1.jpg, 3.png (the class folder), then 2sub/4.jpg, then sub/2.JPEG: folders by their
# path string, files by name within a folder (not 1.jpg, 2sub/4.jpg, 3.png as a path-wise sort would).
for cls, files in {"b_dog": ["1.jpg", "sub/2.JPEG", "3.png", "2sub/4.jpg"], "a_cat": ["x.png", "y.jpg"],
                   "C_upper": ["z.jpeg"]}.items():
    for i, f in enumerate(files):
        p = folder / cls / f
        p.parent.mkdir(parents=True, exist_ok=True)
        img = photo(40 + 3 * i, 30 + 2 * i, i)
        img.save(p, format="PNG" if f.endswith("png") else "JPEG", quality=90)
(folder / "a_cat" / "notes.txt").write_text("not an image")
ds = torchvision.datasets.ImageFolder(str(folder), is_valid_file=lambda p: p.lower().endswith((".jpg", ".jpeg", ".png")))
(out / "folder.json").write_text(json.dumps({
    "classes": ds.classes,
    "samples": [[str(Path(p).relative_to(folder)), c] for p, c in ds.samples]}))

corrupt = out / "corrupt"
for cls in ["a", "b"]:
    for i in range(3):
        p = corrupt / cls / f"{i}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        photo(20, 20, i).save(p, format="JPEG")
bad = corrupt / "b" / "1.jpg"
bad.write_bytes(bad.read_bytes()[:100])  # truncated inside the entropy-coded data
(out / "corrupt.json").write_text(json.dumps({"bad": str(bad)}))

# CIFAR binaries ------------------------------------------------------------------------------------
for name, c100 in [("cifar10", False), ("cifar100", True)]:
    d = out / name
    d.mkdir(exist_ok=True)
    files = ["train.bin", "test.bin"] if c100 else [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    labels = {}
    for fi, f in enumerate(files):
        recs, labs = [], []
        for r in range(2):
            fine = int(rng.integers(0, 100 if c100 else 10))
            pixels = rng.integers(0, 256, 3072, dtype=np.uint8)
            head = bytes([fine // 5, fine]) if c100 else bytes([fine])
            recs.append(head + pixels.tobytes())
            labs.append(fine)
            if fi == 0 and r == 0:
                # the first image as HWC RGB, to check the planar -> interleaved conversion
                np.save(d / "first.npy", pixels.reshape(3, 32, 32).transpose(1, 2, 0))
        (d / f).write_bytes(b"".join(recs))
        labels[f] = labs
    (d / "labels.json").write_text(json.dumps(labels))

# IDX -----------------------------------------------------------------------------------------------
m = out / "mnist"
m.mkdir(exist_ok=True)
imgs = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
labs = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
for prefix in ["train", "t10k"]:
    with gzip.open(m / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, 5, 28, 28) + imgs.tobytes())
    with gzip.open(m / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 0x801, 5) + labs.tobytes())

# Transforms ----------------------------------------------------------------------------------------
src = photo(61, 47, 2)
src.save(out / "transform_source.png")
tensors = [("source", torch.from_numpy(np.asarray(src).copy()).to(torch.int64))]
boxes = [(0, 0, 47, 61), (5, 7, 20, 31), (10, 3, 37, 40), (40, 50, 7, 11)]  # top, left, height, width
for k, (t, l, h, w) in enumerate(boxes):
    r = TF.resized_crop(src, t, l, h, w, [24, 24], interpolation=TF.InterpolationMode.BILINEAR)
    tensors += [(f"rrc.{k}.box", torch.tensor([t, l, h, w])),
                (f"rrc.{k}.out", torch.from_numpy(np.asarray(r).copy()).to(torch.int64))]
tensors.append(("hflip", torch.from_numpy(np.asarray(TF.hflip(src)).copy()).to(torch.int64)))
padded = TF.pad(src, 4, fill=0)
tensors.append(("pad4_crop", torch.from_numpy(np.asarray(TF.crop(padded, 3, 9, 32, 32)).copy()).to(torch.int64)))
mean, std = [0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]
tensors.append(("normalized", TF.normalize(TF.to_tensor(src), mean, std).to(torch.float32)))
# RandomResizedCrop.get_params statistics on a 200x100 image (draws differ from ours; the distribution
# must not): mean area fraction, mean aspect ratio, and the mean of the box's top-left corner.
torch.manual_seed(0)
img = Image.new("RGB", (200, 100))
boxes = torch.tensor([torchvision.transforms.RandomResizedCrop.get_params(img, (0.08, 1.0), (3 / 4, 4 / 3))
                      for _ in range(20000)], dtype=torch.float64)  # i, j, h, w
tensors.append(("rrc_stats", torch.stack([(boxes[:, 2] * boxes[:, 3] / 20000).mean(), (boxes[:, 3] / boxes[:, 2]).mean(),
                                          boxes[:, 0].mean(), boxes[:, 1].mean()])))
safetensors_io.save(str(out / "transforms.safetensors"), tensors)

# AugMix operations (the PIL calls of google-research/augmix's augmentations.py) ---------------------
from PIL import ImageEnhance, ImageOps  # noqa: E402


def arr(im):
    return torch.from_numpy(np.asarray(im).copy()).to(torch.int64)


# A photo-like image, a low-contrast one (autocontrast stretches it) and one with a constant channel.
pics = {"photo": photo(23, 17, 1)}
low = (np.asarray(photo(19, 14, 4)).astype(np.int64) // 4 + 60).astype(np.uint8)
pics["low"] = Image.fromarray(low)
flat = np.asarray(photo(16, 16, 2)).copy()
flat[:, :, 1] = 77
pics["flat"] = Image.fromarray(flat)
aug = []
for name, im in pics.items():
    aug.append((f"{name}.source", arr(im)))
    aug.append((f"{name}.autocontrast", arr(ImageOps.autocontrast(im))))
    aug.append((f"{name}.equalize", arr(ImageOps.equalize(im))))
    for bits in (1, 3, 4, 8):
        aug.append((f"{name}.posterize.{bits}", arr(ImageOps.posterize(im, bits))))
    for thr in (0, 100, 200, 256):
        aug.append((f"{name}.solarize.{thr}", arr(ImageOps.solarize(im, thr))))
    for k, deg in enumerate((0, 7, -13, 30, 90, 180, 271)):
        aug.append((f"{name}.rotate.{k}", arr(im.rotate(deg, resample=Image.BILINEAR))))
    for k, s in enumerate((0.1, -0.27, 0.3)):
        aug.append((f"{name}.shear_x.{k}", arr(im.transform(im.size, Image.AFFINE, (1, s, 0, 0, 1, 0), resample=Image.BILINEAR))))
        aug.append((f"{name}.shear_y.{k}", arr(im.transform(im.size, Image.AFFINE, (1, 0, 0, s, 1, 0), resample=Image.BILINEAR))))
    for k, t in enumerate((3, -5, 7)):
        aug.append((f"{name}.translate_x.{k}", arr(im.transform(im.size, Image.AFFINE, (1, 0, t, 0, 1, 0), resample=Image.BILINEAR))))
        aug.append((f"{name}.translate_y.{k}", arr(im.transform(im.size, Image.AFFINE, (1, 0, 0, 0, 1, t), resample=Image.BILINEAR))))
    # --all-ops: factors 0.1-1.9 as augmentations.py draws them, plus 0, 1 and 0.5 edge cases
    for k, f in enumerate((0.1, 0.5, 1.0, 1.37, 1.9, 0.0)):
        for op, cls in (("color", ImageEnhance.Color), ("contrast", ImageEnhance.Contrast),
                        ("brightness", ImageEnhance.Brightness), ("sharpness", ImageEnhance.Sharpness)):
            aug.append((f"{name}.{op}.{k}", arr(cls(im).enhance(f))))
# The mixing of a fixed plan, computed as augment_and_mix does (f32 weights, torch normalisation).
mix_mean, mix_std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def pre(im):
    return TF.normalize(TF.to_tensor(im), mix_mean, mix_std)


src = pics["photo"]
chains = [[lambda im: im.rotate(7, resample=Image.BILINEAR), lambda im: ImageOps.posterize(im, 3)],
          [lambda im: im.transform(im.size, Image.AFFINE, (1, -0.1, 0, 0, 1, 0), resample=Image.BILINEAR)],
          [ImageOps.equalize, lambda im: im.transform(im.size, Image.AFFINE, (1, 0, 0, 0, 1, 4), resample=Image.BILINEAR),
           lambda im: ImageOps.solarize(im, 128)]]
ws = np.float32([0.2, 0.5, 0.3])
m = np.float32(0.37)
mixed = torch.zeros_like(pre(src))
for i, chain in enumerate(chains):
    im = src.copy()
    for op in chain:
        im = op(im)
    mixed += ws[i] * pre(im)
mixed = (1 - m) * pre(src) + m * mixed
aug.append(("mix.chw", mixed.to(torch.float32)))
safetensors_io.save(str(out / "augmix.safetensors"), aug)

# Phase randomisation as the authors' package computes it (phase.randomise): n-D FFT over H, W and
# colour, a given new phase, round(|inverse FFT|); values above 255 clipped (our documented deviation).
prng = np.random.default_rng(2022)
ph_img = np.asarray(photo(12, 10, 7))
new_phase = prng.uniform(-np.pi, np.pi, ph_img.shape)
amp = np.abs(np.fft.fftn(ph_img.astype(np.float64)))
expected = np.clip(np.round(np.abs(np.fft.ifftn(amp * np.exp(1j * new_phase)))), 0, 255).astype(np.int64)
safetensors_io.save(str(out / "phase.safetensors"), [
    ("image", torch.from_numpy(ph_img.astype(np.int64))),
    ("new_phase", torch.from_numpy(new_phase)),
    ("expected", torch.from_numpy(expected)),
])
print(f"wrote data fixtures to {out}")
