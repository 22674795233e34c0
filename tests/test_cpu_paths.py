"""Every CPU kernel build and thread count gives the bits of the scalar path;
the x86 builds are chosen only where the CPU and the OS allow them; the
thread pool runs every part exactly once, also in a forked child."""

import mlx.core as mx
import numpy as np
import pytest

import mlx_fused_init as mfi
from mlx_fused_init._backend import ext as _ext
from conftest import bits

KERNELS = [k.strip() for k in mfi.available_cpu_kernels().split(",")]


def poison_allocator_cache(nbytes):
    """Leave buffers of nbytes full of 0xFF in MLX's allocator cache, so that
    the next output of that size starts as junk: a part of it that no thread
    writes then shows, instead of keeping the bits of the previous draw of
    the same size (the reference, which freed the very buffer reused next)."""
    mx.clear_cache()
    junk = mx.full((nbytes,), 255, dtype=mx.uint8)
    mx.eval(junk)
    del junk


def draw(n, dtype, key=(5, 6), kind=0, scale=0.75, shift=0.0):
    # kind 1 (uniform) draws on [shift, shift + scale).
    poison_allocator_cache(n * dtype.size)
    bounds = dict(low=shift, high=shift + scale) if kind == 1 else dict(scale=scale, shift=shift)
    out = _ext.fused_init(
        mx.array(key, dtype=mx.uint32), [n], dtype, kind=kind, stream=mx.cpu, **bounds
    )
    return bits(out)


def test_scalar_kernel_always_available():
    assert "scalar" in KERNELS
    assert mfi.cpu_kernel() == KERNELS[0]  # "auto" picks the fastest


def require(kernel):
    """Skip, saying why, when this build or CPU cannot run `kernel`."""
    if kernel not in KERNELS:
        where = "arm64" if kernel == "neon" else "x86-64"
        pytest.skip(
            f"the {kernel!r} kernel is NOT tested here: this machine runs only "
            f"{', '.join(KERNELS)} ({kernel!r} needs an {where} CPU"
            + (" with AVX-512 F/VL/BW/DQ and an OS that saves ZMM state)"
               if kernel == "avx512" else ")"))


# Sizes: 1-5 straddle one block; 67 and 2169 leave every remainder of the
# 16-lane (avx512), 8-lane (avx2) and 4-lane loops and of the 256-block tile;
# 2^20 + 3 is split across threads with partial blocks at the ends.
@pytest.mark.parametrize("kernel", ["avx512", "avx2", "neon"])
@pytest.mark.parametrize("dtype", [mx.float32, mx.float16, mx.bfloat16])
@pytest.mark.parametrize("n", [1, 3, 4, 5, 67, 1023, 2169, (1 << 20) + 3])
@pytest.mark.parametrize("kind, shift", [(0, 0.0), (0, 0.5), (1, -0.25)])
def test_kernels_and_threads_agree_bitwise(kernel, n, dtype, kind, shift, restore_cpu_settings):
    require(kernel)
    mfi.set_cpu_kernel("scalar")
    mfi.set_num_threads(1)
    reference = draw(n, dtype, kind=kind, shift=shift)
    mfi.set_cpu_kernel(kernel)
    for threads in (1, 2, 3, 8):
        mfi.set_num_threads(threads)
        got = draw(n, dtype, kind=kind, shift=shift)
        np.testing.assert_array_equal(got, reference, err_msg=f"{kernel} x{threads}")


def test_scalar_threads_agree_bitwise(restore_cpu_settings):
    mfi.set_cpu_kernel("scalar")
    mfi.set_num_threads(1)
    reference = draw((1 << 18) + 1, mx.float32)
    for threads in (2, 3, 8):
        mfi.set_num_threads(threads)
        np.testing.assert_array_equal(draw((1 << 18) + 1, mx.float32), reference)


