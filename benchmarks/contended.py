"""bench_init.py --contended: the CPU fill with one core taken by another
process, as on a laptop that is doing something else.

The same contestants run twice in one process tree: on an idle machine,
then with a child process spinning, pinned to the last core
(``os.sched_setaffinity``; where that does not exist, e.g. macOS, the
spinner is not pinned, and says so). Contestants: the fused kernel on one
thread, on all threads (chunks claimed from a shared counter; the workers
fill aside and the caller takes over what a descheduled worker holds), on
all threads split into equal parts (the split before issue 19, via a test
hook of the extension), and stock ``mlx.nn.init.glorot_normal``; and, to
show what each part of the split gives, all threads left unpinned, all
threads with 2^17-element chunks instead of whole huge pages, all
threads with the workers filling in place (nothing taken over), and one
thread and all threads drawing into one reused buffer (the split without
the kernel's zeroing of fresh pages), and one thread and all threads
making fresh MLX arrays with MLX's buffer cache on (released arrays' pages
reused, as on Apple silicon by default). The summary also states what a
fresh MLX array costs per call beyond the reused buffer (its pages'
faults and zeroing, and MLX's evaluation: allocation, the hand-over to
MLX's CPU thread, the release), on one thread and on all: where that cost
does not shrink with more threads (measured on a VM, docs/performance.md),
fresh arrays stay below the split's ratio.

With one of two cores busy the operating system gives each of the two
fill threads' cores a different share: ideally all threads ÷ one thread =
1.5 (one core and a half); equal parts wait for the slower half.

Each contestant runs back to back for a block of ~0.7 s per round (as a
model's weights are made one after another), rounds interleaved, each
round in its own (seeded) order; the rate
of a block is its samples over its wall time, and medians over rounds are
reported. Back to back, not with pauses between calls: on a VM a paused
vCPU halts, and waking it for the next fill's worker costs up to
milliseconds that no split can recover (measured in docs/performance.md).
"""

import functools
import math
import os
import random
import subprocess
import sys
import time

import mlx.core as mx
import mlx.nn.init as stock_init

import mlx_fused_init as mfi
from mlx_fused_init._backend import ext as _ext
from _common import summarize

# Targets of issue 19 on a 2-core machine: all threads ÷ one thread.
TARGET_BUSY, TARGET_IDLE = 1.35, 1.8

SPIN = """
import os, sys
core = int(sys.argv[1])
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {core})
while True:
    pass
"""


class Spinner:
    """A busy child process on one core, for the duration of a with-block."""

    def __init__(self, core: int):
        self.core = core
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", SPIN, str(self.core)])
        time.sleep(0.5)  # started, and the scheduler has seen it run
        if self.proc.poll() is not None:
            raise RuntimeError(f"the spinning process exited ({self.proc.returncode})")
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


# MLX's buffer cache: its default on Linux (32 MiB) keeps no 64 MiB array,
# so each fresh array is new memory; the "MLX cache" contestants raise it
# for their calls, so that a released array's pages are reused, as MLX's
# Metal allocator does by default on Apple silicon (its cache limit is its
# memory limit). Every other MLX contestant sets it back to the default.
CACHE_ON = 1 << 30


@functools.cache
def default_cache_limit():
    """MLX's cache limit before the first change (MLX has no getter: a set
    returns the previous limit), or None where MLX has no cache limit."""
    if not hasattr(mx, "set_cache_limit"):
        return None
    limit = mx.set_cache_limit(CACHE_ON)
    mx.set_cache_limit(limit)
    return limit


def cache_limit(on: bool):
    if default_cache_limit() is not None:
        mx.set_cache_limit(CACHE_ON if on else default_cache_limit())


def pinned_split(threads: int, chunk: int = 0, no_place: bool = False, no_redo: bool = False,
                 mlx_cache: bool = False):
    """Runs fn with `threads` threads (and a forced chunk size, threads left
    unpinned, workers filling in place, or MLX's buffer cache on), then
    restores."""
    def wrap(fn):
        def call():
            cache_limit(mlx_cache)
            saved = mfi.num_threads()
            mfi.set_num_threads(threads)
            _ext._cpu_split_test_hook(chunk=chunk, no_place=no_place, no_redo=no_redo)
            try:
                fn()
            finally:
                _ext._cpu_split_test_hook()
                mfi.set_num_threads(saved)
        return call
    return wrap


