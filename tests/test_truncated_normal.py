"""truncated_normal (docs/spec.md §3, truncated normal): the definition against a
float64 reference, the law against scipy.stats.truncnorm, bounds in every
dtype, far and narrow intervals, and bit-identity across windows, CPU
kernels and threads. The Metal kernel source: tests/test_metal_shim.py."""

import math

import mlx.core as mx
import numpy as np
import pytest
from scipy import stats
from scipy.special import log_ndtr, ndtr

import mlx_fused_init as mfi
import reference as ref
from mlx_fused_init._backend import ext as _ext
from conftest import bits, to_numpy

KEY = (123, 456)
DTYPES = [mx.float32, mx.float16, mx.bfloat16]
KERNELS = [k.strip() for k in mfi.available_cpu_kernels().split(",")]
# docs/spec.md §3's accuracy bound on z = Phi^-1 of the selected tail probability.
Z_BOUND = 4e-7


def draw(mean, std, a, b, n, dtype=mx.float32, key=KEY, **kw):
    return _ext.fused_init(mx.array(key, dtype=mx.uint32), [n], dtype, kind=3, scale=std,
                           shift=mean, low=a, high=b, stream=mx.cpu, **kw)


# Standardized intervals that between them reach every branch of
# ndtri_lower (w < 6.25, < 16, up to 76.5, i.e. p down to Phi(-12)), both
# tails, the middle, and the upper-tail mirror image of each far interval:
# the inverse CDF for those that hold the mean, the tail mapping for the
# others (docs/spec.md §3).
INTERVALS = [(-2, 2), (-12, 12), (-12, -6), (-12, -9.99), (9.9, 30), (6, 12), (-5, -3),
             (3, 8), (-0.1, 0.1), (-0.6, 0.6), (0.4, 0.6), (-1, math.inf), (0, 1), (-2, 0),
             (0.3, math.inf), (1.5, 2.5), (4, 4.5)]
# docs/spec.md §3's bound for the tail mapping, on z = n + delta against the
# exact quantile of the element's mass fraction, for delta <= 2: half an
# ulp of z (the final rounding), rounding errors relative to delta (the
# Newton step's terms are all multiples of delta), and what the step leaves
# of ndtri_lower's error (its slope is good to 0.2%). Beyond, Z_BOUND.
TAIL_DELTA_BOUND = 2.0 ** -21
TAIL_FLOOR = 2.0 ** -30


@pytest.mark.parametrize("a, b", INTERVALS)
def test_matches_the_float64_definition(a, b):
    # mean 0, std 1, float32: the inverse CDF's output is z itself (fma(1,
    # z, 0) = z), clamped to [a, b]; the reference is the exact Phi^-1 of
    # the same float32 tail probability (tests/reference.py, from the spec).
    # The tail mapping's reference is the exact quantile of the element's
    # mass fraction (reference.truncated_tail_z).
    n = 1 << 18
    _, _, lower, upper, p_lo, c_hi, width, _, _, mapping = _ext.truncation_constants(
        0.0, 1.0, a, b, mx.float32)
    assert mapping != ref.NARROW
    got = to_numpy(draw(0.0, 1.0, a, b, n)).astype(np.float64)
    if mapping == ref.INVERSE_CDF:
        assert a < 0 < b
        z = np.clip(ref.truncated_normal_z(np.arange(n), KEY, p_lo, c_hi, width), lower, upper)
        err = np.abs(got - z) / np.maximum(1.0, np.abs(z))
        assert err.max() <= Z_BOUND, (err.max(), got[err.argmax()], z[err.argmax()])
        return
    assert mapping == (ref.TAIL_UPPER if a >= 0 else ref.TAIL_LOWER)
    nearest = max(a, -12.0) if a >= 0 else -min(b, 12.0)
    z = np.clip(ref.truncated_tail_z(np.arange(n), KEY, nearest, width, mapping), lower, upper)
    err = np.abs(got - z)
    assert (err / np.maximum(1.0, np.abs(z))).max() <= Z_BOUND
    delta = np.abs(z) - nearest
    ulp = np.spacing(np.abs(z).astype(np.float32)).astype(np.float64)
    near = delta <= 2.0
    bound = 0.5 * ulp + TAIL_DELTA_BOUND * delta + TAIL_FLOOR * np.maximum(1.0, np.abs(z))
    excess = (err - bound)[near]
    assert excess.max() <= 0, (excess.max(), got[near][excess.argmax()], z[near][excess.argmax()])


@pytest.mark.parametrize("mean, std, a, b", [(0, 1, -2, 2), (0.5, 2, -1, 0.7),
                                             (1, 0.1, -math.inf, math.inf),
                                             (0, 1, -100, 10.5)])
