#!/usr/bin/env python3
"""Writes PyTorch reference results for the op table of tests/support/op_cases.hpp.

For every case: the inputs (f32), the buffers (BN running statistics, labels, soft targets), the upstream
gradient, torch's output, the gradient of every differentiable input, and the buffers after the call.
Keys: "<case>.in<i>", "<case>.buf<i>", "<case>.seed", "<case>.out", "<case>.grad<i>", "<case>.buf_after<i>".
The case list mirrors op_cases() by name, shape and parameters; the C++ test fails on any missing key.
"""
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import safetensors_io  # noqa: E402

torch.set_num_threads(1)
torch.manual_seed(20261126)


def uniform(shape, lo=-1.0, hi=1.0):
    return torch.empty(shape, dtype=torch.float32).uniform_(lo, hi)


def probabilities(n, k):
    p = torch.empty((n, k), dtype=torch.float64).uniform_(0.05, 1.0)
    return (p / p.sum(1, keepdim=True)).float()


def make_input(shape, kind):
    if kind == "param":
        return uniform(shape, 0.5, 1.5)
    if kind == "probs":
        return probabilities(*shape)
    if kind == "log_probs":
        return probabilities(*shape).log()
    return uniform(shape)


def make_buffer(shape, kind, classes=0):
    if kind == "running_mean":
        return uniform(shape, -0.5, 0.5)
    if kind == "running_var":
        return uniform(shape, 0.5, 2.0)
    if kind == "labels":
        return torch.randint(0, classes, shape, dtype=torch.int64)
    if kind == "groups":  # op_cases.hpp's group_map: column k in group k % classes, the last in none
        g = torch.arange(shape[0], dtype=torch.int64) % classes
        if shape[0] > classes:
            g[-1] = -1
        return g
    if kind == "noise":
        return uniform(shape, -2.0, 2.0)
    return probabilities(*shape)


CASES = []


def case(name, inputs, buffers, fn):
    CASES.append((name, inputs, buffers, fn, []))


def specials(values):
    """Marks the last case as a NaN/Inf case (op_cases.hpp's special_value): (slot, flat index, value[,
    buffer]) written over its drawn inputs (buffers) after the draw."""
    CASES[-1][4].extend(values)


def conv(name, x, w, bias, stride, pad, dilation=1, groups=1):
    ins = [(x, "activation"), (w, "weight")] + ([((w[0],), "weight")] if bias else [])
    case(name, ins, [], lambda v, b: F.conv2d(v[0], v[1], v[2] if bias else None, stride, pad, dilation, groups))


conv("conv3x3_bias", (2, 3, 7, 6), (4, 3, 3, 3), True, 1, 1)
conv("conv3x3_stride2", (1, 4, 9, 9), (6, 4, 3, 3), False, 2, 1)
conv("conv3x3_dilated", (2, 3, 8, 8), (5, 3, 3, 3), False, 1, 2, 2)
conv("conv7x7_stem", (1, 3, 11, 11), (4, 3, 7, 7), False, 2, 3)
conv("conv3x3_groups32", (1, 64, 5, 5), (64, 2, 3, 3), False, 1, 1, 1, 32)
conv("conv1x1_groups32_bias", (2, 64, 3, 3), (128, 2, 1, 1), True, 1, 0, 1, 32)
conv("conv1x1_odd", (3, 5, 3, 5), (7, 5, 1, 1), False, 1, 0)


def bn(name, x, training=True, relu=False):
    c = (x[1],)
    def fn(v, b):
        y = F.batch_norm(v[0], b[0], b[1], v[1], v[2], training=training, momentum=0.1, eps=1e-5)
        return F.relu(y) if relu else y
    case(name, [(x, "activation"), (c, "param"), (c, "param")], [(c, "running_mean"), (c, "running_var")], fn)


bn("bn_train", (3, 4, 5, 5))
bn("bn_train_relu", (2, 6, 3, 4), relu=True)
bn("bn_eval", (2, 4, 3, 3), training=False)
bn("bn_eval_relu", (2, 4, 3, 3), training=False, relu=True)
bn("bn_2d", (6, 5))
bn("bn_batch1", (1, 3, 4, 4))


def unary(name, x, fn):
    case(name, [(x, "activation")], [], lambda v, b: fn(v[0]))


