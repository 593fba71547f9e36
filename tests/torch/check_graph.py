"""grcnn-graph's facts against PyTorch on the independent reference rebuild (grcnn_reference.py).

For each variant: the parameter total, the multiply-adds of every convolution and linear layer (counted
from the modules' shapes by forward hooks) per top-level layer, the output shape of every tap PyTorch has a
module for (each call of a shared module at its call index), and the receptive field: the bounding box of
the input pixels where d(sum of one map's centre unit over channels)/d(input) is non-zero, computed by
torch.autograd in evaluation mode, equals the graph's field of that unit clipped to the image.

usage: check_graph.py GRCNN_GRAPH
"""
import json
import subprocess
import sys

import torch

import grcnn_reference as ref

GRAPH = sys.argv[1]
torch.manual_seed(0)
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL", what)


def layer_of(module_name, blocks):
    top = module_name.split(".")[0]
    if top in blocks:
        return top
    return "head" if top in ("lastact", "classifier", "avgpool") else "stem"


def run(arch, side, classes, rf_taps, dtype=torch.float32):
    facts = json.loads(subprocess.check_output([GRAPH, "--arch", arch, "--size", str(side), "--classes", str(classes),
                                                "--format", "json"]))
    model = ref.build(arch, classes).to(dtype).eval()
    check(sum(p.numel() for p in model.parameters()) == facts["parameters"]["total"], f"{arch}: parameter total")

    # Multiply-adds per top-level layer and every module output at every call.
    macs = {}
    outputs = {}
    hooks = []
    for name, m in model.named_modules():
        if not name:
            continue

        def hook(mod, inp, out, name=name):
            if isinstance(mod, torch.nn.Conv2d):
                k = mod.kernel_size[0] * mod.kernel_size[1]
                n = out[0].numel() * (mod.in_channels // mod.groups) * k
                macs[layer_of(name, model.blocks)] = macs.get(layer_of(name, model.blocks), 0) + n
            elif isinstance(mod, torch.nn.Linear):
                macs["head"] = macs.get("head", 0) + mod.in_features * mod.out_features
            if isinstance(out, torch.Tensor):
                outputs.setdefault(name, []).append(out)
        hooks.append(m.register_forward_hook(hook))
    x = torch.randn(2, 3, side, side, dtype=dtype)
    with torch.no_grad():
        model(x)
    graph_macs = {}
    for n in facts["nodes"]:
        graph_macs[n["layer"]] = graph_macs.get(n["layer"], 0) + n["macs"]
    check(graph_macs == macs, f"{arch}: multiply-adds per layer {graph_macs} vs PyTorch's {macs}")
    check(sum(macs.values()) == facts["macs"], f"{arch}: multiply-adds total")
    matched = 0
    every_name = {n for n, _ in model.named_modules(remove_duplicate=False)}
    # The original registers the transition's ReLUs as modules (spec 1.3); the rebuild calls them functionally.
    every_name |= {f"{b}.{r}" for b in model.blocks for r in ("d_relu", "d_relu_1", "d_relu_3")}
    for t in facts["taps"]:
        # Every tap is a PyTorch module name, or ours: a GRCL's state x_t.
        check(t["name"] in every_name or t["name"].endswith(".state"), f"{arch}: tap {t['name']} is no PyTorch module")
        calls = outputs.get(t["name"])
        if not calls or t["step"] >= len(calls):
            continue  # <layer>.state, a functional op in the reference's forward (relu_f, d_relu, ...), a shared module's second name
        shape = list(calls[t["step"]].shape[1:])
        want = t["output"] if t["name"] != "classifier" else [classes]
        if t["name"] == "classifier":
            shape = [shape[0]]
        check(shape == want, f"{arch}: tap {t['name']} step {t['step']}: {shape} vs {want}")
        matched += 1
    for h in hooks:
        h.remove()
    print(f"{arch} at {side}: parameters, multiply-adds of {len(macs)} layers and {matched} tap shapes agree")

    # Receptive fields from autograd.
    taps = {(t["name"], t["step"]): t for t in facts["taps"]}
    modules = dict(model.named_modules())
    for name, step in rf_taps:
        t = taps[(name, step)]
        seen = []
        h = modules[name].register_forward_hook(lambda m, i, o: seen.append(o))
        xin = torch.randn(2, 3, side, side, dtype=dtype, requires_grad=True)
        model(xin)
        h.remove()
        out = seen[step]
        H, W = out.shape[2], out.shape[3]
        out[:, :, H // 2, W // 2].sum().backward()
        g = xin.grad.abs().sum(dim=(0, 1)) != 0
        rows = torch.nonzero(g.any(dim=1)).flatten()
        cols = torch.nonzero(g.any(dim=0)).flatten()
        measured = [int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())]
        (lo_h, hi_h), (lo_w, hi_w) = t["rf"]["bounds_unit0"]
        jh, jw = t["rf"]["jump"]
        expected = [max(0, lo_h + (H // 2) * jh), min(side - 1, hi_h + (H // 2) * jh),
                    max(0, lo_w + (W // 2) * jw), min(side - 1, hi_w + (W // 2) * jw)]
        check(measured == expected, f"{arch}: field of {name} step {step}: autograd {measured} vs graph {expected}")
        print(f"  {name} step {step}: field {t['rf']['size'][0]} px, unit ({H // 2}, {W // 2}) sees rows "
              f"{measured[0]}-{measured[1]}, columns {measured[2]}-{measured[3]}")


run("grcnn_small", 64, 10, [("conv_3x3", 0), ("stage_1.iter_1.5", 0), ("stage_1", 0), ("stage_2.conv_g_r", 0),
                            ("stage_2.conv_g_r", 1), ("stage_2.iter_2.8", 0), ("stage_3.conv_g_r", 1)], torch.float64)
run("grcnn55", 224, 1000, [("conv1", 0), ("maxpool", 0), ("layer1.conv_g_r", 0), ("layer1.conv_g_r", 2),
                           ("layer1.iter_3.8", 0), ("layer2.conv_g_r", 1), ("layer2", 0)])
run("skgrcnn55", 224, 1000, [])
run("grcnn110_sk_share", 32, 10, [])
if failures:
    print(f"{len(failures)} failures")
    sys.exit(1)
print("grcnn-graph agrees with PyTorch")
