"""The Metal kernel on a real GPU: same bits as the CPU path, on both the
metallib and the runtime-compiled (JIT) path. These run where a usable
Apple GPU is found (tests/gpu_probe.py: a subprocess runs a stock MLX op,
then this package's kernel); elsewhere they are skipped and
tests/test_metal_shim.py runs the same kernel source on the CPU."""

import os
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

import mlx_fused_init as mfi
from mlx_fused_init._backend import ext as _ext
from conftest import bits
from gpu_probe import gpu_status, gpu_tests_run, require_gpu

STATUS, DETAIL = gpu_status()
gpu_only = pytest.mark.skipif(not gpu_tests_run(), reason=DETAIL)
DTYPES = [mx.float32, mx.float16, mx.bfloat16]
TRANSFORMS = [dict(kind=0, scale=0.75), dict(kind=0, scale=0.75, shift=0.25),
              dict(kind=1, low=-0.5, high=0.25)]


def test_build_has_metal_exactly_on_macos():
    assert mfi.built_with_metal() == (sys.platform == "darwin")
    metallib = Path(_ext.__file__).with_name("mlx_fused_init.metallib")
    kind, detail = _ext.metal_kernel_origin()
    if not mfi.built_with_metal():
        assert kind == "none" and not metallib.exists()
    elif os.environ.get("MLX_FUSED_INIT_METAL_JIT") == "1":
        assert kind == "jit" and "MLX_FUSED_INIT_METAL_JIT=1" in detail
    elif metallib.exists():
        assert (kind, detail) == ("metallib", str(metallib))
    else:
        assert kind == "jit"


def test_gpu_probe():
    # A usable GPU that runs stock MLX must run this package's kernel too;
    # and the self-hosted Apple-silicon job (MFI_REQUIRE_GPU=1) must have one.
    assert STATUS != "broken", DETAIL
    if require_gpu():
        assert STATUS == "usable", DETAIL


@gpu_only
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (3,), (4,), (1023,), ((1 << 20) + 3,), (7, 13), (8, 3, 3, 5)])
def test_gpu_equals_cpu(shape, dtype):
    key = mx.random.key(42)
    for args in TRANSFORMS:
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
@pytest.mark.parametrize("view", ["reversed", "strided", "broadcast"])
def test_gpu_key_views(view):
    # Views as MLX makes them (lazy: their strides exist only once
    # evaluated); the op makes them contiguous for the GPU kernels.
    k = mx.array([77, 77, 5, 6, 9, 1], dtype=mx.uint32)
    key = {"reversed": k[2:4][::-1], "strided": k[2::2][:2],
           "broadcast": mx.broadcast_to(k[0], (2,))}[view]
    plain = mx.array(np.array(key), dtype=mx.uint32)
    for args in TRANSFORMS:
        g = _ext.fused_init(key, [1027], mx.float32, stream=mx.gpu, **args)
        c = _ext.fused_init(plain, [1027], mx.float32, stream=mx.cpu, **args)
        np.testing.assert_array_equal(bits(g), bits(c))
    counters = mx.array(np.arange(40, dtype=np.uint32).reshape(10, 4))
    g = mfi.philox4x32_10(counters, key, stream=mx.gpu)
    c = mfi.philox4x32_10(counters, plain, stream=mx.cpu)
    np.testing.assert_array_equal(np.array(g), np.array(c))


@gpu_only
def test_gpu_dispatch_limit_is_checked_when_called():
    # 2^34 + 2^17 elements: refused when the graph is built, before any
    # output is allocated.
    with pytest.raises(ValueError, match=r"more than one GPU dispatch can generate"):
        mfi.normal()(mx.zeros((2**17, 2**17 + 1)), stream=mx.gpu)


@gpu_only
@pytest.mark.skipif(os.environ.get("MFI_TEST_DEVICE") == "cpu",
                    reason="MFI_TEST_DEVICE=cpu made the CPU the default device")
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


JIT_CHECK = r"""
import mlx.core as mx, numpy as np
from mlx_fused_init._backend import ext as _ext
kind, detail = _ext.metal_kernel_origin()
assert kind == "jit", (kind, detail)
key = mx.random.key(42)
for dtype in (mx.float32, mx.float16, mx.bfloat16):
    for args in ({TRANSFORMS}):
        g = _ext.fused_init(key, [4099], dtype, stream=mx.gpu, **args)
        c = _ext.fused_init(key, [4099], dtype, stream=mx.cpu, **args)
        w = mx.uint32 if dtype == mx.float32 else mx.uint16
        assert np.array_equal(np.array(mx.view(g, w)), np.array(mx.view(c, w))), (dtype, args)
c = mx.array(np.arange(40, dtype=np.uint32).reshape(10, 4))
assert np.array_equal(np.array(_ext.philox4x32_10(c, key, stream=mx.gpu)),
                      np.array(_ext.philox4x32_10(c, key, stream=mx.cpu)))
print("jit-ok")
""".replace("{TRANSFORMS}", repr(TRANSFORMS)[1:-1] + ",")


@gpu_only
def test_jit_path_gives_the_same_bits():
    # MLX_FUSED_INIT_METAL_JIT=1: the embedded source, compiled by MLX's
    # runtime compiler in a fresh process, gives the CPU path's bits too.
    env = dict(os.environ, MLX_FUSED_INIT_METAL_JIT="1")
    r = subprocess.run([sys.executable, "-c", JIT_CHECK], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0 and "jit-ok" in r.stdout, r.stdout + r.stderr
