"""The CPU fill's work split (csrc/work_split.cpp): threads claim chunks from
a shared counter. Every chunk is claimed exactly once, however unevenly the
threads progress, and the bits never depend on who filled what. Also the
default thread-count rule (csrc/cpu_threads.cpp) on given core counts."""

import mlx.core as mx
import numpy as np
import pytest

import mlx_fused_init as mfi
from mlx_fused_init._backend import ext as _ext
from test_cpu_paths import bits, draw

N = (1 << 20) + 3  # the last chunk is short


@pytest.fixture
def hook(restore_cpu_settings):
    """Set the split's test hook for one test; always switched off after."""
    yield lambda **kw: _ext._cpu_split_test_hook(**kw)
    _ext._cpu_split_test_hook()


@pytest.fixture(scope="module")
def reference():
    """One thread, scalar kernel: the bits every split must give."""
    kernel, threads = mfi.cpu_kernel(), mfi.num_threads()
    mfi.set_cpu_kernel("scalar")
    mfi.set_num_threads(1)
    try:
        return draw(N, mx.float32)
    finally:
        mfi.set_cpu_kernel(kernel)
        mfi.set_num_threads(threads)


def traced(threads, **hook_args):
    """A fill of N elements on `threads` threads: its bits, plan and claims."""
    _ext._cpu_split_test_hook(trace=True, **hook_args)
    mfi.set_num_threads(threads)
    got = draw(N, mx.float32)
    (nt, chunk, chunks, _shift), claims = _ext._cpu_split_trace()
    return got, (nt, chunk, chunks), claims


def assert_each_chunk_once(claims, chunks):
    # Duplicated work writes the same values twice: only this catches it.
    taken = sorted(c for _, c in claims)
    assert taken == list(range(chunks)), f"claims {taken} of {chunks} chunks"


@pytest.mark.parametrize("threads", [2, 3, 8])
def test_every_chunk_claimed_once(threads, hook, reference):
    got, (nt, chunk, chunks), claims = traced(threads)
    assert (nt, chunk, chunks) == _ext._cpu_split_plan(N, threads)[:3]
    assert nt == threads and chunks >= 8 * threads
    assert_each_chunk_once(claims, chunks)
    np.testing.assert_array_equal(got, reference)


@pytest.mark.parametrize("stalled", [0, 1], ids=["caller", "worker"])
def test_a_stalled_thread_leaves_its_share_to_the_others(stalled, hook, reference):
    # The stalled task claims nothing until every chunk is taken: with equal
    # parts its half would wait for it; here the other thread takes it all.
    got, (nt, _, chunks), claims = traced(2, stall_task=stalled)
    assert nt == 2
    assert_each_chunk_once(claims, chunks)
    assert {task for task, _ in claims} == {1 - stalled}
    np.testing.assert_array_equal(got, reference)


@pytest.mark.parametrize("threads", [2, 3])
def test_a_slow_worker_gives_the_same_bits(threads, hook, reference):
    # A worker that sleeps 3 ms before each claim: the claims interleave
    # unevenly, in an order that changes from run to run.
    for _ in range(3):
        got, (_, _, chunks), claims = traced(threads, slow_task=1, slow_us=3000)
        assert_each_chunk_once(claims, chunks)
        np.testing.assert_array_equal(got, reference)


@pytest.mark.parametrize("chunk", [64, 4096, 100_000, 1 << 19])
def test_any_chunk_size_gives_the_same_bits(chunk, hook, reference):
    # 100_000 is rounded up to a multiple of 64; 2^19 gives two equal parts
    # (the split before chunks were claimed).
    got, (_, used, chunks), claims = traced(2, chunk=chunk)
    assert used % 64 == 0 and used >= chunk
    assert_each_chunk_once(claims, chunks)
    np.testing.assert_array_equal(got, reference)


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
def test_16_bit_outputs_split_the_same(dtype, hook, restore_cpu_settings):
    mfi.set_num_threads(1)
    one = draw(N, dtype)
    _ext._cpu_split_test_hook(stall_task=0, chunk=8192 + 64)
    mfi.set_num_threads(3)
    np.testing.assert_array_equal(draw(N, dtype), one)


@pytest.mark.parametrize("total", [1, 63, 1 << 15, (1 << 15) + 1, 100_003, 1 << 20,
                                   (1 << 24) + 5, 1 << 34])
