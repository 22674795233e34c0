"""variance_scaling: JAX's / Keras' semantics on MLX's (out, in) weights."""

import math

import mlx.core as mx
import numpy as np
import pytest
from scipy import stats

import mlx_fused_init as mfi
from conftest import to_numpy

KEY = mx.random.key(21)
OUT, IN = 96, 160


def eq(a, b) -> bool:
    return mx.array_equal(a, b).item()


def test_the_correction_is_the_std_of_a_standard_normal_truncated_to_2():
    assert mfi.truncated.TRUNCATED_STD_2 == pytest.approx(stats.truncnorm(-2, 2).std(), rel=1e-15)


@pytest.mark.parametrize("mode, n", [("fan_in", IN), ("fan_out", OUT), ("fan_avg", (IN + OUT) / 2)])
@pytest.mark.parametrize("scale", [1.0, 2.0, 0.1])
def test_each_distribution_is_its_fused_initializer(mode, n, scale):
    a = mx.zeros((OUT, IN))
    var = scale / n
    std = math.sqrt(var) / 0.87962566103423978
    got = mfi.variance_scaling(scale, mode)(a, key=KEY)
    assert eq(got, mfi.truncated_normal(0.0, std, -2 * std, 2 * std)(a, key=KEY))
    got = mfi.variance_scaling(scale, mode, "normal")(a, key=KEY)
    assert eq(got, mfi.normal(0.0, math.sqrt(var))(a, key=KEY))
    assert eq(got, mfi.variance_scaling(scale, mode, "untruncated_normal")(a, key=KEY))
    limit = math.sqrt(3 * var)
    got = mfi.variance_scaling(scale, mode, "uniform")(a, key=KEY)
    assert eq(got, mfi.uniform(-limit, limit)(a, key=KEY))


@pytest.mark.parametrize("distribution", ["truncated_normal", "normal", "uniform"])
def test_the_draw_has_the_requested_variance(distribution):
    # 2^20 values: the sample variance is within 1% (its relative standard
    # error is below 0.15% for all three laws).
    x = to_numpy(mfi.variance_scaling(2.0, "fan_in", distribution)(
        mx.zeros((4096, 256)), key=KEY)).astype(np.float64)
    assert x.var() == pytest.approx(2.0 / 256, rel=0.01)
    if distribution == "truncated_normal":
        assert np.abs(x).max() <= 2 * math.sqrt(2.0 / 256) / 0.87962566103423978


def test_batch_dims_and_receptive_fields():
    # (experts=4, out=8, k=3, in=5): fan_in 15.
    a = mx.zeros((4, 8, 3, 5))
    got = mfi.variance_scaling(1.0, "fan_in", "normal")(a, key=KEY, batch_dims=1)
    assert eq(got, mfi.normal(0.0, math.sqrt(1 / 15))(a, key=KEY))


def test_windows_keep_working():
    init = mfi.variance_scaling()
    full = init(mx.zeros((OUT, IN)), key=KEY)
    assert eq(init(mx.zeros((10, IN)), key=KEY, full_shape=(OUT, IN), start=(7, 0)), full[7:17])


@pytest.mark.parametrize("args, exc, match", [
    ((0.0,), ValueError, r"\[variance_scaling\] scale must be positive"),
    ((1.0, "fan_sum"), ValueError, r"\[variance_scaling\] Invalid mode: fan_sum"),
    ((1.0, "fan_in", "cauchy"), ValueError, r"\[variance_scaling\] Invalid distribution"),
    (("1",), TypeError, r"\[variance_scaling\] scale must be a real number"),
])
def test_bad_arguments(args, exc, match):
    with pytest.raises(exc, match=match):
        mfi.variance_scaling(*args)


def test_vectors_are_refused_like_glorot():
    with pytest.raises(ValueError, match=r"\[variance_scaling\] .*at least 2 dimensional"):
        mfi.variance_scaling()(mx.zeros((5,)), key=KEY)
