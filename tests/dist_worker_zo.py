"""Run by tests/test_zo_distributed.py under `mlx.launch --backend ring -n N`:
MeZO data-parallel, each rank on its own batch (tests/zo_dist_setup.py).
Writes every rank's final parameters (raw bits) and keys to the folder
given as argument; checks that all ranks hold the same bits. Prints one
"OK rank r/N" line, or exits non-zero."""

import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

import zo_dist_setup as setup
from mlx_fused_init import zo

out = Path(sys.argv[1])
group = mx.distributed.init()
rank, size = group.rank(), group.size()
assert size > 1, "run under mlx.launch"
x, y = setup.batch(rank)
saved = {}

# 1. A given key (the same on every rank); 2. no key: each rank draws its
# own from a different seed, and the first step agrees on rank 0's.
# (Each rank checks here that all hold the same bits; the test compares
# them with one process.)
for name, key in (("given", setup.KEY), ("drawn", None)):
    mx.random.seed(1000 + rank)
    model = setup.model()
    opt = zo.MeZO(**setup.SETTINGS, key=key)  # group: mx.distributed.init()'s
    losses = [opt.step(model, setup.loss_fn, x, y).item() for _ in range(setup.STEPS)]
    saved[f"{name}/key"] = np.array(opt.key)
    saved[f"{name}/losses"] = np.array(losses, dtype=np.float64)
    for path, p in tree_flatten(model.parameters()):
        raw = np.array(mx.view(p, mx.uint32))
        # Every rank holds the same bits: compare with rank 0's.
        gathered = np.array(mx.distributed.all_gather(mx.view(p, mx.uint32)[None], group=group))
        if not all(np.array_equal(g, raw) for g in gathered):
            print(f"MISMATCH rank {rank}: {name} {path} differs between ranks", flush=True)
            sys.exit(1)
        saved[f"{name}/{path}"] = raw

# 3. Different given keys on the ranks: refused on every rank, nothing changed.
model = setup.model()
try:
    zo.MeZO(**setup.SETTINGS, key=mx.random.key(rank)).step(model, setup.loss_fn, x, y)
except ValueError as e:
    if "key must be the same on every rank" not in str(e):
        raise
else:
    print(f"MISMATCH rank {rank}: different keys were accepted", flush=True)
    sys.exit(1)

np.savez(out / f"rank{rank}.npz", **saved)
print(f"OK rank {rank}/{size}", flush=True)
