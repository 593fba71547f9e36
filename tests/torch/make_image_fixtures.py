#!/usr/bin/env python3
"""Images and PIL's preprocessing of them, for the C++ decoding/transform tests:

  make_image_fixtures.py OUT_DIR SOURCE_PNG...

Writes into OUT_DIR test images of every kind the decoder must handle (baseline and progressive JPEG,
4:2:0 and 4:4:4, grayscale JPEG, RGB / RGBA / grayscale / gray+alpha / palette PNG, portrait and landscape, odd
sizes) plus copies of the given real PNGs, and image_fixtures.safetensors with, per image i:
"decoded.i" (H, W, 3 uint8 as I64), "resized.i" (PIL bilinear to 37x23 and the shorter side to 256 ->
"short.i"), "crop.i" (torchvision Resize(256) + CenterCrop(224), uint8 as I64) and "tensor.i"
(ToTensor + Normalize, 3x224x224 f32); "names" lists the files in order (metadata).
"""
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import safetensors_io  # noqa: E402

out_dir = Path(sys.argv[1])
out_dir.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(5)


def smooth(h, w, channels):
    y, x = np.mgrid[0:h, 0:w]
    base = [np.sin(x / (7 + c) + y / (11 + 2 * c)) * 80 + 128 + rng.normal(0, 20, (h, w)) for c in range(channels)]
    return np.clip(np.stack(base, -1), 0, 255).astype(np.uint8)


files = []
Image.fromarray(smooth(300, 410, 3)).save(out_dir / "landscape.jpg", quality=90)
Image.fromarray(smooth(333, 250, 3)).save(out_dir / "portrait_444.jpg", quality=95, subsampling=0)
Image.fromarray(smooth(257, 301, 3)).save(out_dir / "progressive.jpg", quality=80, progressive=True)
Image.fromarray(smooth(240, 260, 1)[..., 0], "L").save(out_dir / "gray.jpg", quality=90)
Image.fromarray(smooth(231, 229, 3)).save(out_dir / "rgb.png")
Image.fromarray(smooth(230, 270, 4), "RGBA").save(out_dir / "rgba.png")
Image.fromarray(smooth(260, 225, 1)[..., 0], "L").save(out_dir / "gray.png")
Image.fromarray(smooth(228, 300, 3)).convert("P", palette=Image.ADAPTIVE, colors=37).save(out_dir / "palette.png")
Image.fromarray(smooth(210, 190, 2), "LA").save(out_dir / "gray_alpha.png")  # Brain-Score converts L/LA/P to RGB
files += ["landscape.jpg", "portrait_444.jpg", "progressive.jpg", "gray.jpg", "rgb.png", "rgba.png", "gray.png", "palette.png",
          "gray_alpha.png"]
for src in sys.argv[2:]:
    dst = out_dir / Path(src).name
    dst.write_bytes(Path(src).read_bytes())
    files.append(dst.name)

mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
tensors = []
for i, name in enumerate(files):
    img = Image.open(out_dir / name).convert("RGB")
    as_i64 = lambda im: torch.from_numpy(np.asarray(im).astype(np.int64))  # noqa: E731
    tensors.append((f"decoded.{i}", as_i64(img)))
    tensors.append((f"resized.{i}", as_i64(img.resize((37, 23), Image.BILINEAR))))
    w, h = img.size
    if w <= h:
        size = (256, int(256 * h / w))
    else:
        size = (int(256 * w / h), 256)
    short = img.resize(size, Image.BILINEAR)
    tensors.append((f"short.{i}", as_i64(short)))
    top, left = int(round((short.size[1] - 224) / 2.0)), int(round((short.size[0] - 224) / 2.0))
    crop = short.crop((left, top, left + 224, top + 224))
    tensors.append((f"crop.{i}", as_i64(crop)))
    t = torch.from_numpy(np.asarray(crop).astype(np.float32) / 255.0).permute(2, 0, 1)
    tensors.append((f"tensor.{i}", ((t - mean) / std).contiguous()))
safetensors_io.save(out_dir / "image_fixtures.safetensors", tensors, {"names": ",".join(files)})
print(f"{len(files)} images")
