#!/usr/bin/env python3
"""torch.utils.data.DistributedSampler's indices, the reference for dist/sampler.hpp.

Writes a JSON list of cases {n, world, rank, seed, epoch, shuffle, drop_last, indices} and torch.randperm
permutations {n, seed, perm}. Usage: make_sampler_fixtures.py OUT.json
"""
import json
import sys

import torch
from torch.utils.data import DistributedSampler


class Sized:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


def main():
    out = sys.argv[1]
    cases = []
    for n in (1, 2, 5, 7, 16, 100, 1001):
        for world in (1, 2, 3, 4, 7):
            for seed in (0, 42, 2**32 + 5):
                for epoch in (0, 1, 7):
                    for shuffle in (True, False):
                        for drop_last in (False, True):
                            if not shuffle and (seed or epoch):
                                continue
                            for rank in range(world):
                                s = DistributedSampler(Sized(n), num_replicas=world, rank=rank, shuffle=shuffle,
                                                       seed=seed, drop_last=drop_last)
                                s.set_epoch(epoch)
                                cases.append(dict(n=n, world=world, rank=rank, seed=seed, epoch=epoch,
                                                  shuffle=shuffle, drop_last=drop_last, indices=list(iter(s))))
    perms = []
    for n in (0, 1, 2, 10, 1000, 50000):
        for seed in (0, 1, 12345, 2**32 - 1, 2**40 + 3):
            g = torch.Generator()
            g.manual_seed(seed)
            perms.append(dict(n=n, seed=seed, perm=torch.randperm(n, generator=g).tolist()))
    with open(out, "w") as f:
        json.dump(dict(torch=torch.__version__, cases=cases, perms=perms), f)


if __name__ == "__main__":
    main()
