"""Sharded initialization across real processes: `mlx.launch --backend ring`
on loopback, 2 and 4 ranks (tests/dist_worker.py)."""

import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import MLX_LM_MISSING

WORKER = Path(__file__).with_name("dist_worker.py")
# mlx-lm's own model.shard(group) on tiny llama, qwen3_moe and deepseek_v3.
MLX_LM_WORKER = Path(__file__).with_name("dist_worker_mlx_lm.py")


def launcher() -> list:
    exe = Path(sys.executable).with_name("mlx.launch")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("mlx.launch")
    assert found, "mlx.launch (installed with mlx) was not found"
    return [found]


@pytest.mark.parametrize("ranks", [2, 4])
@pytest.mark.parametrize("worker", [WORKER, MLX_LM_WORKER], ids=["mlx", "mlx-lm"])
def test_sharded_init_equals_single_process(ranks, worker):
    if worker is MLX_LM_WORKER:
        pytest.importorskip("mlx_lm", reason=MLX_LM_MISSING)
    port = random.randint(20000, 60000)
    cmd = launcher() + [
        "--backend", "ring", "-n", str(ranks), "--starting-port", str(port),
        "--python", sys.executable, str(worker),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    # mlx.launch exits 0 even when a rank fails: each rank must report.
    for rank in range(ranks):
        assert f"OK rank {rank}/{ranks}" in out, out


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# (example, what each rank prints, needs mlx-lm)
RUNNABLE = [
    ("sharded_init.py", "shards equal the unsharded weights", False),
    ("from_scratch_sharded.py", "each the matching slice of the unsharded model", True),
]


@pytest.mark.parametrize("example", [e for e, _, _ in RUNNABLE])
def test_sharding_doc_shows_the_example_file(example):
    doc = (EXAMPLES.parent / "docs" / "sharding.md").read_text()
    assert (EXAMPLES / example).read_text() in doc


@pytest.mark.parametrize("example, says, needs_mlx_lm", RUNNABLE)
def test_sharded_example_runs_on_two_ranks(example, says, needs_mlx_lm):
    if needs_mlx_lm:
        pytest.importorskip("mlx_lm", reason=MLX_LM_MISSING)
    port = random.randint(20000, 60000)
    cmd = launcher() + ["--backend", "ring", "-n", "2", "--starting-port", str(port),
                        "--python", sys.executable, str(EXAMPLES / example)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    out = r.stdout + r.stderr
    for rank in range(2):
        assert re.search(rf"rank {rank}/2: .*{says}", out), out
