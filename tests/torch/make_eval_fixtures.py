#!/usr/bin/env python3
"""sklearn 1.2 references for grcnn's evaluation code (tests/test_eval.cpp):

  make_eval_fixtures.py OUT.safetensors

For each PLS case "<case>.{x_train,y_train,x_test,pred,n_iter,components}": random data (float64),
sklearn's PLSRegression(n_components, scale=False) predictions on x_test, and its n_iter_ per component.
"""
import sys
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.cross_decomposition import PLSRegression

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


out = []
for name, (n, m, p, q, k, structure) in CASES.items():
    x, y = make(n, m, p, q, structure)
    pls = PLSRegression(n_components=k, scale=False).fit(x[:n], y[:n])
    pred = pls.predict(x[n:]).reshape(m, q)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))  # noqa: E731
    out += [(f"{name}.x_train", t(x[:n])), (f"{name}.y_train", t(y[:n])), (f"{name}.x_test", t(x[n:])),
            (f"{name}.pred", t(pred)), (f"{name}.n_iter", torch.tensor(pls.n_iter_, dtype=torch.int64)),
            (f"{name}.components", torch.tensor([k], dtype=torch.int64))]
safetensors_io.save(sys.argv[1], out)
print(f"wrote {len(CASES)} PLS cases with sklearn {sklearn.__version__} to {sys.argv[1]}")
