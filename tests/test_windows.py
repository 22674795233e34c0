"""Windows of a virtual tensor: tilings reproduce the full tensor bit for
bit; a window far past 2^32 elements matches the reference; fans come from
the full shape."""

import gc
import itertools
import math

import mlx.core as mx
import numpy as np
import pytest

import mlx_fused_init as mfi
from conftest import bits, to_numpy
from reference import flat_indices, normal_z

KEY = mx.random.key(2026)


def full_tensor(shape, dtype=mx.float32):
    return bits(mfi.glorot_normal(dtype)(mx.zeros(shape), key=KEY))


def window(full_shape, start, shape, dtype=mx.float32):
    return bits(mfi.glorot_normal(dtype)(
        mx.zeros(shape), key=KEY, full_shape=full_shape, start=start))


def tile(full_shape, cuts, dtype=mx.float32):
    """Reassemble the full tensor from the windows of a grid: cuts[d] lists
    the boundaries along dimension d."""
    out = np.zeros(full_shape, dtype=np.uint32 if dtype == mx.float32 else np.uint16)
    bounds = [list(zip(c[:-1], c[1:])) for c in cuts]
    for cell in itertools.product(*bounds):
        start = [lo for lo, _ in cell]
        shape = [hi - lo for lo, hi in cell]
        sl = tuple(slice(lo, hi) for lo, hi in cell)
        out[sl] = window(full_shape, start, shape, dtype)
    return out


@pytest.mark.parametrize("dtype", [mx.float32, mx.bfloat16])
@pytest.mark.parametrize(
    "full_shape, cuts",
    [
        ((37, 53), [[0, 5, 6, 20, 37], [0, 53]]),  # row blocks
        ((37, 53), [[0, 37], [0, 1, 2, 30, 53]]),  # column blocks
        ((37, 53), [[0, 7, 8, 37], [0, 13, 14, 51, 53]]),  # irregular grid
        ((6, 7, 9), [[0, 2, 6], [0, 3, 7], [0, 4, 5, 9]]),
        ((4, 3, 5, 7), [[0, 1, 4], [0, 3], [0, 2, 5], [0, 3, 6, 7]]),
    ],
)
def test_tilings_reproduce_the_full_tensor(full_shape, cuts, dtype):
    np.testing.assert_array_equal(tile(full_shape, cuts, dtype), full_tensor(full_shape, dtype))


def test_every_single_element_window():
    full = full_tensor((5, 6))
    for i, j in itertools.product(range(5), range(6)):
        assert window((5, 6), (i, j), (1, 1))[0, 0] == full[i, j]


def test_fans_come_from_the_full_shape():
    # A (64, 4096) row block of a (4096, 4096) weight has the full weight's
    # sigma = sqrt(2 / 8192), not that of a (64, 4096) weight.
    w = to_numpy(mfi.glorot_normal()(
        mx.zeros((64, 4096)), key=KEY, full_shape=(4096, 4096), start=(128, 0)))
    sigma = math.sqrt(2 / 8192)
    # 262144 samples: the sample std has sd sigma/sqrt(2n) ~ 0.0014 sigma;
    # the (64, 4096) sigma would be 1.4x larger.
    assert abs(w.std() / sigma - 1) < 0.01


@pytest.mark.parametrize(
    "full_shape, start",
    [
        # 4.9e9 elements: flat indexes past 2^32 (64-bit element indexes).
        ((70000, 70000), (69997, 69900)),
        # 1.7e10 elements: block indexes i >> 2 past 2^32, so the counter's
        # second word is 1 at the end.
        ((131075, 131072), (131072, 130972)),
    ],
)
def test_window_at_the_end_of_a_huge_tensor_matches_reference(full_shape, start):
    shape = (3, 100)
    gc.collect()
    mx.eval(mx.zeros(1))
    mx.synchronize()
    mx.reset_peak_memory()
    base = mx.get_active_memory()
    out = mfi.glorot_normal()(mx.zeros(shape), key=KEY, full_shape=full_shape, start=start)
    mx.eval(out)
    # Only the window is allocated, not the 20-70 GB tensor.
    assert mx.get_peak_memory() - base < 1 << 20
    idx = flat_indices(full_shape, start, shape)
    assert idx.max() == math.prod(full_shape) - 1 > 2**32
    sigma = float(np.float32(math.sqrt(2 / sum(full_shape))))
    ref = sigma * normal_z(idx.ravel(), np.array(KEY).tolist()).reshape(shape)
    assert np.abs(to_numpy(out) - ref).max() <= 4e-6 * sigma


def test_start_without_full_shape_is_an_error():
    with pytest.raises(ValueError, match=r"\[glorot_normal\] start= needs full_shape="):
        mfi.glorot_normal()(mx.zeros((2, 2)), start=(0, 0))


@pytest.mark.parametrize(
    "full_shape, start, match",
    [
        ((4, 4), (3, 0), "does not lie inside full_shape"),
        ((4, 4), (0, -1), "does not lie inside full_shape"),
        ((4,), (0,), "as many dimensions"),
        ((4, 4), (0, 0, 0), "as many dimensions"),
    ],
)
def test_windows_outside_the_tensor(full_shape, start, match):
    with pytest.raises(ValueError, match=match):
        mfi.glorot_normal()(mx.zeros((2, 2)), full_shape=full_shape, start=start)


@pytest.mark.parametrize("bad", ["ab", (1.5, 2), 3])
def test_full_shape_of_the_wrong_type(bad):
    with pytest.raises(TypeError, match="full_shape must be a sequence of ints"):
        mfi.glorot_normal()(mx.zeros((2, 2)), full_shape=bad)
