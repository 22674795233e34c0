import json
import os
import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten

HERE = Path(__file__).parent

# Why the mlx-lm tests skip where it is missing: mlx-lm (and transformers
# 5, which it imports) need Python >= 3.11, so the test extra installs it
# only there.
MLX_LM_MISSING = ("mlx-lm is not installed: the test extra installs it on Python >= 3.11, "
                  "which mlx-lm requires")
sys.path.insert(0, str(HERE))  # tests/reference.py

# MFI_TEST_DEVICE=cpu runs the suite with the CPU as MLX's default device
# (hosted macOS CI runners, whose GPU MLX cannot use). Set here, before any
# test module creates streams on the default device.
if os.environ.get("MFI_TEST_DEVICE") == "cpu":
    mx.set_default_device(mx.cpu)
elif os.environ.get("MFI_TEST_DEVICE") not in (None, ""):
    raise RuntimeError("MFI_TEST_DEVICE must be 'cpu' or unset")


@pytest.fixture(scope="session")
def philox_kat():
    data = json.loads((HERE / "data" / "philox4x32_10_kat.json").read_text())
    return [
        (
            [int(w, 16) for w in v["counter"]],
            [int(w, 16) for w in v["key"]],
            [int(w, 16) for w in v["expected"]],
            v["name"],
        )
        for v in data["vectors"]
    ]


def to_numpy(a: mx.array) -> np.ndarray:
    """float32 view of any float array (float16 and bfloat16 upcast exactly)."""
    return np.array(a.astype(mx.float32), copy=False)


def bits(a: mx.array) -> np.ndarray:
    """The raw bits of a float array, for bit-for-bit comparisons."""
    width = {mx.float32: mx.uint32, mx.float16: mx.uint16, mx.bfloat16: mx.uint16}
    return np.array(mx.view(a, width[a.dtype]))


class Tiny(nn.Module):
    """A small model with weights, a bias and a norm (init_model tests)."""

    def __init__(self, extra=False):
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.proj = nn.Linear(8, 16)
        self.norm = nn.LayerNorm(16)
        if extra:
            self.head = nn.Linear(16, 4)


class Rank:
    """A stand-in for mx.distributed.Group: rank() and size() are all that
    MLX's and mlx-lm's sharding code asks of a group."""

    def __init__(self, rank, size):
        self._rank, self._size = rank, size

    def rank(self):
        return self._rank

    def size(self):
        return self._size


def params(model) -> dict:
    return dict(tree_flatten(model.parameters()))


@pytest.fixture
def restore_cpu_settings():
    """Put the CPU kernel and thread count back after a test changes them."""
    import mlx_fused_init as mfi

    kernel, threads = mfi.cpu_kernel(), mfi.num_threads()
    yield
    mfi.set_cpu_kernel(kernel)
    mfi.set_num_threads(threads)
