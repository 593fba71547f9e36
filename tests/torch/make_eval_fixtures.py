#!/usr/bin/env python3
"""sklearn 1.2 references for grcnn's evaluation code (tests/test_eval.cpp):

  make_eval_fixtures.py OUT.safetensors

Also "shuffle.<n>_<train>.{train,test}" (sklearn ShuffleSplit indices, random_state 1, 10 splits, rows
per split) and "ceiling.{responses,per_split,value}": Brain-Score's split-half ceiling written from the
spec with sklearn and scipy on random responses (repetitions x stimuli x neuroids).

For each PLS case "<case>.{x_train,y_train,x_test,pred,n_iter,components}": random data (float64),
sklearn's PLSRegression(n_components, scale=False) predictions on x_test, and its n_iter_ per component;
"<case>.{ridge,ridge_100,linear}": Ridge(alpha=1), Ridge(alpha=100) and LinearRegression() predictions;
"<case>.linear_min_norm": the minimum-norm least-squares fit by numpy's pinv.
"""
import sys
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.cross_decomposition import PLSRegression
from sklearn.linear_model import LinearRegression, Ridge

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import safetensors_io  # noqa: E402

rng = np.random.RandomState(20261126)
CASES = {  # name: (n_train, n_test, features, targets, components, structure)
    "tall": (40, 12, 30, 5, 10, "latent"),
    "wide": (60, 15, 400, 8, 25, "latent"),
    "single_target": (50, 10, 20, 1, 5, "latent"),
    "noise": (35, 9, 50, 6, 25, "noise"),
    "brainscore_like": (90, 10, 900, 20, 25, "latent"),
}


def make(n, m, p, q, structure):
    if structure == "noise":
        return rng.randn(n + m, p), rng.randn(n + m, q)
    z = rng.randn(n + m, 6)  # responses driven by a few latent factors the features also carry
    x = z @ rng.randn(6, p) + 0.5 * rng.randn(n + m, p) + rng.randn(p)
    y = z @ rng.randn(6, q) + 0.3 * rng.randn(n + m, q) + 2.0
    return x, y


def min_norm_fit(x, y, xt):
    """Least squares with numpy's pseudo-inverse (singular values below 1e-10 of the largest dropped)."""
    xm, ym = x.mean(0), y.mean(0)
    return (xt - xm) @ np.linalg.pinv(x - xm, rcond=1e-10) @ (y - ym) + ym


out = []
for name, (n, m, p, q, k, structure) in CASES.items():
    x, y = make(n, m, p, q, structure)
    pls = PLSRegression(n_components=k, scale=False).fit(x[:n], y[:n])
    pred = pls.predict(x[n:]).reshape(m, q)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))  # noqa: E731
    out += [(f"{name}.x_train", t(x[:n])), (f"{name}.y_train", t(y[:n])), (f"{name}.x_test", t(x[n:])),
            (f"{name}.pred", t(pred)), (f"{name}.n_iter", torch.tensor(pls.n_iter_, dtype=torch.int64)),
            (f"{name}.components", torch.tensor([k], dtype=torch.int64)),
            (f"{name}.ridge", t(Ridge(alpha=1.0).fit(x[:n], y[:n]).predict(x[n:]).reshape(m, q))),
            (f"{name}.ridge_100", t(Ridge(alpha=100.0).fit(x[:n], y[:n]).predict(x[n:]).reshape(m, q))),
            (f"{name}.linear", t(LinearRegression().fit(x[:n], y[:n]).predict(x[n:]).reshape(m, q))),
            (f"{name}.linear_min_norm", t(min_norm_fit(x[:n], y[:n], x[n:])))]
from scipy.stats import pearsonr  # noqa: E402
from sklearn.model_selection import ShuffleSplit  # noqa: E402

for n, train in [(28, 0.5), (25, 0.5), (2560, 0.9), (3200, 0.7)]:
    tr, te = zip(*ShuffleSplit(n_splits=10, train_size=train, test_size=None, random_state=1).split(np.arange(n)))
    out += [(f"shuffle.{n}_{train}.train", torch.tensor(np.stack(tr), dtype=torch.int64)),
            (f"shuffle.{n}_{train}.test", torch.tensor(np.stack(te), dtype=torch.int64))]
