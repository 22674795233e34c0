"""The CPU fill's chunk size (csrc/work_split.cpp kMaxChunk), measured: the
fused glorot_normal float32 4096^2 on all threads with chunks of 2^14 ..
2^19 elements, and in equal parts (one per thread), in interleaved rounds
of back-to-back calls (contended.blocks); idle, then
with a process spinning on the last core (as bench_init.py --contended).

    python benchmarks/bench_chunks.py [--reps 7]

Prints M samples/s (median, best) per chunk size and phase; writes nothing.
"""

import argparse
import math
import os

import mlx.core as mx

import mlx_fused_init as mfi
from _common import summarize
from contended import Spinner, blocks, pinned_split


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=7, help="timed rounds per phase")
    args = p.parse_args(argv)
    shape = (4096, 4096)
    n = math.prod(shape)
    threads = mfi.num_threads()
    a = mx.zeros(shape)
    init = mfi.glorot_normal()
    draw = lambda: mx.eval(init(a))  # noqa: E731
    sizes = {f"2^{k}": 1 << k for k in range(14, 20)}
    sizes["equal parts"] = (math.ceil(n / threads) + 63) // 64 * 64
    fns = {name: pinned_split(threads, chunk)(draw) for name, chunk in sizes.items()}
    fns["planned"] = pinned_split(threads)(draw)
    print(f"glorot_normal float32 4096^2, {threads} threads, {args.reps} rounds; "
          f"load {os.getloadavg()[0]:.2f}")
    for phase in ("idle", "busy"):
        if phase == "busy":
            with Spinner((os.cpu_count() or 1) - 1):
                runs = blocks(fns, args.reps)
        else:
            runs = blocks(fns, args.reps)
        for name, r in runs.items():
            t = [secs / calls for calls, secs in r]
            s = summarize(t, n)
            print(f"{phase:5s} chunk {name:12s} {s['msamples_per_s_median']:8.1f} M/s median "
                  f"({s['msamples_per_s']:7.1f} best)")
    print(f"load {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
