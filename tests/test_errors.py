"""Every bad input of docs/spec.md §5 gives the named exception, and nothing crashes."""

import math

import mlx.core as mx
import numpy as np
import pytest

import mlx_fused_init as mfi
from mlx_fused_init._backend import ext as _ext


@pytest.mark.parametrize("dtype", [mx.int32, mx.uint8, mx.bool_, mx.complex64, mx.float64])
def test_non_float_dtype(dtype):
    with pytest.raises(ValueError, match=r"\[glorot_normal\] dtype must be float32"):
        mfi.glorot_normal(dtype)


def test_dtype_not_a_dtype():
    with pytest.raises(TypeError, match=r"\[glorot_normal\] dtype"):
        mfi.glorot_normal("float32")


@pytest.mark.parametrize("gain", [math.nan, math.inf, -math.inf])
def test_non_finite_gain(gain):
    with pytest.raises(ValueError, match=r"\[glorot_normal\] gain must be finite"):
        mfi.glorot_normal()(mx.zeros((2, 2)), gain)


@pytest.mark.parametrize("gain", ["1.0", None, [1.0], mx.array([1.0, 2.0])])
def test_gain_not_a_number(gain):
    with pytest.raises(TypeError, match=r"\[glorot_normal\] gain must be a real number"):
        mfi.glorot_normal()(mx.zeros((2, 2)), gain)


def test_gain_as_one_element_array_is_accepted():
    key = mx.random.key(0)
    a = mfi.glorot_normal()(mx.zeros((2, 2)), mx.array(2.0), key=key)
    b = mfi.glorot_normal()(mx.zeros((2, 2)), 2.0, key=key)
    assert mx.array_equal(a, b).item()


def test_overflowing_scale_for_float16():
    with pytest.raises(ValueError, match="would overflow float16"):
        mfi.glorot_normal(mx.float16)(mx.zeros((2, 2)), 1e5)


@pytest.mark.parametrize(
    "key, match",
    [
        (mx.array([1, 2], dtype=mx.int32), "key must be a uint32 array of shape"),
        (mx.array([1, 2, 3], dtype=mx.uint32), "key must be a uint32 array of shape"),
        (mx.array([[1, 2]], dtype=mx.uint32), "key must be a uint32 array of shape"),
        (mx.array([1.0, 2.0]), "key must be a uint32 array of shape"),
    ],
)
def test_bad_key(key, match):
    with pytest.raises(ValueError, match=r"\[glorot_normal\] " + match):
        mfi.glorot_normal()(mx.zeros((2, 2)), key=key)


@pytest.mark.parametrize("key", [[0, 1], 7, np.array([0, 1], dtype=np.uint32)])
def test_key_not_an_array(key):
    with pytest.raises(TypeError, match=r"\[glorot_normal\] key must be an mx.array"):
        mfi.glorot_normal()(mx.zeros((2, 2)), key=key)


def test_input_without_shape():
    with pytest.raises(TypeError, match=r"\[glorot_normal\] expected an array"):
        mfi.glorot_normal()(3.0)


def test_bad_stream_type():
    with pytest.raises(TypeError, match=r"\[glorot_normal\] stream must be"):
        mfi.glorot_normal()(mx.zeros((2, 2)), stream="cpu")


@pytest.mark.skipif(
    mfi.backend_info()["gpu"] != "none", reason="a GPU kernel can run here: GPU streams are valid"
)
@pytest.mark.parametrize("stream", [mx.gpu, mx.Device(mx.gpu)])
def test_gpu_stream_without_metal_names_the_fix(stream):
    with pytest.raises(RuntimeError, match=r"stream=mx\.cpu"):
        mfi.glorot_normal()(mx.zeros((2, 2)), stream=stream)
    with pytest.raises(RuntimeError, match=r"stream=mx\.cpu"):
        mfi.philox4x32_10(mx.zeros((1, 4), dtype=mx.uint32), mx.random.key(0), stream=stream)


def test_negative_dimension_in_low_level_op():
    with pytest.raises(ValueError, match="negative dimensions"):
        _ext.fused_init(mx.random.key(0), [2, -1], mx.float32, kind=0, scale=1.0)


@pytest.mark.parametrize(
    "full_shape, start, shape",
    [
        ([4, 4], [0, 1], [4, 4]),  # sticks out on the right
        ([4, 4], [-1, 0], [2, 2]),  # negative start
        ([4, 4], [3, 3], [2, 1]),  # sticks out at the bottom
        ([4], [0], [2, 2]),  # rank mismatch
    ],
)
def test_window_outside_the_full_tensor(full_shape, start, shape):
    with pytest.raises(ValueError):
        _ext.fused_init(
            mx.random.key(0), shape, mx.float32, kind=0, scale=1.0,
            full_shape=full_shape, start=start,
        )


def test_too_large_virtual_tensor():
    with pytest.raises(ValueError, match="more than 2"):
        _ext.fused_init(
            mx.random.key(0), [1, 1, 1], mx.float32, kind=0, scale=1.0,
            full_shape=[2**31 - 1, 2**31 - 1, 2], start=[0, 0, 0],
        )