unary("relu", (2, 3, 4, 5), F.relu)
unary("sigmoid", (2, 3, 4, 5), torch.sigmoid)
unary("max_pool3x3_s2_p1", (2, 3, 9, 8), lambda x: F.max_pool2d(x, 3, 2, 1))
unary("max_pool3x3_s2_p1_b1", (1, 2, 7, 7), lambda x: F.max_pool2d(x, 3, 2, 1))
unary("avg_pool2x2_s2", (2, 3, 8, 6), lambda x: F.avg_pool2d(x, 2, 2))
unary("avg_pool3x3_s3_odd", (1, 2, 7, 10), lambda x: F.avg_pool2d(x, 3, 3))
unary("global_avg_pool", (2, 5, 4, 3), lambda x: x.mean((2, 3)))
case("add", [((2, 3, 4, 5), "activation")] * 2, [], lambda v, b: v[0] + v[1])
case("mul", [((2, 3, 4, 5), "activation")] * 2, [], lambda v, b: v[0] * v[1])
case("gated_update", [((2, 8, 3, 3), "activation")] * 4, [], lambda v, b: v[0] + torch.sigmoid(v[1] + v[2]) * v[3])
for name in ("gated_update_long", "gated_update_gate_only", "gated_update_y_only"):
    case(name, [((1, 3, 41, 37), "activation")] * 4, [], lambda v, b: v[0] + torch.sigmoid(v[1] + v[2]) * v[3])
case("linear", [((3, 10), "activation"), ((4, 10), "weight"), ((4,), "weight")], [], lambda v, b: F.linear(v[0], v[1], v[2]))
case("linear_nobias", [((1, 6), "activation"), ((5, 6), "weight")], [], lambda v, b: F.linear(v[0], v[1]))
unary("softmax", (3, 7), lambda x: F.softmax(x, 1))
unary("log_softmax", (3, 7), lambda x: F.log_softmax(x, 1))


def ce(name, soft, smoothing):
    buf = [((4, 5), "probs")] if soft else [((4,), "labels", 5)]
    case(name, [((4, 5), "activation")], buf, lambda v, b: F.cross_entropy(v[0], b[0], label_smoothing=smoothing))


ce("cross_entropy", False, 0.0)
ce("cross_entropy_smoothing", False, 0.1)
ce("cross_entropy_soft", True, 0.0)
ce("cross_entropy_soft_smoothing", True, 0.2)
case("kl_div", [((4, 6), "log_probs"), ((4, 6), "probs")], [], lambda v, b: F.kl_div(v[0], v[1], reduction="batchmean"))



def jensen_shannon(x, views):
    """AugMix's JSD (google-research/augmix imagenet.py) generalised to V views stacked along dim 0."""
    ps = [F.softmax(c, dim=1) for c in x.chunk(views, 0)]
    mixture = torch.clamp(sum(ps) / views, 1e-7, 1).log()
    return sum(F.kl_div(mixture, p, reduction="batchmean") for p in ps) / views


case("jensen_shannon", [((6, 5), "activation")], [], lambda v, b: jensen_shannon(v[0], 3))
case("jensen_shannon_two_views", [((4, 7), "activation")], [], lambda v, b: jensen_shannon(v[0], 2))
case("jensen_shannon_saturated", [((6, 9), "activation")], [], lambda v, b: jensen_shannon(v[0] * 32, 3))


def group_logsumexp(x, groups, count):
    return torch.stack([torch.logsumexp(x[:, groups == s], dim=1) for s in range(count)], dim=1)


case("group_logsumexp", [((3, 7), "activation")], [((7,), "groups", 3)], lambda v, b: group_logsumexp(v[0], b[0], 3))


def sk(name, b, M):
    def fn(v, _):
        n, c = b[0], b[1]
        a = v[M].reshape(n, M, c).softmax(1)
        return sum(a[:, m, :, None, None] * v[m] for m in range(M))
    case(name, [(b, "activation")] * M + [((b[0], M * b[1]), "activation")], [], fn)


sk("sk_select_m2", (2, 6, 3, 4), 2)
sk("sk_select_m3_b1", (1, 4, 2, 3), 3)


def vone_response(q0, q1, simple, eps, mode, k_exc, scale=0.35, level=0.07):
    """VOneNet's VOneBlock.gabors_f + noise_f (vonenet/modules.py) with q1 holding the complex channels only."""
    c = torch.sqrt(q0[:, simple:] ** 2 + q1 ** 2) / math.sqrt(2)
    x = k_exc * torch.cat((F.relu(q0[:, :simple]), c), 1)
    if mode == "neuronal":
        x = x * scale + level
        x = x + eps * torch.sqrt(F.relu(x) + 1e-4)
        x = (x - level) / scale
    elif mode == "gaussian":
        x = x + eps * scale
    return F.relu(x)


