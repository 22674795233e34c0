"""The Metal kernel on a real GPU: same bits as the CPU path. These run
wherever mx.metal.is_available() (an Apple-silicon Mac) and are skipped
elsewhere; on other machines tests/test_metal_shim.py runs the same kernel
source on the CPU."""

import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

import mlx_fused_init as mfi
from mlx_fused_init import _ext
from conftest import bits

HAS_GPU = mx.metal.is_available()
gpu_only = pytest.mark.skipif(not HAS_GPU, reason="no Metal GPU on this machine")


def test_build_has_metal_exactly_on_macos():
    assert mfi.built_with_metal() == (sys.platform == "darwin")
    metallib = Path(_ext.__file__).with_name("mlx_fused_init.metallib")
    assert metallib.exists() == mfi.built_with_metal()


@gpu_only
@pytest.mark.parametrize("dtype", [mx.float32, mx.float16, mx.bfloat16])
@pytest.mark.parametrize("shape", [(1,), (3,), (4,), (1023,), ((1 << 20) + 3,), (7, 13), (8, 3, 3, 5)])
def test_gpu_equals_cpu(shape, dtype):
    key = mx.random.key(42)
    for args in (dict(kind=0, scale=0.75), dict(kind=0, scale=0.75, shift=0.25),
                 dict(kind=1, low=-0.5, high=0.25)):
        g = _ext.fused_init(key, list(shape), dtype, stream=mx.gpu, **args)
        c = _ext.fused_init(key, list(shape), dtype, stream=mx.cpu, **args)
        np.testing.assert_array_equal(bits(g), bits(c))


@gpu_only
def test_gpu_windows_equal_cpu():
    key = mx.random.key(3)
    args = dict(kind=0, scale=1.0, full_shape=[37, 1001], start=[3, 5])
    g = _ext.fused_init(key, [30, 990], mx.float32, stream=mx.gpu, **args)
    c = _ext.fused_init(key, [30, 990], mx.float32, stream=mx.cpu, **args)
    np.testing.assert_array_equal(bits(g), bits(c))


@gpu_only
def test_gpu_is_the_default_on_a_mac():
    assert mx.default_device() == mx.gpu
    key = mx.random.key(1)
    default = mfi.glorot_normal()(mx.zeros((64, 64)), key=key)
    on_gpu = mfi.glorot_normal()(mx.zeros((64, 64)), key=key, stream=mx.gpu)
    np.testing.assert_array_equal(bits(default), bits(on_gpu))


@gpu_only
def test_gpu_philox_known_answers(philox_kat):
    for counter, key, expected, name in philox_kat:
        out = mfi.philox4x32_10(
            mx.array([counter], dtype=mx.uint32), mx.array(key, dtype=mx.uint32),
            stream=mx.gpu,
        )
        assert out.tolist()[0] == expected, name