def test_constants_are_the_float64_probabilities(mean, std, a, b):
    # p_lo = Phi(alpha), c_hi = Phi(-beta), width = Phi(beta) - Phi(alpha),
    # standardized bounds clipped to [-12, 12]; each rounded once to float32.
    scale, shift, lower, upper, p_lo, c_hi, width, _, _, mapping = _ext.truncation_constants(
        mean, std, a, b, mx.float32)
    assert mapping == ref.INVERSE_CDF
    alpha = np.clip((a - mean) / std, -12, 12)
    beta = np.clip((b - mean) / std, -12, 12)
    want_width = ndtr(-alpha) - ndtr(-beta) if alpha > 0 else ndtr(beta) - ndtr(alpha)
    for got, want in ((p_lo, ndtr(alpha)), (c_hi, ndtr(-beta)), (width, want_width)):
        assert abs(got - want) <= 2 ** -23 * want, (got, want)
    assert (scale, shift) == (np.float32(std), np.float32(mean))
    # The clamp: the reach m -+ 12 s in float32, within [a, b] rounded
    # inward to float32.
    m, s = float(np.float32(mean)), float(np.float32(std))
    a_in = np.float32(a) if float(np.float32(a)) >= a else np.nextafter(np.float32(a), np.float32(np.inf))
    b_in = np.float32(b) if float(np.float32(b)) <= b else np.nextafter(np.float32(b), np.float32(-np.inf))
    want_lower = min(max(np.float32(m - 12 * s), a_in), b_in)
    want_upper = max(min(np.float32(m + 12 * s), b_in), a_in)
    assert (lower, upper) == (want_lower, want_upper)


def log_mills(x):
    """ln(Phi(-x) / phi(x)), by scipy's log_ndtr (independent of the C
    library's erfc that the host uses)."""
    return log_ndtr(-x) + 0.5 * x * x + 0.5 * math.log(2 * math.pi)


@pytest.mark.parametrize("mean, std, a, b", [(0, 1, 3, 8), (0, 1, -8, -3), (0.5, 2, 0.7, 9),
                                             (1, 0.1, -math.inf, 0.1), (0, 1, 0, 1),
                                             (-0.3, 1.7, 16.5, math.inf), (2, 3, -1, 2)])
def test_tail_constants(mean, std, a, b):
    # docs/spec.md §3, tail mapping: n the bound nearer the mean (standard
    # units), a32 = float32(n), Qn = float32(Phi(-n)), k = float32(mass /
    # Phi(-n)), K = float32((a32^2 - n^2)/2 + ln M(n) - ln M(a32)), the
    # output anchor mean +- std a32 as float32 X_a plus float32 e_a, and
    # scale +-std.
    scale, shift, _, _, a32, qn, k, big_k, e_a, mapping = _ext.truncation_constants(
        mean, std, a, b, mx.float32)
    m, s = float(np.float32(mean)), float(np.float32(std))
    alpha = max((a - m) / s, -12.0)
    beta = min((b - m) / s, 12.0)
    upper_side = alpha >= 0
    assert mapping == (ref.TAIL_UPPER if upper_side else ref.TAIL_LOWER)
    n = alpha if upper_side else -beta
    far = beta if upper_side else -alpha
    mass = ndtr(-n) - ndtr(-far)
    assert a32 == np.float32(n) and qn == np.float32(ndtr(-n))
    assert abs(k - mass / ndtr(-n)) <= 2 ** -24 * (mass / ndtr(-n))
    an = float(a32)
    want_k = 0.5 * (an - n) * (an + n) + log_mills(n) - log_mills(an)
    assert abs(big_k - want_k) <= 2 ** -24 * abs(want_k) + 1e-13
    sign = 1.0 if upper_side else -1.0
    assert scale == np.float32(sign * s)
    anchor = m + sign * s * an
    assert shift == np.float32(anchor)
    assert abs(e_a - (anchor - float(shift))) <= 2 ** -24 * abs(anchor - float(shift))


# Kolmogorov-Smirnov on 2^20 samples: the critical value at level 1e-4 is
# 2.15 / sqrt(n) (asymptotic). Mean and variance within 5 standard errors.
# Fixed key: deterministic, and a real error of the transform (a wrong
# branch, a wrong tail) moves D far beyond these.
@pytest.mark.parametrize("mean, std, a, b", [(0, 1, -2, 2), (0.5, 2, -1, 0.7), (0, 1, 3, 8),
                                             (0, 1, -8, -3), (0, 1, -1, math.inf),
                                             (0, 0.02, -0.04, 0.04)])