def vone(name, q0, simple, mode, k_exc):
    q1 = (q0[0], q0[1] - simple, q0[2], q0[3])
    bufs = [(q0, "noise")] if mode else []
    case(name, [(q0, "activation"), (q1, "activation")], bufs,
         lambda v, b: vone_response(v[0], v[1], simple, b[0] if b else None, mode, k_exc))


vone("vone_response", (2, 6, 3, 4), 3, None, 25.0)
vone("vone_response_neuronal", (2, 6, 3, 4), 3, "neuronal", 25.0)
vone("vone_response_gaussian", (2, 5, 2, 3), 2, "gaussian", 2.0)
vone("vone_response_complex_only", (1, 4, 2, 3), 0, "neuronal", 3.0)
unary("cast_bf16_roundtrip", (2, 3, 4, 5), lambda x: x.to(torch.bfloat16).to(x.dtype))
# New cases go last: the inputs come from one seeded stream, so a case inserted above would change the
# inputs of every case after it.
bn("bn_train_relu_c16", (2, 16, 3, 4), relu=True)
bn("bn_eval_relu_c16", (2, 16, 4, 4), training=False, relu=True)
unary("max_pool3x3_s2_p1_c16", (2, 16, 9, 8), lambda x: F.max_pool2d(x, 3, 2, 1))
unary("avg_pool3x3_s2_p1_c16", (2, 16, 7, 7), lambda x: F.avg_pool2d(x, 3, 2, 1))
bn("bn_train_relu_c48", (2, 48, 3, 5), relu=True)


def sync_bn_twin(name, x, relu=False):
    """The synchronised batch norm with a twin rank holding the same batch: torch's batch norm of [x; x]
    (statistics over both, running variance with the doubled count) read on the first half; the
    gradient flows into x through both copies, as the twin's sums carry it in the C++ op."""
    c = (x[1],)
    def fn(v, b):
        y = F.batch_norm(torch.cat([v[0], v[0]]), b[0], b[1], v[1], v[2], training=True, momentum=0.1, eps=1e-5)
        y = y[: v[0].shape[0]]
        return F.relu(y) if relu else y
    case(name, [(x, "activation"), (c, "param"), (c, "param")], [(c, "running_mean"), (c, "running_var")], fn)


sync_bn_twin("sync_bn_twin", (3, 4, 5, 5))
sync_bn_twin("sync_bn_twin_relu", (2, 6, 3, 4), relu=True)
sync_bn_twin("sync_bn_twin_2d", (1, 5))

def paired_bn(name, x, training=True, relu=False, uses=0):
    """Two batch norms of the same input (ops::paired_batch_norm), combined as ya + yb * yb (uses 0), or
    one output alone: ya * ya (1), yb (2)."""
    c = (x[1],)
    def fn(v, b):
        ya = F.batch_norm(v[0], b[0], b[1], v[1], v[2], training=training, momentum=0.1, eps=1e-5)
        yb = F.batch_norm(v[0], b[2], b[3], v[3], v[4], training=training, momentum=0.1, eps=1e-5)
        if relu:
            ya, yb = F.relu(ya), F.relu(yb)
        return ya * ya if uses == 1 else yb if uses == 2 else ya + yb * yb
    case(name, [(x, "activation")] + [(c, "param")] * 4,
         [(c, "running_mean"), (c, "running_var"), (c, "running_mean"), (c, "running_var")], fn)


paired_bn("paired_bn_train", (3, 4, 5, 5))
paired_bn("paired_bn_train_relu", (2, 6, 3, 4), relu=True)
paired_bn("paired_bn_train_relu_c16", (2, 16, 3, 4), relu=True)
paired_bn("paired_bn_train_c16_planes", (2, 16, 4, 4))
paired_bn("paired_bn_train_relu_c48", (2, 48, 3, 5), relu=True)
paired_bn("paired_bn_train_relu_first_only", (2, 16, 3, 4), relu=True, uses=1)
paired_bn("paired_bn_train_second_only", (2, 16, 4, 4), uses=2)
paired_bn("paired_bn_eval_relu", (2, 4, 3, 3), training=False, relu=True)

