#!/usr/bin/env python3
"""grcnn-score end to end on real data (hvm-mini: 25 HvM images, Majaj 2015 V4/IT responses):

  check_score.py GRCNN_TRAIN GRCNN_SCORE SOURCE_DIR WORK_DIR

1. trains grcnn_small on Fashion-MNIST for 30 steps (a trained checkpoint, quickly);
2. scores it on V4 and IT with three candidate layers; checks the neuroid counts (88 after dropping
   the erroneous sites, 168), the ceilings (Brain-Score's algorithm on these data: the test_eval
   fixture), and recomputes every layer's score independently from the saved activations with numpy
   (the rows' coordinates in their span, which leave PLS unchanged), sklearn (PLSRegression,
   ShuffleSplit(random_state=1)) and scipy (pearsonr) on the neural data read through libnetcdf:
   equal to 1e-5;
3. --report prints the summary of the JSON; RSA runs; bad input is refused with a message naming it.
"""
import json
import subprocess
import shutil
import sys
from pathlib import Path

import numpy as np
from scipy.stats import pearsonr
from sklearn.cross_decomposition import PLSRegression
from sklearn.model_selection import ShuffleSplit

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))
sys.path.insert(0, str(here / "torch"))
sys.path.insert(0, str(here.parent / "tools"))
from cli_check import check, runner  # noqa: E402
import netcdf_ctypes  # noqa: E402
import safetensors_io  # noqa: E402

train_exe, score_exe, source, work = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
shutil.rmtree(work, ignore_errors=True)  # a rerun starts clean: the trainer refuses a used folder
work.mkdir(parents=True)
hvm = source / "data" / "hvm-mini"
subprocess.run(["rm", "-rf", str(work)], check=True)
work.mkdir(parents=True)
runner(train_exe)(["--arch", "grcnn_small", "--dataset", "fashion-mnist", "--limit-train", "1920", "--limit-eval", "500",
                   "--epochs", "1", "--batch", "64", "--lr", "0.1", "--seed", "1", "--out", str(work / "run")])
weights = work / "run" / "best.safetensors"
check(weights.exists(), "a trained checkpoint to score")

score = runner(score_exe, "grcnn-score")
layers = ["stage_1", "stage_2.conv_g_r", "classifier"]
base = ["--arch", "grcnn_small", "--weights", str(weights), "--stimuli", str(hvm / "images"),
        "--stimulus-csv", str(hvm / "images" / "test_images.csv"), "--assembly", str(hvm / "majaj2015_subset.nc"),
        "--drop-neuroids", str(hvm / "erroneous_neuroids.txt"), "--region", "V4,IT", "--stratify", "none",
        "--components", "5", "--batch", "8"]
text = score(base + ["--layers", ",".join(layers), "--out", str(work / "scores.json"),
                     "--save-activations", str(work / "acts.safetensors")])
print(text)
res = json.loads((work / "scores.json").read_text())
check(res["regions"]["V4"]["neuroids"] == 88 and res["regions"]["IT"]["neuroids"] == 168,
      "88 V4 sites after dropping the 40 erroneous ones, 168 IT sites")
check(abs(res["regions"]["V4"]["ceiling"] - 0.791409) < 1e-6 and abs(res["regions"]["IT"]["ceiling"] - 0.752681) < 1e-6,
      "ceilings V4 0.791409, IT 0.752681 (Brain-Score's algorithm with sklearn/scipy)")

# Independent recomputation from the saved activations.
acts, meta = safetensors_io.load(work / "acts.safetensors")
ids = json.loads(meta["stimulus_ids"])
nc = netcdf_ctypes.Dataset(hvm / "majaj2015_subset.nc")
data = nc.read("dicarlo.Majaj2015")[:, :, 0].T
image_id, neuroid_id, region = nc.read("image_id"), nc.read("neuroid_id"), nc.read("region")
erroneous = set((hvm / "erroneous_neuroids.txt").read_text().split())
images = np.unique(image_id)
model = res["models"][0]
targets = {}


def sklearn_splits(x, y):
    """Brain-Score's per-split scores of features x for targets y (rows in `images` order)."""
    per_split = []
    for tr, te in ShuffleSplit(n_splits=10, train_size=0.9, test_size=None, random_state=1).split(images):
        pred = PLSRegression(n_components=5, scale=False).fit(x[tr], y[tr]).predict(x[te])
        r = [pearsonr(pred[:, j], y[te, j])[0] if np.std(pred[:, j]) > 0 else np.nan for j in range(y.shape[1])]
        per_split.append(np.nanmedian(r))
    return per_split


for reg in ["V4", "IT"]:
    keep = [j for j in range(len(neuroid_id)) if region[j] == reg and neuroid_id[j] not in erroneous]
    y = np.stack([data[image_id == i][:, keep].mean(0) for i in images])
    targets[reg] = y
    by_layer = {e["layer"]: e for e in model["regions"][reg]["layers"]}
    for layer in layers:
        x = acts[layer].double().numpy().reshape(len(ids), -1)[[ids.index(i) for i in images]]
        # PLS predictions depend on the features only through inner products: sklearn on the 25 rows'
        # coordinates in their own span (x = U S V^T -> U S) gives those of the full layer, in seconds.
        u, s_, _ = np.linalg.svd(x, full_matrices=False)
        x = u * s_
        per_split = sklearn_splits(x, y)
        got = by_layer[layer]
        check(np.allclose(got["per_split"], per_split, atol=1e-5) and abs(got["raw"] - np.mean(per_split)) < 1e-5,
              f"{reg} {layer}: raw {got['raw']:.5f} equals sklearn's {np.mean(per_split):.5f} split by split")
        check(abs(got["error"] - np.std(per_split) / np.sqrt(10)) < 1e-5, f"{reg} {layer}: SEM over splits")
        check(abs(got["ceiled"] - (got["raw"] / got["ceiling"]) ** 2) < 1e-12, f"{reg} {layer}: ceiled = (r/c)^2")
    best = max(model["regions"][reg]["layers"], key=lambda e: e["ceiled"])
    check(model["regions"][reg]["best"] == best["layer"], f"{reg}: the committed layer has the best ceiled score")