@pytest.mark.parametrize("threads", [1, 2, 7, 64])
def test_plan(total, threads):
    nt, chunk, chunks, shift, place = _ext._cpu_split_plan(total, threads)
    assert shift == 0  # no pages given
    assert place == (nt > 1 and total >= 1 << 20)
    assert 1 <= nt <= threads and nt <= chunks
    assert (chunks - 1) * chunk < total <= chunks * chunk  # covers, no empty chunk
    if nt == 1:
        assert (chunk, chunks) == (total, 1)  # one call, no split
        assert threads == 1 or total <= 1 << 15
    else:
        assert chunk % 64 == 0  # no cache line written by two threads
        assert (1 << 13) <= chunk <= (1 << 17)
        assert total > (nt - 1) * (1 << 15)  # a thread per 2^15 elements at most
        # Enough chunks that a stalled thread's share can move.
        assert chunks >= min(8 * nt, total // (1 << 17))


@pytest.mark.parametrize("page", [1 << 19, 1 << 20])  # 2 MiB of float32, of 16-bit
@pytest.mark.parametrize("first", [0, 1, 4092, (1 << 19) - 4])
@pytest.mark.parametrize("threads", [2, 3, 16])
def test_plan_on_huge_pages(page, first, threads):
    # Large outputs are cut where their 2 MiB pages begin: every chunk
    # boundary after element 0 is a page boundary (first + k * page).
    total = 40 * page + 12345
    nt, chunk, chunks, shift, place = _ext._cpu_split_plan(total, threads, page, first)
    if total // page < 4 * threads:  # too few pages for a short tail: chunks as ever
        assert (chunk, shift) == _ext._cpu_split_plan(total, threads)[1:4:2]
        return
    assert (nt, chunk, place) == (threads, page, True)
    bounds = [max(0, c * chunk - shift) for c in range(chunks)] + [total]
    assert bounds[0] == 0 and all(a < b for a, b in zip(bounds, bounds[1:]))
    assert all((b - first) % page == 0 for b in bounds[1:-1])
    assert bounds[1] == (first if first else page)


def test_chunks_follow_the_outputs_pages(hook, restore_cpu_settings):
    # A real output of 2^23 float32 (32 MiB): the chunk boundaries the fill
    # used fall on 2 MiB boundaries of its buffer's address (Linux), and the
    # bits equal one thread's.
    import sys
    n = (1 << 23) + 5
    mfi.set_num_threads(1)
    one = draw(n, mx.float32)
    _ext._cpu_split_test_hook(trace=True)
    mfi.set_num_threads(2)
    x = _ext.fused_init(mx.array((5, 6), dtype=mx.uint32), [n], mx.float32, kind=0,
                        stream=mx.cpu, scale=0.75, shift=0.0)  # as draw() makes it
    mx.eval(x)
    (nt, chunk, chunks, shift), claims = _ext._cpu_split_trace()
    assert_each_chunk_once(claims, chunks)
    np.testing.assert_array_equal(bits(x), one)
    if not sys.platform.startswith("linux"):
        assert shift == 0 and chunk <= 1 << 17  # no huge pages: chunks as ever
        return
    address = np.frombuffer(memoryview(x), dtype=np.uint8).ctypes.data
    assert chunk == (2 << 20) // 4
    assert (address + 4 * (chunk - shift)) % (2 << 20) == 0


def test_the_caller_does_not_wait_for_a_worker_without_work(hook, reference):
    # The worker sleeps 3 s before each claim: the caller takes every chunk
    # meanwhile and returns; waiting for the worker itself (as a join would)
    # would take 3 s. (A statement about waiting, not about speed: the fill
    # alone takes milliseconds.)
    import time
    t0 = time.monotonic()
    got, (_, _, chunks), claims = traced(2, slow_task=1, slow_us=3_000_000)
    assert time.monotonic() - t0 < 2.0
    assert {task for task, _ in claims} == {0}
    assert_each_chunk_once(claims, chunks)
    np.testing.assert_array_equal(got, reference)


def test_a_worker_held_mid_item_is_not_waited_for(hook, restore_cpu_settings):
    # The worker stops for 1 s after filling an item aside, before publishing
    # it: a worker descheduled mid-item. The caller (slowed so that the
    # worker surely claims a chunk) takes the rest, redoes the held items in
    # place and returns without waiting 1 s. Then the late worker must not
    # publish: the output, overwritten with zeros after the return, stays
    # zero once the hold is over. (Statements about waiting and writing,
    # not about speed: the fill alone takes milliseconds.)
    import time
    hold_s = 1.0
    mfi.set_num_threads(1)
    one = draw(N, mx.float32)
    mfi.set_num_threads(2)
    # A fill the worker must do alone: it returns once the worker is back
    # from any earlier test's delays (one sleeps 3 s before each claim).
    _ext._cpu_split_test_hook(stall_task=0)
    draw(N, mx.float32)
    _ext._cpu_split_test_hook(trace=True, slow_task=0, slow_us=2000, hold_task=1,
                              hold_us=int(hold_s * 1e6))
    t0 = time.monotonic()
    x = _ext.fused_init(mx.array((5, 6), dtype=mx.uint32), [N], mx.float32, kind=0,
                        stream=mx.cpu, scale=0.75, shift=0.0)  # as draw() makes it
    mx.eval(x)
    returned = time.monotonic() - t0
    (nt, _, chunks, _), claims = _ext._cpu_split_trace()
    assert nt == 2 and returned < hold_s / 2, f"returned after {returned:.3f} s"
    assert 1 in {task for task, _ in claims}, "the worker claimed no chunk"
    assert_each_chunk_once(claims, chunks)
    np.testing.assert_array_equal(bits(x), one)
    view = np.array(x, copy=False)  # MLX's own memory, writable
    view[:] = 0
    time.sleep(hold_s + 0.5 - (time.monotonic() - t0))
    assert not view.any(), f"{np.count_nonzero(view)} elements written after the return"


@pytest.mark.parametrize("dtype", [mx.float32, mx.bfloat16])
@pytest.mark.parametrize("n", [(1 << 16) + 64, (1 << 23) + 5])
def test_workers_fill_aside_with_the_same_bits(dtype, n, hook, restore_cpu_settings):
    # Held workers and the caller share every fill: each item is either
    # published by a worker or redone by the caller, at every item offset
    # of a chunk (2^16 + 64: items of a 2^13-element chunk; 2^23 + 5: huge
    # page chunks of 32 items, the first one short).
    mfi.set_num_threads(1)
    one = draw(n, dtype)
    mfi.set_num_threads(3)
    for hook_args in ({}, dict(hold_task=2, hold_us=300), dict(no_redo=True)):
        _ext._cpu_split_test_hook(**hook_args)
        np.testing.assert_array_equal(draw(n, dtype), one, err_msg=str(hook_args))


@pytest.mark.parametrize("cpus, caller, threads, expected", [
    ([0, 1], 0, 2, [0, 1]),
    ([0, 1], 1, 2, [1, 0]),            # the worker gets the CPU the caller is not on
    ([2, 5, 7], 5, 3, [5, 7, 2]),      # cyclically after the caller's
    ([0, 1, 2, 3], 3, 4, [3, 0, 1, 2]),
    ([0, 1, 2, 3], 1, 2, []),          # fewer threads than CPUs: left to the OS
    ([0, 1], 0, 3, []),                # more threads than CPUs
    ([0, 1], 4, 2, []),                # the caller runs elsewhere (its mask changed)
    ([], -1, 2, []),                   # nothing known (off Linux)
])
def test_placement_spread(cpus, caller, threads, expected):
    assert _ext._cpu_placement_spread(cpus, caller, threads) == expected


# ------------------------------------------------ the default thread count
@pytest.mark.parametrize("perf, eff, hw, env, expected", [
    (0, 0, 2, None, 2),        # Linux, or one kind of core: every hardware thread
    (0, 0, 64, None, 64),
    (0, 0, 0, None, 1),        # hardware_concurrency() unknown
    (6, 6, 12, None, 6),       # M3 Pro: the performance cores
    (10, 4, 14, None, 10),     # M4 Pro
    (4, 4, 8, None, 4),        # M1
    (8, 2, 4, None, 4),        # never more than the OS runs at once
    (6, 0, 6, None, 6),        # an efficiency count of 0: one kind
    (0, 4, 8, None, 8),
    (6, 6, 12, "12", 12),      # the variable wins
    (6, 6, 12, "3", 3),
    (0, 0, 2, " 5 ", 5),
    (0, 0, 2, "0", 2),         # 0, negative or not a number: the default
    (6, 6, 12, "-3", 6),
    (6, 6, 12, "four", 6),
    (6, 6, 12, "4x", 6),
    (6, 6, 12, "", 6),
    (6, 6, 12, "99999999999999999999", 6),
])
def test_default_thread_count(perf, eff, hw, env, expected):
    assert _ext._cpu_thread_count(perf, eff, hw, env) == expected


def test_this_machine_default(restore_cpu_settings, monkeypatch):
    perf, eff = _ext._cpu_core_kinds()
    import os
    expected = _ext._cpu_thread_count(perf, eff, os.cpu_count() or 1,
                                      os.environ.get("MLX_FUSED_INIT_NUM_THREADS"))
    mfi.set_num_threads(0)
    assert mfi.num_threads() == expected
