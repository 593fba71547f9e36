#!/usr/bin/env python3
"""Turns a grcnn-score --out JSON (neural_scores.json) into a PNG of the neural predictivity per layer.

  plot_scores.py RUN_DIR/neural_scores.json [-o RUN_DIR/neural_scores.png] [--every-step]

One panel per region (V1, V2, V4, IT, then any others): each candidate layer's raw score (median
Pearson r over neuroids for pls/ridge/linear, the similarity for rsa/cka) and its ceiled score, both
with the standard error of the mean over the cross-validation splits, the region's split-half ceiling
as a dashed line (the bound of the raw score), and a star on the committed (best) layer. The ceiled
score's error bar is the raw SEM carried through the ceiling convention to first order:
(r/c)^2 -> 2|r|/c^2 * SEM, r^2/c -> 2|r|/c * SEM, rsa/cka's r/c -> SEM/c.

--every-step draws the scores of a `grcnn-score --every-step` run against the recurrent time step:
a layer name `<base>.<t>` is step t of <base> (grcnn-score's naming for a module called once per step,
e.g. stage_2.state.0 .. stage_2.state.2, or layer1.conv_g_r.0 ..), one line per GRCL tap, ceiled
scores on top, raw scores with the ceiling below. Layers recorded once (no step suffix) are drawn as
dotted horizontal lines for reference. Several checkpoints in one JSON are drawn side by side (one
colour or line style each).

The PNG is written to a temporary file and renamed, so a failure leaves no partial PNG.
"""
import argparse
import json
import math
import os
import re
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TOOL = "plot_scores"
REGION_ORDER = ["V1", "V2", "V4", "IT"]
CEILING = "split-half ceiling (bound of the raw score)"
# Tap names ending in a number that is part of the module name, not a time step (docs/models.md):
# lastact.0/1, iter_t.k, iter_g_t.0/1, SKConv's conv.m.j and fc1.j.
NOT_A_STEP = re.compile(r"(^|\.)(lastact|iter_\d+|iter_g_\d+|m|fc1)$")


class Bad(Exception):
    """A JSON that is not a grcnn-score --out file; the message names the entry."""


def fail(msg):
    sys.exit(f"{TOOL}: {msg}")


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def num(v):
    """A score; NaN is written as null by the C++ JSON writer."""
    return float("nan") if v is None else float(v)


def field(obj, key, where, kind):
    """obj[key], checked: kind is 'string', 'object', 'list' or 'number' (a number or null)."""
    if not isinstance(obj, dict):
        raise Bad(f"{where}: not a JSON object")
    if key not in obj:
        raise Bad(f"{where}: no '{key}'")
    v = obj[key]
    ok = {"string": isinstance(v, str), "object": isinstance(v, dict), "list": isinstance(v, list),
          "number": v is None or is_num(v)}[kind]
    if not ok:
        article = "an" if kind == "object" else "a"
        raise Bad(f"{where}: '{key}' is not {article} {kind}{' (or null)' if kind == 'number' else ''}")
    return v


def parse(doc):
    """The scores of a grcnn-score --out document, every field used checked first.

    Returns (info, models): info holds arch, metric, convention; each model is
    {"weights": str, "regions": {region: {"best", "best_ceiled", "layers": [{layer, raw, error, ceiling, ceiled}]}}}.
    """
    if not isinstance(doc, dict):
        raise Bad("top level: not a JSON object (not a grcnn-score --out file)")
    if not isinstance(doc.get("models"), list):
        raise Bad("top level: no 'models' list (not a grcnn-score --out file)")
    models_json = doc["models"]
    if not models_json:
        raise Bad("top level: 'models' is empty (no checkpoint was scored)")
    info = {"arch": doc.get("arch") if isinstance(doc.get("arch"), str) else "",
            "metric": doc.get("metric") if isinstance(doc.get("metric"), str) else "pls",
            "convention": "squared"}
    if "ceiling_convention" in doc:
        conv = field(doc, "ceiling_convention", "top level", "string")
        if conv not in ("squared", "explained-variance"):
            raise Bad(f"top level: unknown ceiling_convention '{conv}' (squared or explained-variance)")
        info["convention"] = conv
    models = []
    for i, m in enumerate(models_json):
        where = f"models[{i}]"
        weights = field(m, "weights", where, "string")
        regions_json = field(m, "regions", where, "object")
        if not regions_json:
            raise Bad(f"{where}: 'regions' is empty")
        regions = {}
        for region, r in regions_json.items():
            rwhere = f"{where}.regions.{region}"
            layers_json = field(r, "layers", rwhere, "list")
            if not layers_json:
                raise Bad(f"{rwhere}: 'layers' is empty (no layer scores)")
            layers = []
            for k, s in enumerate(layers_json):
                lwhere = f"{rwhere}.layers[{k}]"
                layers.append({"layer": field(s, "layer", lwhere, "string"),
                               **{key: num(field(s, key, lwhere, "number")) for key in ("raw", "error", "ceiling", "ceiled")}})
            best = r.get("best") if isinstance(r.get("best"), str) else None
            best_ceiled = num(r["ceiled"]) if is_num(r.get("ceiled")) else float("nan")
            regions[region] = {"best": best, "best_ceiled": best_ceiled, "layers": layers}
        models.append({"weights": weights, "regions": regions})
    return info, models