# test_size instead of train_size (Brain-Score's RSA/CKA cross-validation: test_size 0.9).
tr, te = zip(*ShuffleSplit(n_splits=10, train_size=None, test_size=0.9, random_state=1).split(np.arange(135)))
out += [("shuffle.135_test0.9.train", torch.tensor(np.stack(tr), dtype=torch.int64)),
        ("shuffle.135_test0.9.test", torch.tensor(np.stack(te), dtype=torch.int64))]

# Split-half ceiling (VISION metrics/internal_consistency/ceiling.py): 28 repetitions, 25 stimuli, 30
# neuroids of varying reliability, one of them constant (its r is NaN and skipped by the median).
signal = rng.randn(25, 30)
noise_sd = np.linspace(0.3, 3.0, 30)
responses = signal[None] + rng.randn(28, 25, 30) * noise_sd
responses[:, :, 7] = 1.5
per_split = []
for tr, te in ShuffleSplit(n_splits=10, train_size=0.5, test_size=None, random_state=1).split(np.arange(28)):
    a, b = responses[tr].mean(0), responses[te].mean(0)
    with np.errstate(invalid="ignore"):
        r = np.array([pearsonr(a[:, j], b[:, j])[0] if np.std(a[:, j]) > 0 else np.nan for j in range(30)])
    r = 2 * r / (1 + r)
    per_split.append(np.nanmedian(r))
out += [("ceiling.responses", torch.from_numpy(responses)), ("ceiling.per_split", torch.tensor(per_split, dtype=torch.float64)),
        ("ceiling.value", torch.tensor([np.mean(per_split)], dtype=torch.float64))]
# RSA and linear CKA on a model-like and a neural-like matrix over 20 stimuli.
from scipy.stats import spearmanr  # noqa: E402

feat = rng.randn(20, 300)
neur = feat[:, :40] @ rng.randn(40, 12) + rng.randn(20, 12)
neur[3] = neur[5]  # a repeated stimulus: ties in the RDM


def rdm(x):
    return 1 - np.corrcoef(x)


iu = np.triu_indices(20, k=1)
rsa = spearmanr(rdm(feat)[iu], rdm(neur)[iu]).correlation


def hsic_biased(k, l):
    h = np.eye(len(k)) - 1.0 / len(k)
    return np.trace(k @ h @ l @ h)


def hsic_unbiased(k, l):  # Song et al. 2012, eq. 5
    n = len(k)
    k, l = k.copy(), l.copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    one = np.ones(n)
    return (np.trace(k @ l) + one @ k @ one * (one @ l @ one) / ((n - 1) * (n - 2)) - 2 / (n - 2) * one @ k @ l @ one) / (n * (n - 3))


K, L = feat @ feat.T, neur @ neur.T
cka_b = hsic_biased(K, L) / np.sqrt(hsic_biased(K, K) * hsic_biased(L, L))
cka_u = hsic_unbiased(K, L) / np.sqrt(hsic_unbiased(K, K) * hsic_unbiased(L, L))
out += [("sim.features", torch.from_numpy(feat)), ("sim.neural", torch.from_numpy(neur)),
        ("sim.rdm_neural", torch.from_numpy(rdm(neur))), ("sim.rsa", torch.tensor([rsa], dtype=torch.float64)),
        ("sim.cka", torch.tensor([cka_b, cka_u], dtype=torch.float64))]

# StratifiedShuffleSplit(10, train_size=0.9, random_state=1), Brain-Score's CV splits: an HvM-like set
# (64 objects x 40 images in shuffled order), Brain-Score's 30-stimulus test (objects a, b, c
# repeating), and uneven classes whose remainders tie (sklearn's _approximate_mode draws among them).
from sklearn.model_selection import StratifiedShuffleSplit  # noqa: E402

