"""Every CPU kernel build and thread count gives the bits of the scalar path."""

import mlx.core as mx
import numpy as np
import pytest

import mlx_fused_init as mfi
from mlx_fused_init import _ext
from conftest import bits

KERNELS = [k.strip() for k in mfi.available_cpu_kernels().split(",")]


@pytest.fixture
def restore_cpu_settings():
    kernel, threads = mfi.cpu_kernel(), mfi.num_threads()
    yield
    mfi.set_cpu_kernel(kernel)
    mfi.set_num_threads(threads)


def draw(n, dtype, key=(5, 6), kind=0, scale=0.75, shift=0.0):
    # kind 1 (uniform) draws on [shift, shift + scale).
    bounds = dict(low=shift, high=shift + scale) if kind == 1 else dict(scale=scale, shift=shift)
    out = _ext.fused_init(
        mx.array(key, dtype=mx.uint32), [n], dtype, kind=kind, stream=mx.cpu, **bounds
    )
    return bits(out)


def test_scalar_kernel_always_available():
    assert "scalar" in KERNELS
    assert mfi.cpu_kernel() == KERNELS[0]  # "auto" picks the fastest


@pytest.mark.parametrize("dtype", [mx.float32, mx.float16, mx.bfloat16])
@pytest.mark.parametrize("n", [1, 3, 4, 5, 1023, (1 << 20) + 3])
@pytest.mark.parametrize("kind, shift", [(0, 0.0), (0, 0.5), (1, -0.25)])
def test_kernels_and_threads_agree_bitwise(n, dtype, kind, shift, restore_cpu_settings):
    mfi.set_cpu_kernel("scalar")
    mfi.set_num_threads(1)
    reference = draw(n, dtype, kind=kind, shift=shift)
    for kernel in KERNELS:
        mfi.set_cpu_kernel(kernel)
        for threads in (1, 2, 3, 8):
            mfi.set_num_threads(threads)
            got = draw(n, dtype, kind=kind, shift=shift)
            np.testing.assert_array_equal(got, reference, err_msg=f"{kernel} x{threads}")


def test_windows_agree_across_kernels(restore_cpu_settings):
    # Rows of a window are runs that start and end inside Philox blocks.
    key = mx.random.key(3)
    args = dict(kind=0, scale=1.0, full_shape=[37, 1001], start=[3, 5], stream=mx.cpu)
    results = []
    for kernel in KERNELS:
        mfi.set_cpu_kernel(kernel)
        mfi.set_num_threads(2)
        results.append(bits(_ext.fused_init(key, [30, 990], mx.float32, **args)))
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_bad_kernel_name():
    with pytest.raises(ValueError, match="Unknown kernel 'sse9'"):
        mfi.set_cpu_kernel("sse9")


def test_negative_thread_count():
    with pytest.raises(ValueError, match="n must be >= 0"):
        mfi.set_num_threads(-1)


def test_zero_threads_means_all(restore_cpu_settings):
    mfi.set_num_threads(0)
    assert mfi.num_threads() >= 1
