"""MeZO data-parallel on real processes (`mlx.launch --backend ring -n 2`,
tests/dist_worker_zo.py): each rank computes its losses on its own batch,
only the losses are all-reduced, every rank regenerates the same noise.
Both ranks must end with bit-identical parameters, equal to one process
whose loss is the mean of the ranks' losses."""

import random
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

import zo_dist_setup as setup
from mlx_fused_init import zo
from test_distributed import launcher

WORKER = Path(__file__).with_name("dist_worker_zo.py")
RANKS = 2


def test_two_ranks_equal_one_process_averaging_their_losses(tmp_path):
    port = random.randint(20000, 60000)
    cmd = launcher() + ["--backend", "ring", "-n", str(RANKS), "--starting-port", str(port),
                        "--python", sys.executable, str(WORKER), str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    # mlx.launch exits 0 even when a rank fails: each rank must report.
    for rank in range(RANKS):
        assert f"OK rank {rank}/{RANKS}" in out, out
    ranks = [dict(np.load(tmp_path / f"rank{r}.npz")) for r in range(RANKS)]
    assert ranks[0].keys() == ranks[1].keys()
    for name in ranks[0]:
        assert np.array_equal(ranks[0][name], ranks[1][name]), name  # bit-identical

    batches = [setup.batch(r) for r in range(RANKS)]

    def mean_loss(m):
        # What the ranks average: the sum of their losses over the ranks
        # (an all_sum of two numbers is their one rounded sum), divided.
        total = setup.loss_fn(m, *batches[0])
        for b in batches[1:]:
            total = total + setup.loss_fn(m, *b)
        return total / RANKS

    for name in ("given", "drawn"):
        key = mx.array(ranks[0][f"{name}/key"])
        if name == "given":
            assert key.tolist() == setup.KEY.tolist()
        model = setup.model()
        opt = zo.MeZO(**setup.SETTINGS, key=key)
        losses = [opt.step(model, mean_loss).item() for _ in range(setup.STEPS)]
        assert losses == ranks[0][f"{name}/losses"].tolist(), name
        start = dict(tree_flatten(setup.model().parameters()))
        for path, p in tree_flatten(model.parameters()):
            want = np.array(mx.view(p, mx.uint32))
            assert np.array_equal(ranks[0][f"{name}/{path}"], want), (name, path)
            assert not np.array_equal(want, np.array(mx.view(start[path], mx.uint32))), path
