#!/usr/bin/env python3
"""tools/plot_scores.py on real and synthetic grcnn-score --out JSON:

  check_plot_scores.py PLOT_SCORES WORK_DIR [SCORES.json ...]

1. the real outputs in tests/data (grcnn-score on hvm-mini V4/IT with the main job's flags, scoring the
   grcnn_small that tests/check_score.py trains for 30 steps: neural_scores.json with the main job's
   --layers stage_1,stage_2,stage_3; neural_scores_every_step.json with --every-step --layers
   stage_1.state,stage_2.state,stage_3.state,stage_1.conv_g_r,stage_3), any further JSON given
   on the command line (e.g. a fresh grcnn-score run), and synthetic ones written as the C++ writer
   writes them (sorted keys, NaN as null; several checkpoints, V1/V2/V4/IT, rsa, r^2/c, many layers,
   SKConv-like names ending in numbers) each give a valid PNG of sane size that is not blank, the
   same bytes twice, at the default path beside the JSON when -o is left out;
2. --every-step draws a different picture from the same JSON (steps on the x axis);
3. bad input (missing file, not JSON, not UTF-8, fields missing or of the wrong type, no per-step
   scores for --every-step, an output in a missing folder or on a folder) fails with exit status 1
   and one line naming the problem (the field and where), and leaves no PNG: neither a new one nor
   a temporary file, and an existing PNG at the output path unchanged.
"""
import copy
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))
from cli_check import check  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import numpy as np  # noqa: E402

tool, work = sys.argv[1], Path(sys.argv[2])
extra = [Path(p) for p in sys.argv[3:]]
shutil.rmtree(work, ignore_errors=True)
work.mkdir(parents=True)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run(args):
    return subprocess.run([sys.executable, tool] + [str(a) for a in args], capture_output=True, text=True)