def load(path):
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        fail(f"{path}: not UTF-8 text (not a grcnn-score --out file)")
    except OSError as e:
        fail(f"{path}: cannot read ({e.strerror})")
    def no_constant(name):
        raise ValueError(f"{name} is not JSON (grcnn-score writes a NaN score as null)")
    try:
        doc = json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as e:
        fail(f"{path}: not JSON ({e.msg} at line {e.lineno}, column {e.colno})")
    except RecursionError:
        fail(f"{path}: not a grcnn-score --out file (JSON nested too deeply)")
    except ValueError as e:
        fail(f"{path}: {e}")
    try:
        return parse(doc)
    except Bad as e:
        fail(f"{path}: {e}")


def region_order(names):
    known = [r for r in REGION_ORDER if r in names]
    return known + sorted(n for n in names if n not in REGION_ORDER)


def model_labels(models):
    """Short names of the checkpoints: the file name, or more of the path where names repeat."""
    paths = [Path(m["weights"]) for m in models]
    for depth in range(1, 1 + max(len(p.parts) for p in paths)):
        labels = ["/".join(p.parts[-depth:]) for p in paths]
        if len(set(labels)) == len(labels):
            return labels
    return [f"{i}: {p}" for i, p in enumerate(paths)]


def bars(errors):
    """Error bars for errorbar(); None where none is finite (matplotlib 3.6 fails on all-NaN bars)."""
    errors = [float(e) for e in errors]
    return errors if any(math.isfinite(e) for e in errors) else None


def ceiled_error(s, info):
    """The raw SEM carried through the ceiling to first order (see the module docstring)."""
    r, err, c = s["raw"], s["error"], s["ceiling"]
    if not (c > 0):
        return float("nan")
    if info["metric"] in ("rsa", "cka"):
        return err / c
    if info["convention"] == "squared":
        return 2 * abs(r) / (c * c) * err
    return 2 * abs(r) / c * err


def labels_for(info):
    similarity = info["metric"] in ("rsa", "cka")
    raw = f"raw {info['metric'].upper()}" if similarity else f"raw r ({info['metric'].upper()})"
    if similarity:
        ceiled = "ceiled (raw/c)"
    else:
        ceiled = "ceiled (r/c)²" if info["convention"] == "squared" else "ceiled r²/c"
    return raw, ceiled


def region_ceiling(models, region):
    for m in models:
        for s in m["regions"].get(region, {}).get("layers", []):
            if math.isfinite(s["ceiling"]):
                return s["ceiling"]
    return float("nan")


def split_steps(names):
    """(stepped, single): stepped maps a base name to [(t, full name)] sorted by t, for names `<base>.<t>`
    that come in groups of two or more; single lists the other names."""
    groups = {}
    for n in names:
        m = re.fullmatch(r"(.+)\.(\d+)", n)
        if m and not NOT_A_STEP.search(m.group(1)):
            groups.setdefault(m.group(1), []).append((int(m.group(2)), n))
    stepped = {b: sorted(v) for b, v in groups.items() if len(v) >= 2}
    in_steps = {n for v in stepped.values() for _, n in v}
    return stepped, [n for n in names if n not in in_steps]


def layer_names(models, region):
    names = []
    for m in models:
        for s in m["regions"].get(region, {}).get("layers", []):
            if s["layer"] not in names:
                names.append(s["layer"])
    return names


def score_of(model, region, name):
    for s in model["regions"].get(region, {}).get("layers", []):
        if s["layer"] == name:
            return s
    return None


