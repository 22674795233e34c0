"""What tests/dist_worker_zo.py runs on each rank and tests/test_zo_distributed.py
runs in one process: a small model, one batch per rank, MeZO's settings."""

import mlx.core as mx
import mlx.nn as nn

import mlx_fused_init as mfi

STEPS = 4
KEY = mx.random.key(21)
SETTINGS = dict(learning_rate=0.05, eps=1e-2, weight_decay=0.1, n=2)


def model() -> nn.Module:
    m = nn.Sequential(nn.Linear(12, 24), nn.GELU(), nn.LayerNorm(24), nn.Linear(24, 6))
    # Every parameter from the key (stock biases would come from each
    # rank's own global random state).
    rules = [(nn.LayerNorm, mfi.ones()), ("*.bias", mfi.normal(0.0, 0.1)),
             ("*", mfi.glorot_normal())]
    mfi.init_model(m, rules, key=mx.random.key(3))
    mx.eval(m.parameters())
    return m


def batch(rank: int) -> tuple:
    """Rank ``rank``'s own batch: different on every rank."""
    x = mx.random.normal((16, 12), key=mx.random.key(100 + rank))
    y = mx.random.normal((16, 6), key=mx.random.key(200 + rank))
    return x, y


def loss_fn(m, x, y):
    return ((m(x) - y) ** 2).mean()