# NaN and +-Inf (op_cases.hpp's *_nonfinite cases, same elements and values).
nan, inf = math.nan, math.inf
unary_specials = [(0, 7, nan), (0, 20, inf), (0, 33, -inf), (0, 90, nan), (0, 91, 0.0)]
unary("relu_nonfinite", (2, 3, 4, 5), F.relu)
specials(unary_specials)
unary("sigmoid_nonfinite", (2, 3, 4, 5), torch.sigmoid)
specials(unary_specials)
bn_train_specials = [(0, 4, nan), (0, 54, inf), (2, 3, nan)]
bn("bn_train_nonfinite", (2, 4, 3, 3))
specials(bn_train_specials)
bn("bn_train_relu_nonfinite", (2, 4, 3, 3), relu=True)
specials(bn_train_specials)
bn_eval_specials = [(0, 4, nan), (0, 54, inf), (0, 30, -inf), (1, 1, nan), (1, 2, inf, True)]
bn("bn_eval_nonfinite", (2, 4, 3, 3), training=False)
specials(bn_eval_specials)
bn("bn_eval_relu_nonfinite", (2, 4, 3, 3), training=False, relu=True)
specials(bn_eval_specials)
bn("bn_train_relu_c16_nonfinite", (2, 16, 3, 4), relu=True)
specials([(0, 41, nan), (0, 300, -inf), (1, 12, nan)])
bn("bn_eval_relu_c16_nonfinite", (2, 16, 4, 4), training=False, relu=True)
specials([(0, 53, nan), (0, 407, inf), (0, 160, -inf), (1, 12, nan)])
unary("max_pool3x3_s2_p1_nonfinite", (1, 2, 7, 7), lambda x: F.max_pool2d(x, 3, 2, 1))
specials([(0, 0, nan), (0, 8, nan), (0, 24, nan), (0, 40, inf), (0, 49, -inf), (0, 50, -inf), (0, 56, -inf),
          (0, 57, -inf), (0, 97, -inf)])
unary("max_pool3x3_s2_p1_c16_nonfinite", (2, 16, 9, 8), lambda x: F.max_pool2d(x, 3, 2, 1))
specials([(0, 387, nan), (0, 1908, inf), (0, 1899, nan), (0, 100, -inf)])
unary("avg_pool3x3_s3_nonfinite", (1, 2, 7, 10), lambda x: F.avg_pool2d(x, 3, 3))
specials([(0, 11, nan), (0, 14, inf), (0, 25, -inf), (0, 117, inf)])
unary("avg_pool3x3_s2_p1_c16_nonfinite", (2, 16, 7, 7), lambda x: F.avg_pool2d(x, 3, 2, 1))
specials([(0, 106, nan), (0, 1151, inf)])
unary("global_avg_pool_nonfinite", (2, 5, 4, 3), lambda x: x.mean((2, 3)))
specials([(0, 5, nan), (0, 13, inf), (0, 14, -inf), (0, 87, inf)])
case("add_nonfinite", [((2, 3, 4, 5), "activation")] * 2, [], lambda v, b: v[0] + v[1])
specials([(0, 3, nan), (0, 10, inf), (1, 10, -inf), (1, 20, inf)])
case("mul_nonfinite", [((2, 3, 4, 5), "activation")] * 2, [], lambda v, b: v[0] * v[1])
specials([(0, 3, nan), (0, 10, 0.0), (1, 10, inf), (1, 20, -inf)])
gate_specials = [(1, 1, inf), (1, 2, -inf), (1, 3, inf), (2, 3, -inf), (1, 4, nan), (1, 5, -inf), (3, 5, inf),
                 (0, 6, nan), (3, 7, nan), (0, 8, inf), (1, 9, inf), (3, 9, inf)]
case("gated_update_nonfinite", [((2, 8, 3, 3), "activation")] * 4, [],
     lambda v, b: v[0] + torch.sigmoid(v[1] + v[2]) * v[3])
specials(gate_specials)
case("gated_update_long_nonfinite", [((1, 3, 41, 37), "activation")] * 4, [],
     lambda v, b: v[0] + torch.sigmoid(v[1] + v[2]) * v[3])
specials(gate_specials + [(s, i + 4096 + 17, x) for s, i, x in gate_specials] + [(1, 4550, -inf), (3, 4550, inf)])
conv("conv3x3_bias_nonfinite", (2, 3, 7, 6), (4, 3, 3, 3), True, 1, 1)
specials([(0, 62, nan), (0, 126, inf), (1, 31, nan), (2, 2, inf)])
case("linear_nonfinite", [((3, 10), "activation"), ((4, 10), "weight"), ((4,), "weight")], [],
     lambda v, b: F.linear(v[0], v[1], v[2]))