def plot_layers(info, models, regions):
    raw_label, ceiled_label = labels_for(info)
    names_per_region = {r: layer_names(models, r) for r in regions}
    widths = [max(4.0, 0.75 * len(names_per_region[r]) + 1.5) for r in regions]
    longest = max(len(n) for r in regions for n in names_per_region[r])
    label_room = 0.065 * longest  # rotated layer names below each panel, in inches
    if sum(widths) <= 14:  # the regions side by side
        fig, axes = plt.subplots(1, len(regions), figsize=(sum(widths) + 0.5, 4.4 + label_room),
                                 gridspec_kw={"width_ratios": widths}, squeeze=False)
        panels = axes[0]
    else:  # many layers: one region per row
        fig, axes = plt.subplots(len(regions), 1, figsize=(min(max(widths), 16) + 0.5, (3.6 + label_room) * len(regions)),
                                 squeeze=False)
        panels = axes[:, 0]
    tags = model_labels(models)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    n_models = len(models)
    for ax, region in zip(panels, regions):
        names = names_per_region[region]
        xs = list(range(len(names)))
        span = 0.5 / max(1, n_models)  # each model's pair of points shares a 0.5-wide slot
        for mi, (m, tag) in enumerate(zip(models, tags)):
            scores = [score_of(m, region, n) for n in names]
            nan = float("nan")
            raw = [s["raw"] if s else nan for s in scores]
            raw_err = [s["error"] if s else nan for s in scores]
            ceiled = [s["ceiled"] if s else nan for s in scores]
            ceiled_err = [ceiled_error(s, info) if s else nan for s in scores]
            off = -0.25 + span * (mi + 0.5)
            suffix = f" — {tag}" if n_models > 1 else ""
            colour_raw, colour_ceiled = (colours[0], colours[1]) if n_models == 1 else (colours[mi % 10],) * 2
            ax.errorbar([x + off - span / 4 for x in xs], raw, yerr=bars(raw_err), fmt="o--", mfc="white",
                        color=colour_raw, capsize=3, lw=1, label=f"{raw_label} ± SEM{suffix}")
            ax.errorbar([x + off + span / 4 for x in xs], ceiled, yerr=bars(ceiled_err), fmt="s-", color=colour_ceiled,
                        capsize=3, lw=1.5, label=f"{ceiled_label} ± SEM{suffix}")
            reg = m["regions"].get(region)
            if reg and reg["best"] in names and math.isfinite(reg["best_ceiled"]):
                ax.plot(names.index(reg["best"]) + off + span / 4, reg["best_ceiled"], "*", ms=15, color="gold",
                        mec="black", zorder=5, label="committed layer" if mi == 0 else None)
        c = region_ceiling(models, region)
        if math.isfinite(c):
            ax.axhline(c, color="grey", ls="--", lw=1.2, label=CEILING)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xticks(xs)
        ax.set_xticklabels(names, rotation=30 if len(names) > 1 else 0, ha="right" if len(names) > 1 else "center",
                           fontsize=10 if len(names) <= 16 else max(5, 160 // len(names)))
        ax.set_xlim(-0.6, len(names) - 0.4)
        ax.set_title(f"{region}" + (f" (ceiling {c:.3f})" if math.isfinite(c) else ""))
        ax.set_xlabel("layer")
        ax.set_ylabel("score")
        ax.grid(alpha=0.3)
    return fig, axes


def plot_steps(info, models, regions, path):
    raw_label, ceiled_label = labels_for(info)
    split = {r: split_steps(layer_names(models, r)) for r in regions}
    if not any(stepped for stepped, _ in split.values()):
        fail(f"{path}: --every-step: no per-step scores (layer names '<name>.<step>', at least two steps);"
             " score with grcnn-score --every-step and a module called once per step (e.g. stage_2.state)")
    fig, axes = plt.subplots(2, len(regions), figsize=(5.2 * len(regions) + 0.5, 8), sharex="col", squeeze=False)
    tags = model_labels(models)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ["-", "--", "-.", ":"]
    for col, region in enumerate(regions):
        ax_c, ax_r = axes[0][col], axes[1][col]
        stepped, single = split[region]
        steps = sorted({t for v in stepped.values() for t, _ in v}) or [0, 1]
        for mi, (m, tag) in enumerate(zip(models, tags)):
            ls = styles[mi % len(styles)]
            suffix = f" — {tag}" if len(models) > 1 else ""
            reg = m["regions"].get(region)
            for bi, (base, seq) in enumerate(stepped.items()):
                colour = colours[bi % 10]
                pts = [(t, score_of(m, region, n)) for t, n in seq]
                pts = [(t, s) for t, s in pts if s]
                if not pts:
                    continue
                dodge = 0.04 * (bi - (len(stepped) - 1) / 2) + 0.02 * mi  # error bars side by side
                ts = [t + dodge for t, _ in pts]
                ax_c.errorbar(ts, [s["ceiled"] for _, s in pts], yerr=bars(ceiled_error(s, info) for _, s in pts),
                              fmt="o" + ls, color=colour, capsize=3, lw=1.5, label=f"{base}{suffix}")
                ax_r.errorbar(ts, [s["raw"] for _, s in pts], yerr=bars(s["error"] for _, s in pts),
                              fmt="o" + ls, color=colour, capsize=3, lw=1.5)
                if reg and reg["best"] in dict(seq).values():
                    t = next(t for t, n in seq if n == reg["best"])
                    s = score_of(m, region, reg["best"])
                    ax_c.plot(t + dodge, s["ceiled"], "*", ms=15, color="gold", mec="black", zorder=5,
                              label="committed layer")
            for si, name in enumerate(single):
                s = score_of(m, region, name)
                if not s:
                    continue
                colour = colours[(len(stepped) + si) % 10]
                ax_c.axhline(s["ceiled"], color=colour, ls=":", lw=1.2, label=f"{name} (one call){suffix}")
                ax_r.axhline(s["raw"], color=colour, ls=":", lw=1.2)
        c = region_ceiling(models, region)
        if math.isfinite(c):
            ax_r.axhline(c, color="grey", ls="--", lw=1.2, label=CEILING)
        for ax in (ax_c, ax_r):
            ax.axhline(0, color="black", lw=0.6)
            ax.grid(alpha=0.3)
            ax.set_xticks(steps)
            ax.set_xlim(min(steps) - 0.3, max(steps) + 0.3)
        ax_c.set_title(f"{region}: {ceiled_label}")
        ax_c.set_ylabel(ceiled_label.replace("ceiled ", "ceiled score "))
        ax_r.set_title(f"{region}: {raw_label}" + (f", ceiling {c:.3f}" if math.isfinite(c) else ""))
        ax_r.set_ylabel(raw_label)
        ax_r.set_xlabel("recurrent time step t (layer name '<name>.t')")
    return fig, axes


def figure_legend(fig, axes):
    """One legend for the figure, below the panels, without repeated entries."""
    seen = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in seen:
                seen[lab] = h
    def rank(label):
        if label.endswith("(one call)") or "(one call) — " in label:
            return 1.6  # after the per-step lines
        for i, start in enumerate(("raw", "ceiled", "split-half", "committed")):
            if label.startswith(start):
                return i
        return 1.5  # per-step lines after the ceiled scores
    seen = dict(sorted(seen.items(), key=lambda kv: rank(kv[0])))
    longest = max((len(lab) for lab in seen), default=1)
    fits = int(fig.get_figwidth() // (0.07 * longest + 0.9))  # entries of this length in one row
    ncol = max(1, min(4, len(seen), fits))
    return fig.legend(list(seen.values()), list(seen.keys()), loc="lower center", ncol=ncol, fontsize=9,
                      frameon=False), math.ceil(len(seen) / ncol)


def save(fig, out):
    """Writes the PNG atomically: into a temporary file beside the target, renamed over it. A device
    (/dev/null) is written in place; a symbolic link is written through."""
    if out.is_dir():
        fail(f"{out}: is a directory (give a PNG file name with -o)")
    if out.exists() and not out.is_file():
        fig.savefig(out, dpi=100, format="png", bbox_inches="tight", pad_inches=0.15)
        return
    target = out.resolve() if out.is_symlink() else out
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        fail(f"{out}: no folder {folder} to write into")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        fail(f"{out}: cannot write into {folder} ({e.strerror or e})")
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, dpi=100, format="png", bbox_inches="tight", pad_inches=0.15)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            fail(f"{out}: cannot write ({e.strerror or e})")
        raise


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scores", help="grcnn-score --out JSON")
    ap.add_argument("-o", "--output",
                    help="PNG path (default: beside the JSON, its name with .png, or _steps.png with --every-step)")
    ap.add_argument("--every-step", action="store_true",
                    help="plot the scores of a grcnn-score --every-step run against the recurrent time step")
    args = ap.parse_args()
    path = Path(args.scores)
    if not path.exists():
        fail(f"no such file: {path}")
    if not path.is_file():
        fail(f"{path}: not a file")
    info, models = load(path)
    out = Path(args.output) if args.output else path.with_name(path.stem + ("_steps" if args.every_step else "") + ".png")
    regions = region_order({r for m in models for r in m["regions"]})

    if args.every_step:
        fig, axes = plot_steps(info, models, regions, path)
    else:
        fig, axes = plot_layers(info, models, regions)
    title = "neural predictivity" + (" per recurrent step" if args.every_step else " per layer")
    what = ", ".join(x for x in [info["arch"], f"metric {info['metric']}",
                                 model_labels(models)[0] if len(models) == 1 else f"{len(models)} checkpoints"] if x)
    fig.suptitle(f"{title} — {what}", fontsize=12)
    legend, rows = figure_legend(fig, axes)
    height = fig.get_figheight()
    fig.tight_layout(rect=(0, (0.1 + 0.22 * rows) / height, 1, 1 - 0.35 / height))
    save(fig, out)
    plt.close(fig)
    print(f"{TOOL}: wrote {out}")


if __name__ == "__main__":
    main()
