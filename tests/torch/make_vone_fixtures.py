#!/usr/bin/env python3
"""Reference values for the VOneBlock (tests/test_vone.cpp), written from the spec (Dapello et al. 2020,
VOneNet's params.py / utils.py / modules.py as spec/grcnn-and-paper-methods.md section 2.5 describes them).

- "<cfg>.{phase,theta,nx,ny,sf}": the V1 parameters numpy's legacy RandomState samples for a seed
  (float64), for the VOneNet() defaults and two other settings.
- "bank.q0", "bank.q1", "bank.channels0", "bank.channels1": the default bank (512 x 3 x 25 x 25) built the
  way VOneNet's GFB.initialize does (float32 torch Gabor kernels), with the channel draws stored.
- "block.*": a small VOneBlock (4 simple + 4 complex, 7x7, stride 2, 32 px over 8 degrees) with its
  weights, an input, the output of block + bottleneck without noise, and the input and bottleneck gradients.
"""
import sys
from pathlib import Path

import numpy as np
import scipy.stats as stats
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import safetensors_io  # noqa: E402

torch.set_num_threads(1)


def sample_dist(hist, bins, ns, scale="linear"):
    u = np.random.rand(ns)
    knots = np.hstack(([0], hist.cumsum()))
    if scale == "linear":
        return np.interp(u, knots, bins)
    if scale == "log2":
        return 2 ** np.interp(u, knots, np.log2(bins))
    return 10 ** np.interp(u, knots, np.log10(bins))


def generate_gabor_param(features, seed=0, sf_corr=0.75, sf_max=9, sf_min=0):
    np.random.seed(seed)
    phase_bins, phase_dist = np.array([0, 360]), np.array([1])
    ori_bins = np.array([-22.5, 22.5, 67.5, 112.5, 157.5])
    ori_dist = np.array([66, 49, 77, 54])
    ori_dist = ori_dist / ori_dist.sum()
    cov = np.array([[1, sf_corr], [sf_corr, 1]])
    nx_bins = np.logspace(-1, 0.2, 6, base=10)
    ny_bins = np.logspace(-1, 0.2, 6, base=10)
    joint = np.array([[2., 0., 1., 0., 0.], [8., 9., 4., 1., 0.], [1., 2., 19., 17., 3.], [0., 0., 1., 7., 4.],
                      [0., 0., 0., 0., 0.]])
    joint = joint / joint.sum()
    nx_dist = joint.sum(axis=1)
    nx_dist = nx_dist / nx_dist.sum()
    with np.errstate(invalid="ignore"):
        ny_rows = joint / joint.sum(axis=1, keepdims=True)
    sf_bins = np.array([0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0, 5.6, 8])
    sf_dist = np.array([4, 4, 8, 25, 32, 26, 28, 12])
    hi = np.where(sf_bins <= sf_max)[0][-1]
    lo = np.where(sf_bins >= sf_min)[0][0]
    sf_bins = sf_bins[lo:hi + 1]
    sf_dist = sf_dist[lo:hi]
    sf_dist = sf_dist / sf_dist.sum()

    phase = sample_dist(phase_dist, phase_bins, features)
    ori = sample_dist(ori_dist, ori_bins, features)
    ori[ori < 0] = ori[ori < 0] + 180
    samps = np.random.multivariate_normal([0, 0], cov, features)
    cdf = stats.norm.cdf(samps)
    nx = 10 ** np.interp(cdf[:, 0], np.hstack(([0], nx_dist.cumsum())), np.log10(nx_bins))
    ny_u = np.random.rand(features)
    ny = np.zeros(features)
    for i, v in enumerate(nx):
        b = np.argwhere(nx_bins < v)[-1]
        ny[i] = np.interp(ny_u[i], np.hstack(([0], ny_rows[b, :].cumsum())), np.log10(ny_bins))
    ny = 10 ** ny
    sf = 2 ** np.interp(cdf[:, 1], np.hstack(([0], sf_dist.cumsum())), np.log2(sf_bins))
    return sf, ori, phase, nx, ny