text = score(["--report", str(work / "scores.json")])
check("average" in text and "V4" in text and "IT" in text, "--report prints the Table-1-like summary")
text = score(base + ["--layers", "stage_1", "--metric", "rsa", "--ceiling-convention", "explained-variance"])
check("committed: stage_1" in text, "RSA scoring runs")

# Splits written by sklearn (tools/make_splits.py) give the scores of the replayed ones.
subprocess.run([sys.executable, str(source / "tools" / "make_splits.py"), str(hvm / "images" / "test_images.csv"),
                str(work / "sk_splits.json"), "--stratify", "none"], check=True)
score(base + ["--layers", ",".join(layers), "--splits", str(work / "sk_splits.json"), "--out", str(work / "from_file.json")])
from_file = json.loads((work / "from_file.json").read_text())["models"][0]
for reg in ["V4", "IT"]:
    a_, b_ = model["regions"][reg]["layers"], from_file["regions"][reg]["layers"]
    check(all(x["per_split"] == y["per_split"] for x, y in zip(a_, b_)), f"{reg}: sklearn's split file scores as the replayed splits")

# Every recurrent step of the shared gate conv, and layer selection on PCA-reduced features.
text = score(base + ["--layers", "stage_2.conv_g_r", "--every-step"])
check("stage_2.conv_g_r.0" in text and "stage_2.conv_g_r.1" in text, "--every-step scores each call of a shared module")
(work / "pca_images.txt").write_text("\n".join(str(p) for p in sorted((hvm / "images").glob("*.png"))[:20]) + "\n")
text = score(base + ["--layers", "stage_1,classifier", "--pca", "8", "--pca-images", str(work / "pca_images.txt")])
check("committed:" in text, "--pca 8 --pca-images LIST reduces the layers before scoring")
# The PCA images go straight to the model's preprocessing, as Brain-Score's LayerPCA feeds them: with the
# stimuli at 4 degrees (pasted at half size on a grey screen) the basis is still the one of the unplaced
# images, i.e. of their activations at 8 degrees (no placement). sklearn's PCA(8) fitted on those, applied
# to the 4-degree stimuli's activations, then PLS: grcnn-score's reduced per-split scores.
from sklearn.decomposition import PCA  # noqa: E402
pca_ids = [p.stem for p in sorted((hvm / "images").glob("*.png"))[:20]]
score(base + ["--layers", "stage_1", "--degrees", "4", "--pca", "8", "--pca-images", str(work / "pca_images.txt"),
              "--out", str(work / "pca4.json"), "--save-activations", str(work / "acts4.safetensors")])
acts4, meta4 = safetensors_io.load(work / "acts4.safetensors")
ids4 = json.loads(meta4["stimulus_ids"])
basis = PCA(8).fit(acts["stage_1"].double().numpy().reshape(len(ids), -1)[[ids.index(i) for i in pca_ids]])
z = basis.transform(acts4["stage_1"].double().numpy().reshape(len(ids4), -1)[[ids4.index(i) for i in images]])
# The basis the placed PCA images would give (their activations at 4 degrees): what must not be used.
placed = PCA(8).fit(acts4["stage_1"].double().numpy().reshape(len(ids4), -1)[[ids4.index(i) for i in pca_ids]])
z_placed = placed.transform(acts4["stage_1"].double().numpy().reshape(len(ids4), -1)[[ids4.index(i) for i in images]])
pca4 = json.loads((work / "pca4.json").read_text())["models"][0]
for reg in ["V4", "IT"]:
    got = np.array({e["layer"]: e for e in pca4["regions"][reg]["layers"]}["stage_1"]["per_split"])
    unplaced_diff = np.max(np.abs(got - np.array(sklearn_splits(z, targets[reg]))))
    placed_diff = np.max(np.abs(got - np.array(sklearn_splits(z_placed, targets[reg]))))
    # 1e-2: grcnn's PCA keeps its components in float, and 8 components of 20 images with close
    # eigenvalues move the PLS splits by ~2e-3; the placed basis moves them by ~1.
    check(unplaced_diff < 1e-2 and placed_diff > 0.1,
          f"{reg}: --pca at 4 degrees uses the unplaced PCA images' basis (largest split difference "
          f"{unplaced_diff:.1e}; {placed_diff:.2f} from the placed images' basis)")

# Bad input names what is wrong.
bad = score([("V1" if a == "V4,IT" else a) for a in base] + ["--layers", "stage_1"], expect=1)
check("no neuroid in region 'V1'" in bad, "an unknown region is refused, listing the regions")
bad = score([a for a in base if a not in ("--stratify", "none")] + ["--layers", "stage_1"], expect=1)
check("--stratify none" in bad and "only 1 member" in bad, "object_name stratification of 25 images explains itself")
bad = score(base + ["--layers", "stage_9"], expect=1)
check("no module named 'stage_9'" in bad, "an unknown layer is refused")
(work / "splits.json").write_text('{"splits": [{"train": ["nope"], "test": ["' + images[0] + '"]}]}')
bad = score(base + ["--layers", "stage_1", "--splits", str(work / "splits.json")], expect=1)
check("names stimulus 'nope'" in bad, "a split file naming an unknown stimulus is refused")
bad = score(base[:-8] + ["--layers", "stage_1"], expect=2)
check("missing" in bad and "--region" in bad, "missing flags are listed")
print("grcnn-score checks passed")