def test_windows_agree_across_kernels(restore_cpu_settings):
    # Rows of a window are runs that start and end inside Philox blocks.
    key = mx.random.key(3)
    args = dict(kind=0, scale=1.0, full_shape=[37, 1001], start=[3, 5], stream=mx.cpu)
    results = []
    for kernel in KERNELS:
        mfi.set_cpu_kernel(kernel)
        mfi.set_num_threads(2)
        poison_allocator_cache(30 * 990 * 4)
        results.append(bits(_ext.fused_init(key, [30, 990], mx.float32, **args)))
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


@pytest.mark.parametrize("kernel", ["avx512", "avx2", "neon"])
def test_counter_high_words_agree_across_kernels(kernel, restore_cpu_settings):
    # Rows 2^19 - 1 and 2^19 of a (2^20, 2^15) virtual tensor straddle
    # element 2^34, i.e. block 2^32, where the counter's high word steps (a
    # tile ends there); the subsequence fills counter words 2 and 3 with
    # distinct nonzero halves, so swapped or dropped words show.
    require(kernel)
    args = dict(kind=0, scale=1.0, shift=0.0, full_shape=[1 << 20, 1 << 15],
                start=[(1 << 19) - 1, 0], subsequence=0x12345678_9ABCDEF0, stream=mx.cpu)
    key = mx.array([7, 9], dtype=mx.uint32)
    results = {}
    for k, threads in (("scalar", 1), (kernel, 1), (kernel, 3)):
        mfi.set_cpu_kernel(k)
        mfi.set_num_threads(threads)
        poison_allocator_cache(2 * (1 << 15) * 4)
        results[(k, threads)] = bits(_ext.fused_init(key, [2, 1 << 15], mx.float32, **args))
    for name, got in results.items():
        np.testing.assert_array_equal(got, results[("scalar", 1)], err_msg=str(name))


def test_bad_kernel_name():
    with pytest.raises(ValueError, match="Unknown kernel 'sse9'"):
        mfi.set_cpu_kernel("sse9")


def test_negative_thread_count():
    with pytest.raises(ValueError, match="n must be >= 0"):
        mfi.set_num_threads(-1)


def test_zero_threads_means_all(restore_cpu_settings):
    mfi.set_num_threads(0)
    assert mfi.num_threads() >= 1


# ------------------------------------------------ x86: CPU *and* OS support
FMA, OSXSAVE, AVX = 1 << 12, 1 << 27, 1 << 28  # CPUID.1:ECX
AVX2, F, DQ, BW, VL = 1 << 5, 1 << 16, 1 << 17, 1 << 30, 1 << 31  # CPUID.(7,0):EBX
ECX_ALL = FMA | OSXSAVE | AVX
EBX_ALL = AVX2 | F | DQ | BW | VL
XCR0_ZMM = 0b1110_0111  # x87, SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM


# (CPUID.1:ECX, CPUID.(7,0):EBX, XCR0, max leaf) -> (avx2, avx512), from the
# Intel SDM (vol. 1, 15.2-15.4 and 13.3): each row takes away one thing.
@pytest.mark.parametrize("ecx, ebx, xcr0, max_leaf, expected", [
    (ECX_ALL, EBX_ALL, XCR0_ZMM, 7, (True, True)),
    (ECX_ALL, EBX_ALL, 0b0000_0111, 7, (True, False)),   # OS saves no AVX-512 state
    (ECX_ALL, EBX_ALL, 0b1100_0111, 7, (True, False)),   # no opmask state
    (ECX_ALL, EBX_ALL, 0b1010_0111, 7, (True, False)),   # no upper ZMM halves
    (ECX_ALL, EBX_ALL, 0b0110_0111, 7, (True, False)),   # no ZMM16-31
    (ECX_ALL, EBX_ALL, 0b1110_0011, 7, (False, False)),  # no YMM state
    (ECX_ALL, EBX_ALL, 0b1110_0101, 7, (False, False)),  # no XMM state
    (ECX_ALL & ~OSXSAVE, EBX_ALL, XCR0_ZMM, 7, (False, False)),  # XGETBV off
    (ECX_ALL & ~FMA, EBX_ALL, XCR0_ZMM, 7, (False, False)),
    (ECX_ALL, EBX_ALL & ~AVX2, XCR0_ZMM, 7, (False, False)),
    (ECX_ALL, EBX_ALL & ~VL, XCR0_ZMM, 7, (True, False)),
    (ECX_ALL, EBX_ALL & ~BW, XCR0_ZMM, 7, (True, False)),
    (ECX_ALL, EBX_ALL & ~DQ, XCR0_ZMM, 7, (True, False)),
    (ECX_ALL, EBX_ALL & ~F, XCR0_ZMM, 7, (True, False)),
    (ECX_ALL, EBX_ALL, XCR0_ZMM, 6, (False, False)),     # no leaf 7 to read
], ids=["all", "no-avx512-state", "no-opmask", "no-zmm-hi256", "no-hi16-zmm", "no-ymm",
        "no-xmm", "no-osxsave", "no-fma", "no-avx2", "no-vl", "no-bw", "no-dq", "no-f",
        "max-leaf-6"])
