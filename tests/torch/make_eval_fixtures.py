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

for n, train in [(28, 0.5), (25, 0.5), (2560, 0.9)]:
    tr, te = zip(*ShuffleSplit(n_splits=10, train_size=train, test_size=None, random_state=1).split(np.arange(n)))
    out += [(f"shuffle.{n}_{train}.train", torch.tensor(np.stack(tr), dtype=torch.int64)),
            (f"shuffle.{n}_{train}.test", torch.tensor(np.stack(te), dtype=torch.int64))]

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
safetensors_io.save(sys.argv[1], out)
print(f"wrote {len(CASES)} PLS cases with sklearn {sklearn.__version__} to {sys.argv[1]}")
