#!/usr/bin/env python3
"""Cross-validation splits written by sklearn itself, for `grcnn-score --splits FILE`:

  make_splits.py STIMULI.csv OUT.json [--stratify object_name|none] [--n-splits 10] [--train-size 0.9]
                 [--test-size F] [--seed 1] [--ids-from ASSEMBLY_IDS.txt]

Splits the stimuli of a Brain-Score stimulus CSV (column stimulus_id or image_id) with
StratifiedShuffleSplit (or ShuffleSplit with --stratify none), over the ids sorted as numpy.unique sorts
them (Brain-Score's order), and writes {"splits": [{"train": [ids], "test": [ids]}, ...]}. --ids-from
restricts the stimuli to those listed (one id per line: the ones an assembly recorded). grcnn-score
replays the same splits itself; the file serves splits made elsewhere and checks that replay.
"""
import argparse
import csv
import json

import numpy as np
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("csv")
ap.add_argument("out")
ap.add_argument("--stratify", default="object_name")
ap.add_argument("--n-splits", type=int, default=10)
ap.add_argument("--train-size", type=float, default=0.9)
ap.add_argument("--test-size", type=float, default=None, help="held-out fraction instead of --train-size (RSA/CKA: 0.9)")
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--ids-from")
a = ap.parse_args()

with open(a.csv, newline="") as f:
    rows = list(csv.DictReader(f))
key = "stimulus_id" if rows and "stimulus_id" in rows[0] else "image_id"
if not rows or key not in rows[0]:
    raise SystemExit(f"{a.csv}: no stimulus_id or image_id column")
by_id = {r[key]: r for r in rows}
ids = np.unique(list(by_id))
if a.ids_from:
    wanted = {line.strip() for line in open(a.ids_from) if line.strip()}
    ids = np.array([i for i in ids if i in wanted])
sizes = dict(train_size=None, test_size=a.test_size) if a.test_size else dict(train_size=a.train_size, test_size=None)
if a.stratify == "none":
    splits = ShuffleSplit(n_splits=a.n_splits, random_state=a.seed, **sizes).split(ids)
else:
    if a.stratify not in rows[0]:
        raise SystemExit(f"{a.csv}: no column '{a.stratify}'")
    labels = [by_id[i][a.stratify] for i in ids]
    splits = StratifiedShuffleSplit(n_splits=a.n_splits, random_state=a.seed, **sizes).split(np.zeros(len(ids)), labels)
out = {"splits": [{"train": [str(ids[i]) for i in tr], "test": [str(ids[i]) for i in te]} for tr, te in splits]}
with open(a.out, "w") as f:
    json.dump(out, f, indent=1)
print(f"wrote {len(out['splits'])} splits of {len(ids)} stimuli to {a.out}")
