"""normal, uniform, glorot_uniform, he_normal, he_uniform against their
stock twins and the reference stream."""

import inspect
import math

import mlx.core as mx
import mlx.nn.init as stock
import numpy as np
import pytest
from scipy import stats

import mlx_fused_init as mfi
from mlx_fused_init._backend import ext as _ext
from conftest import bits, to_numpy
from reference import flat_indices, normal_z, round_to, shifted_normal_values, uniform_values

NAMES = ["normal", "uniform", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform"]
KEY = mx.random.key(31)
DTYPE_NAMES = {mx.float32: "float32", mx.float16: "float16", mx.bfloat16: "bfloat16"}


@pytest.mark.parametrize("name", NAMES)
def test_signatures_match_stock(name):
    ours, theirs = getattr(mfi, name), getattr(stock, name)
    po, pt = inspect.signature(ours).parameters, inspect.signature(theirs).parameters
    assert list(po) == list(pt)
    assert [p.default for p in po.values()] == [p.default for p in pt.values()]
    io = inspect.signature(ours()).parameters
    it = inspect.signature(theirs()).parameters
    positional = [n for n, p in io.items() if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert positional == list(it)
    assert [io[n].default for n in positional[1:]] == [it[n].default for n in list(it)[1:]]
    for extra in ("key", "stream", "full_shape", "start", "subsequence"):
        assert io[extra].kind is inspect.Parameter.KEYWORD_ONLY


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [mx.float32, mx.float16, mx.bfloat16])
def test_shape_and_dtype(name, dtype):
    factory = getattr(mfi, name)
    init = factory(dtype=dtype)
    a = mx.zeros((6, 5, 4))
    out, ref = init(a), getattr(stock, name)(dtype=dtype)(a)
    assert out.shape == ref.shape == (6, 5, 4) and out.dtype == ref.dtype == dtype


@pytest.mark.parametrize("name", ["glorot_uniform", "he_normal", "he_uniform"])
def test_fewer_than_two_dims(name):
    with pytest.raises(ValueError, match="at least 2 dimensional"):
        getattr(mfi, name)()(mx.zeros((3,)))


@pytest.mark.parametrize("name", ["he_normal", "he_uniform"])
def test_invalid_mode_like_stock(name):
    with pytest.raises(ValueError, match="Invalid mode: fan_avg. Valid modes are: fan_in, fan_out"):
        getattr(stock, name)()(mx.zeros((3, 3)), mode="fan_avg")
    with pytest.raises(ValueError, match=r"\[" + name + r"\] Invalid mode: fan_avg"):
        getattr(mfi, name)()(mx.zeros((3, 3)), mode="fan_avg")


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: mfi.normal(std=math.nan), r"\[normal\] std must be finite"),
        (lambda: mfi.normal(mean=math.inf), r"\[normal\] mean must be finite"),
        (lambda: mfi.uniform(low=math.nan), r"\[uniform\] low must be finite"),
        (lambda: mfi.uniform(2.0, 1.0), r"\[uniform\] high must not be below low"),
        (lambda: mfi.uniform(dtype=mx.int32), r"\[uniform\] dtype must be float32"),
        (lambda: mfi.uniform(0.0, 1e5, mx.float16)(mx.zeros((2,))), r"\[uniform\] bounds up to .* overflow float16"),
        (lambda: mfi.he_normal()(mx.zeros((2, 2)), "fan_in", math.inf), r"\[he_normal\] gain must be finite"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------ exactness
@pytest.mark.parametrize("dtype", [mx.float32, mx.float16, mx.bfloat16])
@pytest.mark.parametrize("low, high", [(0.0, 1.0), (-0.3, 0.7), (-2.5, -0.125), (1.0, 1.0078125)])
def test_uniform_is_the_reference_bit_for_bit(low, high, dtype):
    shape = (37, 29)
    out = mfi.uniform(low, high, dtype)(mx.zeros(shape), key=KEY)
    ref = uniform_values(flat_indices(shape).ravel(), np.array(KEY).tolist(), low, high,
                         DTYPE_NAMES[dtype]).reshape(shape)
    np.testing.assert_array_equal(to_numpy(out).view(np.uint32), ref.view(np.uint32))


def test_uniform_bounds_of_the_op_match_the_reference_rule():
    for dtype in (mx.float32, mx.float16, mx.bfloat16):
        shift, scale, upper = _ext.uniform_bounds(-0.3, 0.7, dtype)
        lo = round_to(np.float32(-0.3), DTYPE_NAMES[dtype])[()]
        hi = round_to(np.float32(0.7), DTYPE_NAMES[dtype])[()]
        assert shift == lo and scale == np.float32(np.float64(hi) - np.float64(lo))
        assert upper < hi and round_to(np.float32(upper), DTYPE_NAMES[dtype]) == upper


@pytest.mark.parametrize("dtype", [mx.float32, mx.float16, mx.bfloat16])
def test_uniform_is_half_open_after_rounding(dtype):
    # [1, 1.0078125): bfloat16 has one value in it, 1.0; without the clamp,
    # about half of the draws would round up to high.
    out = to_numpy(mfi.uniform(1.0, 1.0078125, dtype)(mx.zeros((256, 256)), key=KEY))
    assert out.min() >= 1.0 and out.max() < 1.0078125
    # And the standard interval for a large draw.
    out = to_numpy(mfi.uniform(dtype=dtype)(mx.zeros((1024, 1024)), key=KEY))
    assert out.min() >= 0.0 and out.max() < 1.0


@pytest.mark.parametrize("mean, std", [(0.0, 1.0), (0.5, 2.0), (-3.0, 0.01)])
def test_normal_matches_reference(mean, std):
    shape = (33, 17)
    out = to_numpy(mfi.normal(mean, std)(mx.zeros(shape), key=KEY))
    z = normal_z(flat_indices(shape).ravel(), np.array(KEY).tolist()).reshape(shape)
    # docs/spec.md §3's bound on std * z, plus half an ulp of the mean's addition.
    tol = 4e-6 * std + np.spacing(np.float32(abs(mean) + 7 * std))
    assert np.abs(out - (mean + std * z)).max() <= tol


@pytest.mark.parametrize("dtype", [mx.float32, mx.float16, mx.bfloat16])
@pytest.mark.parametrize("mean, std", [(0.5, 1.7), (-3.0, 0.01), (1.0, 1.0e-3), (0.125, 3.0)])
def test_normal_with_mean_is_one_fma_of_the_unit_draw(mean, std, dtype):
    # docs/spec.md §3, step 7: RNE_dtype(fma(std, z, mean)), one rounding; z is the
    # float32 unit draw with the same key (scale 1 rounds nothing). The
    # reference fma is exact (reference.fma32), so this pins the rounding:
    # std * z rounded, then + mean, differs in the last bit here and there
    # (see the count below).
    shape = (61, 67)
    z = to_numpy(mfi.normal(0.0, 1.0)(mx.zeros(shape), key=KEY))
    out = mfi.normal(mean, std, dtype)(mx.zeros(shape), key=KEY)
    want = shifted_normal_values(z, std, mean, DTYPE_NAMES[dtype])
    np.testing.assert_array_equal(to_numpy(out).view(np.uint32), want.view(np.uint32))
    if dtype == mx.float32:
        two_roundings = np.float32(std) * z + np.float32(mean)
        assert np.any(two_roundings.view(np.uint32) != want.view(np.uint32))


@pytest.mark.parametrize(
    "name, args, sigma",
    [
        ("he_normal", (), math.sqrt(1 / 48)),  # fan_in = 4 * 12
        ("he_normal", ("fan_out", 2.0), 2 * math.sqrt(1 / 160)),  # fan_out = 40 * 4
        ("glorot_normal", (3.0,), 3 * math.sqrt(2 / 208)),
    ],
)
def test_scales_follow_stock_formulas(name, args, sigma):
    shape = (40, 4, 12)
    unit = bits(mfi.normal(0.0, 1.0)(mx.zeros(shape), key=KEY))
    out = getattr(mfi, name)()(mx.zeros(shape), *args, key=KEY)
    expect = (unit.view(np.float32) * np.float32(sigma)).view(np.uint32)
    np.testing.assert_array_equal(bits(out), expect)


@pytest.mark.parametrize(
    "name, args, limit",
    [
        ("glorot_uniform", (), math.sqrt(6 / 208)),
        ("he_uniform", (), math.sqrt(3 / 48)),
        ("he_uniform", ("fan_out", 0.5), 0.5 * math.sqrt(3 / 160)),
    ],
)
def test_uniform_limits_follow_stock_formulas(name, args, limit):
    shape = (40, 4, 12)
    out = getattr(mfi, name)()(mx.zeros(shape), *args, key=KEY)
    same = mfi.uniform(-limit, limit)(mx.zeros(shape), key=KEY)
    np.testing.assert_array_equal(bits(out), bits(same))


# ------------------------------------------------------------ statistics
@pytest.mark.parametrize(
    "factory, dist",
    [
        (lambda: mfi.uniform(-0.5, 1.5), stats.uniform(loc=-0.5, scale=2.0)),
        (lambda: mfi.normal(1.0, 0.25), stats.norm(loc=1.0, scale=0.25)),
    ],
)
def test_goodness_of_fit_over_keys(factory, dist):
    init = factory()
    pvalues = []
    for seed in range(10):
        x = to_numpy(init(mx.zeros((1024, 1024)), key=mx.random.key(500 + seed))).astype(np.float64).ravel()
        pvalues.append(stats.kstest(x, dist.cdf).pvalue)
        # 5 standard errors on the mean for 2^20 samples.
        assert abs(x.mean() - dist.mean()) < 5 * dist.std() / 1024
    # As in test_statistics: no p below 1e-4, and uniform p-values (KS, 1e-3).
    assert min(pvalues) > 1e-4, pvalues
    assert stats.kstest(pvalues, "uniform").pvalue > 1e-3, pvalues


def test_uniform_float32_resolution():
    # 24-bit v: the draws take ~2^20 distinct values for 2^20 samples.
    x = to_numpy(mfi.uniform()(mx.zeros((1024, 1024)), key=KEY))
    assert len(np.unique(x)) > 0.96 * x.size


@pytest.mark.parametrize("dtype, step", [(mx.bfloat16, 2.0 ** -7), (mx.float16, 2.0 ** -10)])
@pytest.mark.parametrize("low", [1.0, -2.0])
def test_uniform_16_bit_buckets_are_even(dtype, step, low):
    # docs/spec.md §3: 16-bit uniform draws are rounded down to the dtype's
    # grid, so each of the k = 1/step values in [low, low + 1) has
    # probability 1/k. Round to nearest gave the value under high 1.5/k and
    # low 0.5/k. 2^22 draws, fixed key: a bucket's count is binomial with
    # sd ~ sqrt(n/k); 6 sd bounds the bottom and top buckets (the old
    # rounding is off by n/(2k), 32 sd for bfloat16, 45 for float16), and
    # a chi-square over all k buckets at p > 1e-4.
    n = 1 << 22
    k = int(round(1 / step))
    x = to_numpy(mfi.uniform(low, low + 1.0, dtype)(mx.zeros((n,)), key=KEY)).astype(np.float64)
    idx = np.round((x - low) / step).astype(np.int64)
    assert np.all(np.abs(x - (low + idx * step)) == 0) and idx.min() >= 0 and idx.max() < k
    counts = np.bincount(idx, minlength=k)
    expected, sd = n / k, math.sqrt(n / k * (1 - 1 / k))
    assert abs(counts[0] - expected) < 6 * sd, counts[0]
    assert abs(counts[-1] - expected) < 6 * sd, counts[-1]
    assert stats.chisquare(counts).pvalue > 1e-4