strat_rng = np.random.RandomState(7)
STRATIFIED = {
    "hvm": strat_rng.permutation(np.repeat(np.arange(64), 40)),
    "abc": np.array(list("abc" * 10)),
    "uneven": strat_rng.permutation(np.repeat(np.arange(7), [3, 5, 8, 13, 21, 34, 19])),
}
for name, y in STRATIFIED.items():
    _, codes = np.unique(y, return_inverse=True)
    tr, te = zip(*StratifiedShuffleSplit(n_splits=10, train_size=0.9, test_size=None, random_state=1).split(np.zeros(len(y)), y))
    out += [(f"strat.{name}.labels", torch.tensor(codes, dtype=torch.int64)),
            (f"strat.{name}.train", torch.tensor(np.stack(tr), dtype=torch.int64)),
            (f"strat.{name}.test", torch.tensor(np.stack(te), dtype=torch.int64))]
    tr, te = zip(*StratifiedShuffleSplit(n_splits=10, train_size=None, test_size=0.9, random_state=1).split(np.zeros(len(y)), y))
    out += [(f"strat.{name}.test0.9.train", torch.tensor(np.stack(tr), dtype=torch.int64)),
            (f"strat.{name}.test0.9.test", torch.tensor(np.stack(te), dtype=torch.int64))]

# Brain-Score's CrossRegressedCorrelation on model-like features: stratified splits over 80 stimuli of 8
# objects, PLS-25 (scale=False), Pearson per neuroid on the held-out stimuli, median over neuroids, mean
# over splits, error = std (ddof 0, xarray's default) / sqrt(10).
cv_objects = strat_rng.permutation(np.repeat(np.arange(8), 10))
cv_x, cv_y = make(80, 0, 150, 12, "latent")
cv_scores = []
for tr, te in StratifiedShuffleSplit(n_splits=10, train_size=0.9, test_size=None, random_state=1).split(np.zeros(80), cv_objects):
    pred = PLSRegression(n_components=25, scale=False).fit(cv_x[tr], cv_y[tr]).predict(cv_x[te])
    cv_scores.append(np.median([pearsonr(pred[:, j], cv_y[te, j])[0] for j in range(12)]))
cv_scores = np.array(cv_scores)
out += [("cv.features", torch.from_numpy(cv_x)), ("cv.neural", torch.from_numpy(cv_y)),
        ("cv.objects", torch.tensor(cv_objects, dtype=torch.int64)),
        ("cv.per_split", torch.from_numpy(cv_scores)),
        ("cv.score", torch.tensor([cv_scores.mean(), cv_scores.std() / np.sqrt(10)], dtype=torch.float64))]

# hvm-mini (real Majaj 2015 responses): the regions' repetition means and Brain-Score's ceilings.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import netcdf_ctypes  # noqa: E402

hvm_dir = Path(__file__).resolve().parents[2] / "data" / "hvm-mini"
nc = netcdf_ctypes.Dataset(hvm_dir / "majaj2015_subset.nc")
var = "dicarlo.Majaj2015"
assert nc.dims(var) == ["neuroid", "presentation", "time_bin"], nc.dims(var)
data = nc.read(var)[:, :, 0].T  # presentations x neuroids
image_id, repetition = nc.read("image_id"), nc.read("repetition")
neuroid_id, region = nc.read("neuroid_id"), nc.read("region")
erroneous = set((hvm_dir / "erroneous_neuroids.txt").read_text().split())
images, reps = np.unique(image_id), np.unique(repetition)
for name in ["V4", "IT"]:
    keep = [j for j in range(len(neuroid_id)) if region[j] == name and neuroid_id[j] not in erroneous]
    d = data[:, keep]
    means = np.stack([d[image_id == i].mean(0) for i in images])
    per_split = []
    for tr, te in ShuffleSplit(n_splits=10, train_size=0.5, test_size=None, random_state=1).split(reps):
        halves = [np.stack([d[(image_id == i) & np.isin(repetition, reps[h])].mean(0) for i in images]) for h in (tr, te)]
        r = np.array([pearsonr(halves[0][:, j], halves[1][:, j])[0] for j in range(len(keep))])
        per_split.append(np.nanmedian(2 * r / (1 + r)))
    out += [(f"hvm.{name}.means", torch.from_numpy(means)), (f"hvm.{name}.per_split", torch.tensor(per_split, dtype=torch.float64)),
            (f"hvm.{name}.ceiling", torch.tensor([np.mean(per_split)], dtype=torch.float64))]
    print(f"hvm-mini {name}: {len(keep)} sites, ceiling {np.mean(per_split):.6f}")
    if name == "V4":  # unequal repetitions: presentations 5 and 40 removed, each half averages what it has
        present = np.ones(len(image_id), bool)
        present[[5, 40]] = False
        per_split = []
        for tr, te in ShuffleSplit(n_splits=10, train_size=0.5, test_size=None, random_state=1).split(reps):
            halves = [np.stack([d[present & (image_id == i) & np.isin(repetition, reps[h])].mean(0) for i in images]) for h in (tr, te)]
            r = np.array([pearsonr(halves[0][:, j], halves[1][:, j])[0] for j in range(len(keep))])
            per_split.append(np.nanmedian(2 * r / (1 + r)))
        out += [("hvm.V4.incomplete.ceiling", torch.tensor([np.mean(per_split)], dtype=torch.float64))]