def test_law_matches_scipy_truncnorm(mean, std, a, b):
    n = 1 << 20
    x = to_numpy(draw(mean, std, a, b, n)).astype(np.float64)
    law = stats.truncnorm((a - mean) / std, (b - mean) / std, loc=mean, scale=std)
    d = stats.kstest(x, law.cdf).statistic
    assert d < 2.15 / math.sqrt(n), d
    m, v, _, k = law.stats(moments="mvsk")
    assert abs(x.mean() - m) < 5 * math.sqrt(v / n)
    # Var of the sample variance: v^2 (kurtosis excess + 2) / n.
    assert abs(x.var() - v) < 5 * v * math.sqrt((k + 2) / n)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mean, std, a, b", [
    (0, 1, -0.1, 0.3),        # bounds that no 16-bit type holds
    (0, 1, 0.1, 0.1001),      # narrow: few values of the dtype inside
    (0, 1, 3, 8), (0, 1, -8, -3), (0, 1, 9.9, math.inf),  # far, one-sided
    (2.5, 0.5, 2.0000001, 2.6), (0, 3, -math.inf, math.inf),
])
def test_bounds_are_never_exceeded(dtype, mean, std, a, b):
    x = to_numpy(draw(mean, std, a, b, (1 << 16) + 3, dtype)).astype(np.float64)
    assert not np.isnan(x).any()
    assert x.min() >= a and x.max() <= b, (x.min(), x.max())


def test_far_one_sided_interval_has_its_law():
    # [3, 8] sigma: values start at 3 and decay like the normal's tail.
    x = to_numpy(draw(0.0, 1.0, 3.0, 8.0, 1 << 20)).astype(np.float64)
    assert x.min() >= 3.0 and abs(x.mean() - stats.truncnorm(3, 8).mean()) < 1e-3
    assert (x > 4.5).mean() == pytest.approx(stats.truncnorm(3, 8).sf(4.5), rel=0.1)


def test_window_is_a_slice_of_the_full_tensor():
    init = mfi.truncated_normal(0.1, 0.5, -0.5, 1.0)
    k = mx.random.key(8)
    full = init(mx.zeros((37, 1001)), key=k)
    win = init(mx.zeros((30, 990)), key=k, full_shape=(37, 1001), start=(3, 5))
    assert mx.array_equal(win, full[3:33, 5:995]).item()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 5, 1023, (1 << 18) + 3])
def test_kernels_and_threads_agree_bitwise(n, dtype, restore_cpu_settings):
    mfi.set_cpu_kernel("scalar")
    mfi.set_num_threads(1)
    want = bits(draw(0.0, 1.0, -3.0, 2.0, n, dtype))
    for kernel in KERNELS:
        mfi.set_cpu_kernel(kernel)
        for threads in (1, 3, 8):
            mfi.set_num_threads(threads)
            got = bits(draw(0.0, 1.0, -3.0, 2.0, n, dtype))
            np.testing.assert_array_equal(got, want, err_msg=f"{kernel} x{threads}")


def test_python_initializer_is_the_op():
    k = mx.random.key(2)
    got = mfi.truncated_normal(0.5, 2.0, -1.0, 0.7, mx.bfloat16)(mx.zeros((64, 3)), key=k)
    assert got.dtype == mx.bfloat16 and got.shape == (64, 3)
    want = _ext.fused_init(k, [64, 3], mx.bfloat16, kind=3, scale=2.0, shift=0.5, low=-1.0,
                           high=0.7, stream=mx.cpu)
    assert mx.array_equal(got, want).item()
    # Defaults: PyTorch's trunc_normal_ (mean 0, std 1, a -2, b 2).
    x = to_numpy(mfi.truncated_normal()(mx.zeros((4096,)), key=k))
    assert x.min() >= -2 and x.max() <= 2 and x.std() == pytest.approx(0.8796, abs=0.03)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(a=1.0, b=1.0), ValueError, r"\[truncated_normal\] a must be below b"),
    (dict(a=2.0, b=-2.0), ValueError, r"\[truncated_normal\] a must be below b"),
    (dict(std=0.0), ValueError, r"\[truncated_normal\] .*std finite and positive"),
    (dict(std=-1.0), ValueError, r"\[truncated_normal\] .*std finite and positive"),
    (dict(a=float("nan")), ValueError, r"\[truncated_normal\] a must not be NaN"),
    (dict(mean=float("inf")), ValueError, r"\[truncated_normal\] mean must be finite"),
    (dict(a=11.0, b=20.0), ValueError, r"more than 10 standard deviations"),
    (dict(a=-1e9, b=-20.0), ValueError, r"more than 10 standard deviations"),
    (dict(a="0"), TypeError, r"\[truncated_normal\] a must be a real number"),
    (dict(std=1e4, a=-math.inf, dtype=mx.float16), ValueError, r"would overflow float16"),
    (dict(a=0.1, b=0.10001, dtype=mx.float16), ValueError, r"no float16 value lies in"),
    (dict(dtype=mx.int32), ValueError, r"\[truncated_normal\] dtype must be float32"),
])
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        mfi.truncated_normal(**kwargs)