def reused_buffer(threads: int, shape):
    """The same draw into one float32 buffer, filled again and again (the
    MLX-free ``_kernels.fill``, the same CPU split): no page faults, since
    its pages were mapped once. A fresh MLX array on Linux is new memory
    that the kernel zeroes on first touch, one 2 MiB fault at a time."""
    import numpy as np
    from mlx_fused_init import _kernels
    n = math.prod(shape)
    buf = np.zeros(n, dtype=np.float32)
    sigma = math.sqrt(2.0 / (shape[0] + shape[1]))  # glorot_normal's

    def call():
        saved = _kernels.num_threads()
        _kernels.set_num_threads(threads)
        try:
            _kernels.fill(buf, 5, 6, [n], 0, kind=0, scale=sigma)
        finally:
            _kernels.set_num_threads(saved)
    return call


def contestants(shape) -> dict:
    a = mx.zeros(shape)
    fused, stock = mfi.glorot_normal(), stock_init.glorot_normal()
    draw = lambda: mx.eval(fused(a))  # noqa: E731

    def stock_draw():
        cache_limit(False)
        mx.eval(stock(a))
    threads = mfi.num_threads()
    n = math.prod(shape)
    equal = (math.ceil(n / threads) + 63) // 64 * 64  # one part per thread
    return {
        "fused x1": pinned_split(1)(draw),
        f"fused x{threads}": pinned_split(threads)(draw),
        f"fused x{threads} unpinned": pinned_split(threads, no_place=True)(draw),
        f"fused x{threads} 2^17 chunks": pinned_split(threads, 1 << 17)(draw),
        f"fused x{threads} no take-over": pinned_split(threads, no_redo=True)(draw),
        f"fused x{threads} equal parts": pinned_split(threads, equal, no_redo=True)(draw),
        "fused x1 reused buffer": reused_buffer(1, shape),
        f"fused x{threads} reused buffer": reused_buffer(threads, shape),
        **({"fused x1 MLX cache": pinned_split(1, mlx_cache=True)(draw),
            f"fused x{threads} MLX cache": pinned_split(threads, mlx_cache=True)(draw)}
           if default_cache_limit() is not None else {}),
        "stock": stock_draw,
    }


def blocks(fns: dict, rounds: int, seconds: float = 0.7, seed: int = 0) -> dict:
    """name -> per-round (calls, wall seconds): each round runs every
    contestant back to back for `seconds` (at least one call), after one
    untimed warm-up call each. Each round has its own order (shuffled,
    seeded): in a fixed order the block right after one thread's ran
    4-10 % slower than the same contestant later in the round (busy, 4
    runs on the dev VM, docs/performance.md), and one contestant would
    always pay that."""
    for fn in fns.values():
        fn()
    out = {name: [] for name in fns}
    rng = random.Random(seed)
    for _ in range(rounds):
        order = list(fns)
        rng.shuffle(order)
        for name in order:
            fn = fns[name]
            calls, t0 = 0, time.perf_counter()
            while calls == 0 or time.perf_counter() - t0 < seconds:
                fn()
                calls += 1
            out[name].append((calls, time.perf_counter() - t0))
    return out


def run(shapes, reps: int) -> list:
    cores = os.cpu_count() or 1
    pinnable = hasattr(os, "sched_setaffinity")
    print(f"\n--contended: glorot_normal float32, {reps} interleaved rounds of back-to-back "
          f"calls per phase; busy = "
          f"one process spinning on core {cores - 1}"
          + ("" if pinnable else " (NOT pinned: no sched_setaffinity here)"))
    rows = []
    for shape in shapes:
        n = math.prod(shape)
        fns = contestants(shape)
        for phase in ("idle", "busy"):
            load = os.getloadavg()[0]
            if phase == "busy":
                with Spinner(cores - 1):
                    runs = blocks(fns, reps)
            else:
                runs = blocks(fns, reps)
            # Seconds per call of each round's block.
            times = {name: [t / calls for calls, t in r] for name, r in runs.items()}
            stock = summarize(times["stock"], n)
            for name, t in times.items():
                s = summarize(t, n)
                rows.append({"phase": phase, "shape": list(shape), "contestant": name,
                             "load_before": load, **s,
                             "ratio_to_stock": s["msamples_per_s_median"]
                             / stock["msamples_per_s_median"]})
                print(f"{phase:5s} {'x'.join(map(str, shape)):>11s} {name:24s} "
                      f"{s['msamples_per_s_median']:8.1f} M/s median "
                      f"({s['msamples_per_s']:7.1f} best)  x{rows[-1]['ratio_to_stock']:6.2f} stock",
                      flush=True)
            print(summary_line(rows, phase, shape))
    return rows


