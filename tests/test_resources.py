"""Memory, huge arrays and threads: exact peak memory, allocation failure,
a real array of more than 2^31 elements, concurrent callers."""

import gc
import sys
import threading

import mlx.core as mx
import numpy as np
import pytest

import mlx_fused_init as mfi
from conftest import bits, to_numpy
from reference import normal_z


def measure_peak(fn):
    # Arrays of earlier tests freed by the garbage collector during the
    # measurement would lower the baseline: collect them first, and keep
    # the collector off while measuring.
    gc.collect()
    gc.disable()
    try:
        mx.eval(mx.zeros(1))
        # MLX's CPU streams free inputs in a task after the op: let every
        # queued task finish so nothing is released while we measure.
        mx.synchronize()
        mx.clear_cache()
        base = mx.get_active_memory()
        mx.reset_peak_memory()
        out = fn()
        mx.eval(out)
        return out, mx.get_peak_memory() - base
    finally:
        gc.enable()


@pytest.mark.parametrize("shape, dtype", [((1000, 1000), mx.float32), ((333, 777), mx.bfloat16),
                                          ((64, 3, 3, 32), mx.float16)])
def test_peak_memory_is_exactly_the_output(shape, dtype):
    key = mx.random.key(0)
    mx.eval(key)
    out, peak = measure_peak(lambda: mfi.glorot_normal(dtype)(mx.zeros(shape), key=key))
    # MLX's peak-memory counter is exact and deterministic: the fused node
    # allocates its output and nothing else (stock MLX allocates 2-3x).
    # MLX's Metal allocator (macOS, also for CPU arrays) rounds large
    # buffers up to a 16 KiB page.
    slack = 16384 if sys.platform == "darwin" else 0
    if mfi.backend_info()["backend"] == "portable":
        # Portable mode fills a fresh mx.zeros in place: MLX's zeros also
        # holds its one scalar (at most 8 bytes here) while it evaluates.
        slack += 8
    assert out.nbytes <= peak <= out.nbytes + slack


def test_allocation_that_cannot_succeed_is_an_error_not_a_crash():
    # 2^42 bytes: more than this machine (or any) has; MLX's own ops crash
    # with a segmentation fault here, the fused op raises.
    if mfi.backend_info()["backend"] == "portable":
        # Eager: refused when called, before anything is allocated.
        with pytest.raises(ValueError, match=r"\[glorot_normal\] the output of shape "
                           r"\(1048576,1048576\) needs 4398046511104 bytes, more than this "
                           r"machine's memory"):
            mfi.glorot_normal()(mx.zeros((2**20, 2**20)), key=mx.random.key(0), stream=mx.cpu)
        return
    w = mfi.glorot_normal()(mx.zeros((2**20, 2**20)), key=mx.random.key(0), stream=mx.cpu)
    # Linux: our check of MLX's CPU allocator; macOS: MLX's Metal allocator
    # refuses by itself, in its own words.
    linux = sys.platform.startswith("linux")
    with pytest.raises(RuntimeError, match="Unable to allocate 4398046511104 bytes" if linux else "allocat"):
        mx.eval(w)
    # And the process goes on working.
    assert mfi.glorot_normal()(mx.zeros((2, 2)), key=mx.random.key(0)).shape == (2, 2)


def test_a_real_array_of_more_than_2_31_elements():
    # 32768 x 65537 bfloat16 = 2^31 + 32768 elements, 4.3 GB.
    shape = (32768, 65537)
    n = shape[0] * shape[1]
    assert n > 2**31
    key = mx.random.key(99)
    w = mfi.normal(0.0, 1.0, mx.bfloat16)(mx.zeros(shape), key=key)
    mx.eval(w)
    for center in (0, 2**31 - 1, 2**31, n - 1):
        idx = np.arange(max(0, center - 5), min(n, center + 6))
        rows, cols = idx // shape[1], idx % shape[1]
        got = to_numpy(w[mx.array(rows.astype(np.int32)), mx.array(cols.astype(np.int32))])
        got = got.astype(np.float64)
        ref = normal_z(idx, (0, 99))
        # bfloat16: one ulp (2^-7 relative) plus docs/spec.md §3's float32 bound.
        assert np.all(np.abs(got - ref) <= np.abs(ref) * 2.0**-7 + 4e-6 + 2.0**-133), center
    del w


def test_concurrent_callers_get_the_same_bits_as_alone():
    shapes = [(256, 128), (4096, 300), (3, 5, 7), (1, 1)]
    keys = [mx.random.key(1000 + i) for i in range(16)]
    alone = {(i, s): bits(mfi.glorot_normal()(mx.zeros(s), key=keys[i], stream=mx.cpu))
             for i in range(16) for s in shapes}
    failures, done = [], []

    def worker(i):
        stream = mx.new_stream(mx.cpu) if i % 2 else None  # own stream or default
        try:
            for _ in range(3):
                for s in shapes:
                    got = bits(mfi.glorot_normal()(mx.zeros(s), key=keys[i], stream=stream))
                    if not np.array_equal(got, alone[(i, s)]):
                        failures.append((i, s))
            done.append(i)
        except Exception as e:  # pragma: no cover - reported below
            failures.append((i, repr(e)))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)  # a deadlock fails here instead of hanging CI
    assert not [t for t in threads if t.is_alive()], "threads still running: deadlock?"
    assert not failures, failures
    assert sorted(done) == list(range(16))
