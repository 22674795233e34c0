"""The whole stream against the NumPy float64 reference of docs/spec.md §3."""

import mlx.core as mx
import numpy as np
import pytest

import mlx_fused_init as mfi
from conftest import to_numpy
from mlx_fused_init._backend import ext as _ext
from reference import flat_indices, normal_z

KEYS = [(0, 0), (0, 42), (0xFFFFFFFF, 0xFFFFFFFF), (0x9E3779B9, 0x7F4A7C15)]
SHAPES = [
    (1, 1),
    (1, 3),  # fewer elements than one block
    (3, 5),  # 15: not a multiple of 4
    (7, 13),
    (33, 65),
    (4, 3, 5),
    (8, 3, 3, 3),  # a conv weight (out, kh, kw, in) in MLX's layout
    (5, 2, 7, 3),
]

# docs/spec.md §3: |out - sigma * z_exact| <= 4e-6 |sigma| for float32.
TOL_F32 = 4e-6
# One ulp of the 16-bit type at the value's magnitude.
ULP_BITS = {mx.float16: 10, mx.bfloat16: 7}
MIN_NORMAL = {mx.float16: 2.0**-14, mx.bfloat16: 2.0**-126}


def ulp(x: np.ndarray, dtype) -> np.ndarray:
    e = np.floor(np.log2(np.maximum(np.abs(x), MIN_NORMAL[dtype])))
    return 2.0 ** (e - ULP_BITS[dtype])


def expected(shape, key, sigma):
    idx = flat_indices(shape)
    return sigma * normal_z(idx.ravel(), key).reshape(shape)


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("shape", SHAPES)
def test_float32_matches_reference(shape, key):
    init = mfi.glorot_normal()
    out = init(mx.zeros(shape), key=mx.array(key, dtype=mx.uint32))
    fan_in = shape[-1] * int(np.prod(shape[1:-1]))
    fan_out = shape[0] * int(np.prod(shape[1:-1]))
    sigma = float(np.float32(np.sqrt(2.0 / (fan_in + fan_out))))
    err = np.abs(to_numpy(out) - expected(shape, key, sigma))
    assert err.max() <= TOL_F32 * sigma


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
@pytest.mark.parametrize("key", KEYS[:2])
@pytest.mark.parametrize("shape", [(3, 5), (33, 65), (8, 3, 3, 3)])
def test_half_types_within_one_ulp(shape, key, dtype):
    gain = 3.0
    out = mfi.glorot_normal(dtype)(mx.zeros(shape), gain, key=mx.array(key, dtype=mx.uint32))
    assert out.dtype == dtype
    fan_in = shape[-1] * int(np.prod(shape[1:-1]))
    fan_out = shape[0] * int(np.prod(shape[1:-1]))
    sigma = float(np.float32(gain * np.sqrt(2.0 / (fan_in + fan_out))))
    ref = expected(shape, key, sigma)
    err = np.abs(to_numpy(out).astype(np.float64) - ref)
    assert np.all(err <= ulp(ref, dtype) + TOL_F32 * sigma)


def test_scale_is_applied_in_float32():
    # RNE(float32(sigma) * z): with a non-representable sigma, the output is
    # the float32 product of float32(sigma) and the unit draw, bit for bit.
    key = mx.random.key(3)
    shape = (64, 64)
    unit = mfi.glorot_normal()(mx.zeros(shape), float(np.sqrt(64.0)), key=key)
    gain = 0.1234567891
    out = mfi.glorot_normal()(mx.zeros(shape), gain, key=key)
    sigma32 = np.float32(gain * np.sqrt(2.0 / 128))
    np.testing.assert_array_equal(np.array(out), np.array(unit) * sigma32)


def test_value_depends_only_on_its_index():
    # The first elements of a long row are the same as the elements of a
    # short one: the stream is indexed by flat position only.
    key = mx.random.key(11)
    long = _ext.fused_init(key, [1, 1000], mx.float32, kind=0, scale=1.0)
    short = _ext.fused_init(key, [1, 7], mx.float32, kind=0, scale=1.0)
    np.testing.assert_array_equal(np.array(long)[0, :7], np.array(short)[0])


def test_subsequence_selects_an_independent_stream():
    key = mx.random.key(11)
    a = _ext.fused_init(key, [256], mx.float32, kind=0, scale=1.0, subsequence=0)
    b = _ext.fused_init(key, [256], mx.float32, kind=0, scale=1.0, subsequence=2**40 + 5)
    ref = normal_z(np.arange(256), (0, 11), subsequence=2**40 + 5)
    assert not np.array_equal(np.array(a), np.array(b))
    assert np.abs(np.array(b) - ref).max() <= TOL_F32