def gabor_kernel(frequency, sigma_x, sigma_y, theta=0, offset=0, ks=61):
    w = ks // 2
    grid = torch.arange(-w, w + 1, dtype=torch.float)
    x, y = torch.meshgrid(grid, grid, indexing="ij")
    rotx = x * np.cos(theta) + y * np.sin(theta)
    roty = -x * np.sin(theta) + y * np.cos(theta)
    g = torch.exp(-0.5 * (rotx ** 2 / sigma_x ** 2 + roty ** 2 / sigma_y ** 2))
    g /= 2 * np.pi * sigma_x * sigma_y
    g *= torch.cos(2 * np.pi * frequency * rotx + offset)
    return g


def bank(sf, theta, phase, nx, ny, ppd, ks, phase_offset, channels):
    f = sf / ppd
    w = torch.zeros((len(sf), 3, ks, ks))
    for i in range(len(sf)):
        w[i, channels[i]] = gabor_kernel(f[i], nx[i] / f[i], ny[i] / f[i], theta[i] / 180 * np.pi,
                                         phase[i] / 180 * np.pi + phase_offset, ks)
    return w


def vone(q0, q1, simple, k_exc=25.0):
    c = torch.sqrt(q0[:, simple:] ** 2 + q1[:, simple:] ** 2) / np.sqrt(2)
    s = F.relu(q0[:, :simple])
    return F.relu(k_exc * torch.cat((s, c), 1))  # noise None: the final ReLU only


def main():
    out = []
    configs = {"default": dict(features=512, seed=0, sf_corr=0.75, sf_max=9, sf_min=0),
               "alt": dict(features=64, seed=7, sf_corr=-0.3, sf_max=5.6, sf_min=0.7),
               "uncorrelated": dict(features=32, seed=3, sf_corr=0.0, sf_max=9, sf_min=0)}
    params = {}
    for name, cfg in configs.items():
        sf, ori, phase, nx, ny = generate_gabor_param(**cfg)
        params[name] = (sf, ori, phase, nx, ny)
        for key, v in zip(["sf", "theta", "phase", "nx", "ny"], [sf, ori, phase, nx, ny]):
            out.append((f"{name}.{key}", torch.from_numpy(v.astype(np.float64))))

    sf, ori, phase, nx, ny = params["default"]
    g = torch.Generator().manual_seed(11)
    ch0 = torch.randint(0, 3, (512,), generator=g)
    ch1 = torch.randint(0, 3, (512,), generator=g)
    out.append(("bank.channels0", ch0))
    out.append(("bank.channels1", ch1))
    out.append(("bank.q0", bank(sf, ori, phase, nx, ny, 224 / 8, 25, 0.0, ch0)))
    out.append(("bank.q1", bank(sf, ori, phase, nx, ny, 224 / 8, 25, np.pi / 2, ch1)))

    # A small block: 4 simple + 4 complex cells, 7x7 kernels at stride 2 on 16x16 inputs, 32 px over 8 degrees.
    sf, ori, phase, nx, ny = generate_gabor_param(8, seed=5, sf_corr=0.75, sf_max=9, sf_min=0)
    ch0 = torch.randint(0, 3, (8,), generator=g)
    ch1 = torch.randint(0, 3, (8,), generator=g)
    q0w = bank(sf, ori, phase, nx, ny, 4.0, 7, 0.0, ch0)
    q1w = bank(sf, ori, phase, nx, ny, 4.0, 7, np.pi / 2, ch1)
    bott = torch.randn((6, 8, 1, 1), generator=g) * 0.3
    x = (torch.rand((2, 3, 16, 16), generator=g) * 2 - 1).requires_grad_(True)
    b = bott.clone().requires_grad_(True)
    q0 = F.conv2d(x, q0w, None, 2, 3)
    q1 = F.conv2d(x, q1w, None, 2, 3)
    v = vone(q0, q1, 4)
    y = F.conv2d(v, b)
    seed = torch.rand(y.shape, generator=g) * 2 - 1
    y.backward(seed)
    out += [("block.q0", q0w), ("block.q1", q1w), ("block.bottleneck", bott), ("block.x", x.detach()),
            ("block.vone", v.detach()), ("block.out", y.detach()), ("block.seed", seed),
            ("block.grad_x", x.grad), ("block.grad_bottleneck", b.grad)]
    safetensors_io.save(sys.argv[1], out)
    print(f"wrote {len(out)} VOneBlock reference tensors (numpy {np.__version__}, torch {torch.__version__}) to {sys.argv[1]}")


if __name__ == "__main__":
    main()