def test_x86_kernel_decision(ecx, ebx, xcr0, max_leaf, expected):
    assert _ext._x86_usable(ecx, ebx, xcr0, max_leaf) == expected


def cpuinfo_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def test_x86_kernels_match_what_linux_reports():
    # Linux lists the AVX/AVX-512 flags only when the CPU has them AND the
    # kernel enabled their register state in XCR0: an independent answer.
    flags = cpuinfo_flags()
    if flags is None or "sse2" not in flags:
        pytest.skip("needs Linux on x86-64 (/proc/cpuinfo)")
    assert ("avx2" in KERNELS) == ({"avx2", "fma"} <= flags)
    assert ("avx512" in KERNELS) == ({"avx512f", "avx512vl", "avx512bw", "avx512dq"} <= flags)
    # And the raw registers read by the extension agree with the flags.
    avx2, avx512 = _ext._x86_usable(*_ext._x86_cpuid())
    assert (avx2, avx512) == ("avx2" in KERNELS, "avx512" in KERNELS)


def test_auto_prefers_avx512_where_usable(restore_cpu_settings):
    require("avx512")
    mfi.set_cpu_kernel("auto")
    assert mfi.cpu_kernel() == "avx512"


# ------------------------------------------------ the persistent thread pool
def test_pool_workers_are_started_once_and_reused(restore_cpu_settings):
    n = 1 << 18  # 8 parts of 2^15 elements: every thread count below splits
    mfi.set_num_threads(1)
    reference = draw(n, mx.float32)
    mfi.set_num_threads(4)
    np.testing.assert_array_equal(draw(n, mx.float32), reference)
    size = _ext._cpu_pool_size()
    assert size >= 3  # the caller plus 3 workers (more if an earlier test asked)
    for threads in (2, 4, 3):
        mfi.set_num_threads(threads)
        np.testing.assert_array_equal(draw(n, mx.float32), reference)
    assert _ext._cpu_pool_size() == size  # no new thread for smaller splits


def test_pool_runs_every_task_once_on_several_threads():
    runs, who = _ext._cpu_pool_run(5)
    assert runs == [1] * 5
    assert len(set(who)) > 1  # not all on the caller
    assert _ext._cpu_pool_run(0) == ([], [])
    assert _ext._cpu_pool_run(1)[0] == [1]


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork (POSIX)")
def test_pool_works_in_a_forked_child():
    # The child inherits the parent's pool object but none of its threads;
    # it must start its own rather than wait for workers that do not exist.
    # (The pool itself, not a draw: MLX's own CPU stream thread does not
    # survive fork either, so mx.eval in such a child hangs, with or without
    # this extension.)
    import os
    import signal

    assert _ext._cpu_pool_run(4)[0] == [1] * 4  # the parent's pool has workers
    pid = os.fork()
    if pid == 0:  # child: exit status 0 only if every task ran once
        status = 1
        try:
            signal.alarm(60)  # a deadlock kills the child instead of CI
            status = 0 if _ext._cpu_pool_run(4)[0] == [1] * 4 else 2
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status), f"child died: status {status:#x} (deadlock: SIGALRM)"
    assert os.WEXITSTATUS(status) == 0, "a task ran twice or not at all in the child"