# Stimulus presentation (VISION benchmark_helpers/screen.py, then the model's Resize((224, 224)),
# ToTensor, Normalize): two HvM images shown to an 8-degree model as stimuli of 14, 6, 8 and 4.3 degrees.
from PIL import Image  # noqa: E402
import torchvision.transforms as T  # noqa: E402


def place_on_screen(img, stimulus_degrees, model_degrees=8):
    if stimulus_degrees == model_degrees:
        return img
    ratio = model_degrees / stimulus_degrees
    size = np.array(img.size)
    target = (ratio * size).round().astype(int)
    if ratio >= 1:
        canvas = Image.new("RGB", tuple(target), "gray")
        canvas.paste(img, tuple(((target - size) / 2).round().astype(int)))
        return canvas
    left, upper = ((size - target) / 2).round().astype(int)
    right, lower = [left, upper] + target
    return img.crop((left, upper, right, lower))


model_input = T.Compose([T.Resize((224, 224)), T.ToTensor(), T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
for k, image in enumerate(sorted((hvm_dir / "images").glob("*.png"))[:2]):
    for degrees in [14, 6, 8, 4.3]:
        with Image.open(image) as im:
            placed = place_on_screen(im.convert("RGB"), degrees)
        gray = np.mean(np.asarray(placed) == 128)
        out += [(f"screen.{k}.{degrees}", model_input(placed)),
                (f"screen.{k}.{degrees}.gray", torch.tensor([gray], dtype=torch.float64)),
                (f"screen.{k}.{degrees}.size", torch.tensor(placed.size, dtype=torch.int64))]

# The behavioural readout: StandardScaler + LogisticRegression(multinomial, newton-cg, C=1e-3), fitted
# tightly (tol 1e-8) so the optimum, not the stopping point, is compared.
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from scipy.stats import norm  # noqa: E402

lr_y = np.repeat(np.arange(4), 20)
lr_x = rng.randn(80, 20) * rng.uniform(0.5, 3, 20) + np.eye(4)[lr_y] @ rng.randn(4, 20) + 1.0
lr_xt = rng.randn(15, 20) * 2
scaler = StandardScaler().fit(lr_x)
lr = LogisticRegression(multi_class="multinomial", solver="newton-cg", C=1e-3, tol=1e-8, max_iter=1000)
lr.fit(scaler.transform(lr_x), lr_y)
out += [("lr.x", torch.from_numpy(lr_x)), ("lr.y", torch.tensor(lr_y, dtype=torch.int64)), ("lr.x_test", torch.from_numpy(lr_xt)),
        ("lr.proba", torch.from_numpy(lr.predict_proba(scaler.transform(lr_xt))))]

# i2n written from the spec (section 3) with numpy/scipy: 24 images of 6 objects, model probabilities,
# and 3000 synthetic human 2AFC trials; two RandomState(0) shuffles of the trials into halves.
I_OBJ, PER = 6, 4
truth = np.repeat(np.arange(I_OBJ), PER)
logits = rng.randn(I_OBJ * PER, I_OBJ) + 2.5 * np.eye(I_OBJ)[truth]
P = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)


def model_rates(P):
    r = P / (P + P[np.arange(len(P)), truth][:, None])
    r[np.arange(len(P)), truth] = np.nan
    return r


def human_rates(trials):
    chosen, shown = np.zeros(P.shape), np.zeros(P.shape)
    for img, tgt, dis, ch in trials:
        chosen[img, ch] += 1
        shown[img, tgt] += 1
        shown[img, dis] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        r = chosen / shown
    r[shown == 0] = np.nan
    r[np.arange(len(P)), truth] = np.nan
    return r


def ndprime(r):
    d = np.full(r.shape, np.nan)
    for i in range(r.shape[0]):
        for b in range(r.shape[1]):
            if np.isnan(r[i, b]):
                continue
            far = np.nanmean(r[truth == b, truth[i]])
            d[i, b] = np.clip(norm.ppf(1 - r[i, b]) - norm.ppf(far), -5, 5)
    for a in range(I_OBJ):
        for b in range(I_OBJ):
            rows = truth == a
            d[rows, b] -= np.nanmean(d[rows, b]) if not np.all(np.isnan(d[rows, b])) else 0
    return d


def consistency(a, b):
    m = np.isfinite(a) & np.isfinite(b)
    return np.corrcoef(a[m], b[m])[0, 1]


trials = []
for _ in range(3000):
    img = rng.randint(len(P))
    dis = rng.choice([o for o in range(I_OBJ) if o != truth[img]])
    p_dis = 0.7 * model_rates(P)[img, dis] + 0.3 * rng.uniform(0, 0.5)
    trials.append((img, truth[img], dis, dis if rng.uniform() < p_dis else truth[img]))
trials = np.array(trials)
model_d = ndprime(model_rates(P))
split_rng = np.random.RandomState(0)
model_r, half_r = [], []
for _ in range(2):
    idx = list(range(len(trials)))
    split_rng.shuffle(idx)
    h1, h2 = trials[idx[: len(idx) // 2]], trials[idx[len(idx) // 2:]]
    d1, d2 = ndprime(human_rates(h1)), ndprime(human_rates(h2))
    model_r.append(consistency(model_d, d1))
    half_r.append(consistency(d1, d2))
out += [("i2n.probabilities", torch.from_numpy(P)), ("i2n.truth", torch.tensor(truth, dtype=torch.int64)),
        ("i2n.trials", torch.tensor(trials, dtype=torch.int64)), ("i2n.model_dprime", torch.from_numpy(model_d)),
        ("i2n.human_dprime", torch.from_numpy(ndprime(human_rates(trials)))),
        ("i2n.model_r", torch.tensor(model_r, dtype=torch.float64)), ("i2n.half_r", torch.tensor(half_r, dtype=torch.float64)),
        ("i2n.ceiled", torch.tensor([np.mean(np.array(model_r) / np.sqrt(half_r))], dtype=torch.float64))]
print(f"i2n synthetic: model r {np.mean(model_r):.4f}, halves {np.mean(half_r):.4f}")

# PCA for layer selection: sklearn's full-SVD PCA fitted on one image set, applied to another.
from sklearn.decomposition import PCA  # noqa: E402

pca_fit = rng.randn(30, 200) @ np.diag(np.linspace(3, 0.1, 200)) + 0.5
pca_new = rng.randn(8, 200) + 0.5
out += [("pca.fit", torch.from_numpy(pca_fit)), ("pca.new", torch.from_numpy(pca_new)),
        ("pca.transform", torch.from_numpy(PCA(n_components=10, svd_solver="full").fit(pca_fit).transform(pca_new)))]
safetensors_io.save(sys.argv[1], out)
print(f"wrote {len(CASES)} PLS cases with sklearn {sklearn.__version__} to {sys.argv[1]}")