def ratios(rows, phase, shape) -> dict:
    """Median-rate ratios of one phase and shape: all threads, and each of
    its variants (unpinned, 2^17 chunks, no take-over, equal parts), ÷ one
    thread."""
    med = {r["contestant"]: r["msamples_per_s_median"] for r in rows
           if r["phase"] == phase and r["shape"] == list(shape)}
    one = med["fused x1"]
    all_name = next(k for k in med if k.startswith("fused x") and k != "fused x1"
                    and " " not in k[len("fused "):])
    return {"all_over_one": med[all_name] / one,
            "unpinned_over_one": med[all_name + " unpinned"] / one,
            "small_chunks_over_one": med[all_name + " 2^17 chunks"] / one,
            "no_take_over_over_one": med[all_name + " no take-over"] / one,
            "equal_over_one": med[all_name + " equal parts"] / one,
            "reused_all_over_one": med[all_name + " reused buffer"] / med["fused x1 reused buffer"],
            "cached_all_over_one": (med[all_name + " MLX cache"] / med["fused x1 MLX cache"]
                                    if "fused x1 MLX cache" in med else math.nan),
            "all_over_stock": med[all_name] / med["stock"],
            # What a fresh MLX array costs beyond the fill (its pages, MLX's
            # evaluation), in ms per call: fresh minus reused buffer.
            "fresh_ms_one": fresh_ms(med["fused x1"], med["fused x1 reused buffer"], shape),
            "fresh_ms_all": fresh_ms(med[all_name], med[all_name + " reused buffer"], shape)}


def fresh_ms(fresh_rate: float, reused_rate: float, shape) -> float:
    """ms per call more for a fresh MLX array than for the reused buffer
    (rates in M samples/s)."""
    return math.prod(shape) / 1e3 * (1 / fresh_rate - 1 / reused_rate)


def summary_line(rows, phase, shape) -> str:
    r = ratios(rows, phase, shape)
    target = TARGET_BUSY if phase == "busy" else TARGET_IDLE
    verdict = "meets" if r["all_over_one"] >= target else "MISSES"
    return (f"{'':6s}{phase}: all threads / 1 thread = {r['all_over_one']:.2f} "
            f"({verdict} the 2-core target {target}); ÷ 1 thread: unpinned "
            f"{r['unpinned_over_one']:.2f}, 2^17 chunks {r['small_chunks_over_one']:.2f}, "
            f"no take-over {r['no_take_over_over_one']:.2f}, "
            f"equal parts {r['equal_over_one']:.2f}; into a reused buffer, all threads / 1 "
            f"thread = {r['reused_all_over_one']:.2f}; with MLX's buffer cache on, all threads "
            f"/ 1 thread = {r['cached_all_over_one']:.2f}; all threads / stock = "
            f"{r['all_over_stock']:.1f}; a fresh MLX array costs more than the reused buffer "
            f"by {r['fresh_ms_one']:.1f} ms per call on 1 thread, {r['fresh_ms_all']:.1f} ms "
            f"on all")


def markdown(rows, meta, command) -> str:
    lines = [
        f"Machine: {meta['cpu']}, {meta['cores']} cores, {meta['system']}; MLX {meta['mlx']}, "
        f"{meta['cpu_kernel']} kernel. Command: `{command}`. Load average (1 min) before / "
        f"after: {meta['load_before']:.2f} / {meta['load_after']:.2f}. Busy: a process "
        f"spinning on the last core.",
        "",
        "Rates: each round runs a contestant back to back for ~0.7 s, in an order "
        "shuffled per round; median and best of the rounds.",
        "",
        "| phase | shape | contestant | M samples/s (median) | best | × stock (medians) |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['phase']} | {'×'.join(map(str, r['shape']))} | {r['contestant']} "
                     f"| {r['msamples_per_s_median']:.1f} | {r['msamples_per_s']:.1f} "
                     f"| {r['ratio_to_stock']:.2f} |")
    lines.append("")
    for shape in sorted({tuple(r["shape"]) for r in rows}):
        for phase in ("idle", "busy"):
            lines.append("- " + summary_line(rows, phase, shape).strip())
    return "\n".join(lines) + "\n"
