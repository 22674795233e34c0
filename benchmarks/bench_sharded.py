"""Sharded initialization of a Llama-2-7B-shaped layer stack at world sizes
1, 2 and 4: each rank draws only its shards (mlx_fused_init.shard), against
materializing every full weight and slicing it (what you do to get
world-size-independent weights otherwise: fused full weight, or stock
mlx.nn.init full weight).

Launches `mlx.launch --backend ring -n N` on this machine for each N and
reports, per rank, seconds and peak MLX memory. The ranks share this
machine's cores (each gets cores // N threads), so per-rank times at N > 1
measure less parallel work on fewer cores, not a cluster.

    python benchmarks/bench_sharded.py                  # 1 layer, sizes 1 2 4
    python benchmarks/bench_sharded.py --layers 2 --no-stock

Writes benchmarks/results/bench_sharded.{json,md}.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

HIDDEN, FFN = 4096, 11008
# (name, full shape, shard axis): Megatron-style tensor parallelism, as
# mlx.nn.layers.distributed does it: q/k/v/gate/up split their outputs
# (AllToShardedLinear, axis 0), o/down their inputs (ShardedToAllLinear, -1).
LAYER = [
    ("q_proj", (HIDDEN, HIDDEN), 0),
    ("k_proj", (HIDDEN, HIDDEN), 0),
    ("v_proj", (HIDDEN, HIDDEN), 0),
    ("o_proj", (HIDDEN, HIDDEN), -1),
    ("gate_proj", (FFN, HIDDEN), 0),
    ("up_proj", (FFN, HIDDEN), 0),
    ("down_proj", (HIDDEN, FFN), -1),
]


def worker(args) -> int:
    import mlx.core as mx
    import mlx.nn.init as stock_init

    import mlx_fused_init as mfi

    sys.path.insert(0, str(Path(__file__).parent))
    from _common import warm_memory

    group = mx.distributed.init()
    rank, size = group.rank(), group.size()
    warm_memory(1.0)
    mfi.set_num_threads(max(1, (os.cpu_count() or 1) // size))
    key = mx.random.key(0)
    methods = {
        "fused shard": lambda init, shape, axis: mfi.shard(init, axis, group)(mx.zeros(shape), key=key),
        "fused full + slice": lambda init, shape, axis: _slice(init(mx.zeros(shape), key=key), axis, rank, size),
    }
    if not args.no_stock:
        stock = stock_init.glorot_normal()
        methods["stock full + slice"] = lambda init, shape, axis: _slice(stock(mx.zeros(shape)), axis, rank, size)
    init = mfi.glorot_normal()
    result = {"rank": rank, "size": size}
    for name, make in methods.items():
        mx.eval(mx.zeros(1))
        mx.clear_cache()
        mx.reset_peak_memory()
        base = mx.get_active_memory()
        t0 = time.perf_counter()
        kept = []
        for _ in range(args.layers):
            for _, shape, axis in LAYER:
                w = make(init, shape, axis)
                mx.eval(w)
                kept.append(w)  # a rank keeps its shards
        secs = time.perf_counter() - t0
        shard_bytes = sum(w.nbytes for w in kept)
        result[name] = {
            "seconds": secs,
            "peak_bytes": mx.get_peak_memory() - base,
            "kept_bytes": shard_bytes,
        }
        del kept, w  # nothing of this method may count in the next one's base
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def _slice(full, axis, rank, size):
    import mlx.core as mx

    n = full.shape[axis] // size
    return mx.contiguous(mx.split(full, size, axis=axis)[rank]) if n else full


def launch(n: int, args) -> list:
    worker_args = [__file__, "--worker", "--layers", str(args.layers)]
    if args.no_stock:
        worker_args.append("--no-stock")
    if n == 1:
        # One process, MLX's singleton group (mlx.launch's ring needs >= 2).
        cmd = [sys.executable] + worker_args
    else:
        launcher = Path(sys.executable).with_name("mlx.launch")
        cmd = [str(launcher), "--backend", "ring", "-n", str(n),
               "--starting-port", str(random.randint(20000, 60000)),
               "--python", sys.executable] + worker_args
    r = subprocess.run(cmd, capture_output=True, text=True)
    results = [json.loads(line.split("RESULT ", 1)[1])
               for line in r.stdout.splitlines() if "RESULT " in line]
    # mlx.launch exits 0 even when a rank fails: count the results.
    if r.returncode or len(results) != n:
        raise SystemExit(f"world size {n} failed:\n{r.stdout}\n{r.stderr}")
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--no-stock", action="store_true", help="skip stock MLX (slow)")
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)

    sys.path.insert(0, str(Path(__file__).parent))
    from _common import RESULTS, machine, write_json

    meta = machine()
    rows = []
    for n in args.sizes:
        ranks = launch(n, args)
        for r in sorted(ranks, key=lambda r: r["rank"]):
            for method, v in r.items():
                if isinstance(v, dict):
                    rows.append({"world_size": n, "rank": r["rank"], "method": method, **v})
                    print(f"N={n} rank {r['rank']} {method:20s} {v['seconds']:7.2f} s  "
                          f"peak {v['peak_bytes'] / 2**20:8.1f} MiB  (keeps {v['kept_bytes'] / 2**20:.1f} MiB)",
                          flush=True)
    command = "python benchmarks/bench_sharded.py" + "".join(f" {a}" for a in (argv or sys.argv[1:]))
    write_json("bench_sharded", {"machine": meta, "command": command, "layers": args.layers, "rows": rows})
    lines = [
        f"Machine: {meta['cpu']}, {meta['cores']} cores; ranks share them. Command: `{command}`.",
        "",
        "| world size | rank | method | seconds | peak MLX memory (MiB) | shards kept (MiB) |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['world_size']} | {r['rank']} | {r['method']} | {r['seconds']:.2f} "
                     f"| {r['peak_bytes'] / 2**20:,.1f} | {r['kept_bytes'] / 2**20:,.1f} |")
    (RESULTS / "bench_sharded.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS}/bench_sharded.json, bench_sharded.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