@pytest.mark.parametrize("scale", [math.nan, math.inf])
def test_non_finite_scale_in_low_level_op(scale):
    with pytest.raises(ValueError, match="must be finite"):
        _ext.fused_init(mx.random.key(0), [2, 2], mx.float32, kind=0, scale=scale)


@pytest.mark.parametrize(
    "counters",
    [
        mx.zeros((3, 3), dtype=mx.uint32),
        mx.zeros((4,), dtype=mx.uint32),
        mx.zeros((3, 4), dtype=mx.int32),
    ],
)
def test_bad_philox_counters(counters):
    with pytest.raises(ValueError, match=r"\[philox4x32_10\] counters must be"):
        mfi.philox4x32_10(counters, mx.random.key(0))


@pytest.mark.parametrize(
    "shape, count",
    [
        ((2**31 - 1, 2**31 - 1), (2**31 - 1) ** 2),  # 2^64 - 2^34 + 4 bytes
        ((2**30, 2**30, 2), 2**61),  # 2^63 bytes: one too many
    ],
)
def test_output_too_large_for_mlx_is_refused_when_called(shape, count):
    # A ValueError that names the shape and element count when the graph is
    # built, not an allocation error with a huge byte count at eval. (Above
    # 2^62 elements the stream's own limit answers first.)
    with pytest.raises(ValueError, match=r"\[normal\] the output of shape \(") as e:
        mfi.normal()(mx.zeros(shape))
    assert f" has {count} elements ({4 * count} bytes as float32)" in str(e.value)
    assert "more than an MLX array can hold" in str(e.value)


def test_output_just_below_the_byte_limit_is_accepted():
    # (2^31 - 1)^2 bfloat16 elements: 2^63 - 2^33 + 2 bytes, a valid (lazy,
    # never evaluated) node. In portable mode CPU draws are eager: such an
    # output is refused, naming its bytes, rather than allocated.
    shape = (2**31 - 1, 2**31 - 1)
    if mfi.backend_info()["backend"] == "portable":
        with pytest.raises(ValueError, match=r"\[normal\] the output of shape \(2147483647,"
                           r"2147483647\) needs 9223372028264841218 bytes, more than this "
                           r"machine's memory"):
            mfi.normal(dtype=mx.bfloat16)(mx.zeros(shape), key=mx.random.key(0), stream=mx.cpu)
        return
    out = mfi.normal(dtype=mx.bfloat16)(mx.zeros(shape), key=mx.random.key(0))
    assert out.shape == shape


# Issue 17, item 10: errors found at the edges, each a ValueError naming
# the argument (or the parameter), never nanobind's or Python's raw error.

@pytest.mark.parametrize("full_shape, start, arg", [
    ((2**63, 2), None, "full_shape"), ((2, 2**64), None, "full_shape"),
    ((2**62, 2), (2**63, 0), "start")])
def test_huge_window_entries_name_the_argument(full_shape, start, arg):
    with pytest.raises(ValueError, match=rf"\[glorot_normal\] {arg} .* 2\^63"):
        mfi.glorot_normal()(mx.zeros((2, 2)), full_shape=full_shape, start=start)


@pytest.mark.parametrize("call, arg", [
    (lambda: mfi.truncated_normal(0, 1, -10**400, 1), "a"),
    (lambda: mfi.truncated_normal(0, 1, -1, 10**400), "b"),
    (lambda: mfi.normal(10**400, 1), "mean"),
    (lambda: mfi.glorot_normal()(mx.zeros((2, 2)), 10**400), "gain"),
])
def test_integers_beyond_float64_name_the_argument(call, arg):
    with pytest.raises(ValueError, match=rf"\] {arg} is too large in magnitude"):
        call()


@pytest.mark.parametrize("distribution", ["truncated_normal", "normal", "uniform"])
def test_variance_scaling_too_small_names_scale(distribution):
    with pytest.raises(ValueError, match=r"\[variance_scaling\] scale=1e-300 is too small"):
        mfi.variance_scaling(1e-300, distribution=distribution)
    # Large enough alone, too small for this weight's fans: refused at the call.
    init = mfi.variance_scaling(1e-74, "fan_in", distribution)
    with pytest.raises(ValueError, match=r"scale=1e-74 is too small: .* with fan_in = 4096"):
        init(mx.zeros((2, 4096)))
    w = mfi.variance_scaling(1e-60, "fan_in", distribution)(mx.zeros((64, 64)), key=mx.random.key(1))
    assert np.all(np.array(w) != 0)  # never silently zeros


def test_a_failing_rule_names_the_parameter():
    import mlx.nn as nn

    model = nn.Sequential(nn.Linear(4, 4))
    with pytest.raises(ValueError, match=r"\[init_model\] layers\.0\.bias: .*\[he_normal\] .*at "
                                         r"least 2 dimensional") as info:
        mfi.init_model(model, [("*", mfi.he_normal())], key=mx.random.key(0))
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(ValueError, match=r"\[init_sharded\] layers\.0\.bias: .*\[he_normal\]"):
        mfi.init_sharded(model, [("*", mfi.he_normal())], key=mx.random.key(0), rank=0, size=1)