def plot_ok(args, out, what):
    """Runs the tool, requires success and a sane PNG at out; returns the pixels."""
    if out.exists():
        out.unlink()
    p = run(args)
    check(p.returncode == 0 and f"wrote {out}" in p.stdout and out.is_file(),
          f"{what}: exit status 0, says it wrote {out.name}, and did"
          + ("" if p.returncode == 0 else f" (exit status {p.returncode}: {p.stderr.strip()!r})"))
    data = out.read_bytes()
    check(data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", f"{what}: {out.name} is a PNG")
    w, h = struct.unpack(">II", data[16:24])
    pixels = mpimg.imread(str(out))
    rgb = pixels[..., :3]
    ink = float(np.mean(np.any(rgb < 0.9, axis=-1)))  # share of pixels that are not (near) white
    colours = len(np.unique((rgb.reshape(-1, 3) * 255).astype(np.uint8), axis=0))
    leftovers = [f.name for f in out.parent.iterdir() if f.name.endswith(".tmp")]
    check(400 <= w <= 4000 and 300 <= h <= 4000 and pixels.shape[:2] == (h, w) and 0.01 < ink < 0.6 and colours > 20
          and not leftovers,
          f"{what}: {w}x{h} px (400-4000 x 300-4000), decodes, {100 * ink:.1f}% inked (1-60%), {colours} colours (> 20),"
          f" no temporary file left {leftovers}")
    return pixels


def plot_fails(args, out, needle, what):
    """Runs the tool, requires exit status 1, one line naming the problem, no PNG."""
    before = out.read_bytes() if out.exists() else None
    p = run(args)
    lines = p.stderr.strip().splitlines()
    problems = []
    if p.returncode != 1:
        problems.append(f"exit status {p.returncode}, not 1")
    if len(lines) != 1 or not lines[0].startswith("plot_scores: ") or "Traceback" in p.stderr:
        problems.append("not one line starting 'plot_scores: '")
    elif needle not in lines[0]:
        problems.append(f"the message lacks {needle!r}")
    if before is None and out.exists():
        problems.append(f"{out.name} was written")
    if before is not None and (not out.exists() or out.read_bytes() != before):
        problems.append(f"the {out.name} already there was changed")
    if out.parent.is_dir() and any(f.name.endswith(".tmp") for f in out.parent.iterdir()):
        problems.append("a temporary file was left")
    check(not problems, f"{what}: refused ({p.stderr.strip()!r})" + (f": {'; '.join(problems)}" if problems else ""))


def write(name, doc):
    """As grcnn-score writes: nlohmann's dump(2) (keys sorted), NaN as null."""
    path = work / name
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return path


def layer(name, raw, error, ceiling, metric="pls", convention="squared"):
    if raw is None:
        ceiled = None
    elif metric in ("rsa", "cka"):
        ceiled = raw / ceiling
    else:
        ceiled = (raw / ceiling) ** 2 if convention == "squared" else raw * raw / ceiling
    return {"layer": name, "raw": raw, "error": error, "ceiling": ceiling, "ceiled": ceiled,
            "per_split": [] if raw is None else [raw - error, raw + error]}


def model(weights, layers_per_region):
    """layers_per_region: {region: [layer dicts]}; the best is the highest ceiled."""
    regions = {}
    for region, layers in layers_per_region.items():
        scored = [s for s in layers if s["ceiled"] is not None]
        best = max(scored, key=lambda s: s["ceiled"]) if scored else {"layer": layers[0]["layer"], "ceiled": None,
                                                                          "raw": None, "error": None, "per_split": []}
        regions[region] = {"best": best["layer"], "ceiled": best["ceiled"], "raw": best["raw"], "error": best["error"],
                           "per_split": best["per_split"], "layers": layers}
    return {"weights": weights, "regions": regions}


def run_doc(models, ceilings, metric="pls", convention="squared"):
    return {"arch": "grcnn55", "metric": metric, "ceiling_convention": convention, "degrees": 8.0, "model_degrees": 8.0,
            "assembly": "data/hvm-mini/majaj2015_subset.nc", "pca": 0, "models": models,
            "regions": {r: {"ceiling": c, "neuroids": 88, "stimuli": 25, "splits": 10} for r, c in ceilings.items()}}


rng = np.random.default_rng(0)
ceil = {"V1": 0.7, "V2": 0.65, "V4": 0.79, "IT": 0.75}


def scores(names, region, **kw):
    return [layer(n, float(rng.uniform(-0.1, 0.6)), float(rng.uniform(0.02, 0.1)), ceil[region], **kw) for n in names]


# --- 1. real outputs and synthetic ones: a valid, sane, deterministic PNG --------------------------------------
real = [here / "data" / "neural_scores.json", here / "data" / "neural_scores_every_step.json"] + extra
for src in real:
    check(src.is_file(), f"real grcnn-score output {src} is there")
    dst = work / ("real_" + src.name)
    shutil.copyfile(src, dst)
    first = plot_ok([dst, "-o", work / (dst.stem + ".png")], work / (dst.stem + ".png"), f"real {src.name}")
    again = work / (dst.stem + "_again.png")
    plot_ok([dst, "-o", again], again, f"real {src.name}, again")
    check(again.read_bytes() == (work / (dst.stem + ".png")).read_bytes(), f"real {src.name}: the same PNG twice")

grcl = ["layer1", "layer2", "layer3.conv_f", "layer3", "layer4"]
synthetic = {
    "one_region": run_doc([model("runs/a/best.safetensors", {"V4": scores(grcl, "V4")})], {"V4": ceil["V4"]}),
    "four_regions_nan": run_doc([model("best.safetensors", {
        "V1": scores(grcl[:2], "V1"), "V2": scores(grcl[:3], "V2"),
        "IT": [layer("layer3", None, None, ceil["IT"])] + scores(["layer4"], "IT"),  # a NaN score is null
        "V4": scores(grcl, "V4")})], ceil),
    "two_checkpoints": run_doc([model(f"runs/{k}/best.safetensors", {"V4": scores(grcl, "V4"), "IT": scores(grcl, "IT")})
                                for k in ("a", "b")], {"V4": ceil["V4"], "IT": ceil["IT"]}),
    "rsa": run_doc([model("w.safetensors", {"IT": scores(grcl, "IT", metric="rsa")})], {"IT": ceil["IT"]}, metric="rsa"),
    "explained_variance": run_doc([model("w.safetensors", {"V4": scores(grcl, "V4", convention="explained-variance")})],
                                  {"V4": ceil["V4"]}, convention="explained-variance"),
    "many_layers": run_doc([model("w.safetensors", {"IT": scores([f"layer{b}.iter_{t}.{k}" for b in (1, 2)
                                                                  for t in (1, 2, 3) for k in (0, 4, 8)], "IT")})],
                           {"IT": ceil["IT"]}),
}
steps = {"V4": [], "IT": []}
for region in steps:
    for base, n in (("layer1.conv_g_r", 4), ("layer2.state", 4), ("layer3.conv_g_r", 4)):
        steps[region] += scores([f"{base}.{t}" for t in range(n)], region)
    steps[region] += scores(["lastact.0", "lastact.1", "layer2.iter_3.8", "layer4"], region)  # numbers, no steps
all_null = copy.deepcopy(steps)  # every score NaN (null), ceilings too: empty panels, still a picture
for region in all_null.values():
    for s in region:
        s.update(raw=None, error=None, ceiling=None, ceiled=None, per_split=[])
synthetic["all_null"] = run_doc([model("w.safetensors", all_null)], {"V4": None, "IT": None})
synthetic["every_step"] = run_doc([model("w.safetensors", steps)], {"V4": ceil["V4"], "IT": ceil["IT"]})
synthetic["every_step_two"] = run_doc([model(f"{k}.safetensors", copy.deepcopy(steps)) for k in ("a", "b")],
                                      {"V4": ceil["V4"], "IT": ceil["IT"]})
for name, doc in synthetic.items():
    path = write(name + ".json", doc)
    plot_ok([path], work / (name + ".png"), f"synthetic {name}, default output beside the JSON")

# --- 2. --every-step: a different picture, named apart by default -------------------------------------------------
for src in [work / "real_neural_scores_every_step.json", work / "every_step.json", work / "every_step_two.json",
            work / "all_null.json"]:
    by_layer = mpimg.imread(str(work / (src.stem + ".png")))
    by_step = plot_ok([src, "--every-step"], work / (src.stem + "_steps.png"), f"{src.name} --every-step, default name")
    check(by_layer.shape != by_step.shape or float(np.abs(by_layer - by_step).mean()) > 0.01,
          f"{src.name}: --every-step draws a different picture")
    if src.name.startswith("real_"):
        again = work / (src.stem + "_steps_again.png")
        plot_ok([src, "--every-step", "-o", again], again, f"{src.name} --every-step, again")
        check(again.read_bytes() == (work / (src.stem + "_steps.png")).read_bytes(),
              f"{src.name} --every-step: the same PNG twice")

# --- 3. bad input: one line, exit status 1, no PNG -------------------------------------------------------------------
real_doc = json.loads((here / "data" / "neural_scores.json").read_text())
out = work / "bad.png"


def mutated(name, change):
    doc = copy.deepcopy(real_doc)
    change(doc)
    return write(name, doc)


def drop(*keys):
    def change(doc):
        obj = doc
        for k in keys[:-1]:
            obj = obj[k]
        del obj[keys[-1]]
    return change


def put(value, *keys):
    def change(doc):
        obj = doc
        for k in keys[:-1]:
            obj = obj[k]
        obj[keys[-1]] = value
    return change


(work / "empty.json").write_text("")
(work / "truncated.json").write_text((here / "data" / "neural_scores.json").read_text()[:700])
(work / "latin1.json").write_bytes(b'{"arch": "gr\xe9cnn"}')
(work / "array.json").write_text("[1, 2]\n")
(work / "infinity.json").write_text((here / "data" / "neural_scores.json").read_text().replace('"raw": 0.', '"raw": Infinity, "x": 0.', 1))
cases = [
    (work / "missing.json", "no such file: " + str(work / "missing.json"), "a missing file"),
    (work, "not a file", "a folder as input"),
    (work / "empty.json", "empty.json: not JSON", "an empty file"),
    (work / "truncated.json", "truncated.json: not JSON", "a truncated file"),
    (work / "latin1.json", "not UTF-8", "a file that is not UTF-8"),
    (work / "array.json", "top level: not a JSON object", "a JSON array"),
    (work / "infinity.json", "Infinity is not JSON", "an Infinity literal (not JSON)"),
    (mutated("no_models.json", drop("models")), "top level: no 'models' list", "no 'models'"),
    (mutated("empty_models.json", put([], "models")), "'models' is empty", "no checkpoint"),
    (mutated("no_weights.json", drop("models", 0, "weights")), "models[0]: no 'weights'", "no 'weights'"),
    (mutated("num_weights.json", put(3, "models", 0, "weights")), "models[0]: 'weights' is not a string",
     "'weights' not a string"),
    (mutated("no_regions.json", drop("models", 0, "regions")), "models[0]: no 'regions'", "no 'regions'"),
    (mutated("no_layers.json", drop("models", 0, "regions", "V4", "layers")), "models[0].regions.V4: no 'layers'",
     "a region without 'layers'"),
    (mutated("empty_layers.json", put([], "models", 0, "regions", "IT", "layers")),
     "models[0].regions.IT: 'layers' is empty", "a region with no layer scores"),
    (mutated("no_raw.json", drop("models", 0, "regions", "IT", "layers", 1, "raw")),
     "models[0].regions.IT.layers[1]: no 'raw'", "a layer without 'raw'"),
    (mutated("no_error.json", drop("models", 0, "regions", "V4", "layers", 2, "error")),
     "models[0].regions.V4.layers[2]: no 'error'", "a layer without 'error'"),
    (mutated("no_ceiling.json", drop("models", 0, "regions", "V4", "layers", 0, "ceiling")),
     "models[0].regions.V4.layers[0]: no 'ceiling'", "a layer without 'ceiling'"),
    (mutated("text_ceiled.json", put("0.2", "models", 0, "regions", "V4", "layers", 0, "ceiled")),
     "models[0].regions.V4.layers[0]: 'ceiled' is not a number", "a text score"),
    (mutated("bool_raw.json", put(True, "models", 0, "regions", "V4", "layers", 0, "raw")),
     "models[0].regions.V4.layers[0]: 'raw' is not a number", "a boolean score"),
    (mutated("no_name.json", drop("models", 0, "regions", "V4", "layers", 0, "layer")),
     "models[0].regions.V4.layers[0]: no 'layer'", "a layer without a name"),
    (mutated("layer_not_object.json", put([1], "models", 0, "regions", "V4", "layers", 0)),
     "models[0].regions.V4.layers[0]: not a JSON object", "a layer entry that is no object"),
    (mutated("bad_convention.json", put("linear", "ceiling_convention")), "unknown ceiling_convention 'linear'",
     "an unknown ceiling convention"),
]
for path, needle, what in cases:
    plot_fails([path, "-o", out], out, needle, what)
plot_fails([work / "real_neural_scores.json", "--every-step", "-o", out], out, "--every-step: no per-step scores",
           "--every-step on a run without steps")
plot_fails([work / "real_neural_scores.json", "-o", work / "no_such_folder" / "x.png"], work / "no_such_folder" / "x.png",
           "no folder", "an output in a missing folder")
plot_fails([work / "real_neural_scores.json", "-o", work], work / "real_neural_scores.png", "is a directory",
           "an output that is a folder")
# A failure leaves the PNG already at the output path as it was.
keep = work / "real_neural_scores.png"
plot_fails([work / "no_raw.json", "-o", keep], keep, "no 'raw'", "bad input over an existing PNG")
print("all plot_scores checks passed")