specials([(0, 5, nan), (1, 12, inf), (2, 3, nan)])
row_specials = [(0, 2, nan), (0, 10, inf), (0, 18, -inf)] + [(0, k, -inf) for k in range(28, 35)]
unary("softmax_nonfinite", (5, 7), lambda x: F.softmax(x, 1))
specials(row_specials)
unary("log_softmax_nonfinite", (5, 7), lambda x: F.log_softmax(x, 1))
specials(row_specials)
labels = [(0, 0, 1, True), (0, 1, 2, True), (0, 2, 0, True), (0, 3, 4, True)]
ce("cross_entropy_neginf", False, 0.0)
specials([(0, 3, -inf), (0, 11, -inf)] + labels)
ce("cross_entropy_smoothing_neginf", False, 0.1)
specials([(0, 3, -inf), (0, 11, -inf)] + labels)
ce("cross_entropy_nonfinite", False, 0.0)
specials([(0, 5, nan), (0, 12, inf)] + labels)
ce("cross_entropy_soft_neginf", True, 0.0)
specials([(0, 3, -inf), (0, 3, 0.0, True)])
case("kl_div_nonfinite", [((4, 6), "log_probs"), ((4, 6), "probs")], [],
     lambda v, b: F.kl_div(v[0], v[1], reduction="batchmean"))
specials([(0, 2, nan), (1, 13, nan), (0, 20, -inf), (1, 20, 0.0)])
case("kl_div_neginf", [((4, 6), "log_probs"), ((4, 6), "probs")], [],
     lambda v, b: F.kl_div(v[0], v[1], reduction="batchmean"))
specials([(0, 9, -inf)])
case("jensen_shannon_nonfinite", [((6, 5), "activation")], [], lambda v, b: jensen_shannon(v[0], 3))
specials([(0, 7, nan)])
case("jensen_shannon_neginf", [((6, 5), "activation")], [], lambda v, b: jensen_shannon(v[0], 3))
specials([(0, 11, -inf)])
case("group_logsumexp_nonfinite", [((3, 7), "activation")], [((7,), "groups", 3)],
     lambda v, b: group_logsumexp(v[0], b[0], 3))
specials([(0, 1, inf), (0, 7, -inf), (0, 10, -inf), (0, 16, nan), (0, 20, nan)])
sk("sk_select_m2_nonfinite", (2, 6, 3, 4), 2)
specials([(0, 17, nan), (1, 120, inf), (2, 2, nan), (2, 18, inf), (2, 9, -inf), (1, 36, inf)])
vone_specials = [(0, 1, nan), (0, 14, -inf), (0, 27, inf), (0, 40, nan), (1, 53, inf)]
vone("vone_response_nonfinite", (2, 6, 3, 4), 3, None, 25.0)
specials(vone_specials)
vone("vone_response_neuronal_nonfinite", (2, 6, 3, 4), 3, "neuronal", 25.0)
specials(vone_specials + [(0, 100, nan, True)])
vone("vone_response_gaussian_nonfinite", (2, 5, 2, 3), 2, "gaussian", 2.0)
specials([(0, 1, nan), (0, 7, inf), (1, 20, nan), (0, 40, -inf, True)])
unary("cast_bf16_roundtrip_nonfinite", (2, 3, 4, 5), lambda x: x.to(torch.bfloat16).to(x.dtype))
specials([(0, 3, nan), (0, 4, inf), (0, 5, -inf), (0, 6, 3.4e38), (0, 7, -3.39e38)])


def main():
    out = []
    for name, inputs, buffers, fn, special in CASES:
        ins = [make_input(s, k) for s, k in inputs]
        bufs = [make_buffer(*spec) for spec in buffers]
        for slot, index, value, *buffer in special:
            t = bufs[slot] if buffer and buffer[0] else ins[slot]
            t.view(-1)[index] = value
        for i, t in enumerate(ins):
            out.append((f"{name}.in{i}", t.clone()))
        for i, t in enumerate(bufs):
            out.append((f"{name}.buf{i}", t.clone()))
        leaves = [t.clone().requires_grad_(True) for t in ins]
        y = fn(leaves, bufs)
        seed = uniform(tuple(y.shape))
        y.backward(seed)
        out.append((f"{name}.seed", seed))
        out.append((f"{name}.out", y))
        for i, t in enumerate(leaves):  # an input the output does not use gets zeros, as grcnn's ops give
            out.append((f"{name}.grad{i}", t.grad if t.grad is not None else torch.zeros_like(t)))
        for i, t in enumerate(bufs):
            out.append((f"{name}.buf_after{i}", t))
    safetensors_io.save(sys.argv[1], out)
    print(f"wrote {len(CASES)} cases ({len(out)} tensors) with torch {torch.__version__} to {sys.argv[1]}")


if __name__ == "__main__":
    main()
