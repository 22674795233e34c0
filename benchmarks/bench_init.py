"""Fused vs stock initializers, with oneMKL, PyTorch, JAX and NumPy when installed.

For each shape and dtype, the contestants run interleaved (one call each per
round), after a warm-up round; each call makes a fresh array, as
initializing a layer does. Reported: min and median time, M samples/s,
ratio to stock MLX, fraction of a write-only memory floor measured in the
same run (``np.empty(...).fill(1)``: fresh memory written once), and the
peak memory of one fused and one stock call (``mx.get_peak_memory``)
against the output's size.

    python benchmarks/bench_init.py               # 1024^2, 4096^2, 8192^2: several minutes
    python benchmarks/bench_init.py --quick       # glorot_normal, 1024^2 and 4096^2,
                                                  # float32 and bfloat16, 3 rounds: < 1 min
    python benchmarks/bench_init.py --contended   # also: one core busy (contended.py)
    python benchmarks/bench_init.py --save-results   # write benchmarks/results/

Peers (PyTorch, JAX, NumPy) and every dtype are measured for glorot_normal;
the rest of the family (glorot_uniform, he_normal, he_uniform, normal,
uniform) against stock MLX in float32. Every case also times the fused
kernel on one thread ("fused x1") and, when the native extension runs,
portable mode in the same process ("portable": the MLX-free module's eager
CPU draw, docs/portable.md), with its ratio to the native op; glorot_normal also times the avx2 build
on one thread where a faster build is the default ("fused avx2 x1"), and,
in float32, oneMKL's Philox4x32-10 normals (``mkl_random``, the ``bench``
extra; see mkl_peer.py) on one thread and on every core. The summary line
of each case gives the per-core ratio to oneMKL's ICDF method.

The load average before and after the run is recorded: on a shared machine,
only the ratios within one interleaved run mean much.

Results (bench_init.{json,md,png}; --quick: bench_init_quick.*; --contended
adds bench_init_contended.{json,md}) go to a new temporary folder, or to
--out; only --save-results writes the committed benchmarks/results/, which
the README and docs/performance.md quote. The folder is printed at the end.
"""

import argparse
import functools
import math
import os
import statistics
import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn.init as stock_init
import numpy as np

import mkl_peer
import mlx_fused_init as mfi
import contended
from _common import RESULTS, fmt, interleave, machine, optional, summarize, write_json
from _common import add_output_options, output_folder as _output_folder

# Where results go: --save-results, --out, or a new temporary folder.
output_folder = functools.partial(_output_folder, prefix="bench_init")

DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}


def glorot_std(shape) -> float:
    return math.sqrt(2.0 / (shape[0] + shape[1]))


def contestants(shape, dtype_name: str, family: str) -> dict:
    """name -> zero-argument callable that makes and evaluates one weight."""
    dtype = DTYPES[dtype_name]
    a = mx.zeros(shape, dtype=dtype)
    fused_fn, stock_fn = FAMILY[family]
    fused, stock = fused_fn(dtype), stock_fn(dtype)
    out = {
        "fused": lambda: mx.eval(fused(a)),
        "fused x1": pinned(lambda: mx.eval(fused(a)), threads=1),
        "stock": lambda: mx.eval(stock(a)),
    }
    if mfi.backend_info()["backend"] == "native":
        out["portable"] = portable(lambda: mx.eval(fused(a)))
    if family != "glorot_normal":
        return out
    if mfi.cpu_kernel() != "avx2" and "avx2" in mfi.available_cpu_kernels():
        out["fused avx2 x1"] = pinned(lambda: mx.eval(fused(a)), threads=1, kernel="avx2")
    std = glorot_std(shape)
    n = math.prod(shape)
    if dtype_name == "float32" and MKL_NOTE is None:
        cores = os.cpu_count() or 1
        for method in ("ICDF", "BoxMuller2"):
            out[f"mkl {method} x1"] = mkl_peer.float32_normal(n, std, method, 1)
            if cores > 1:
                out[f"mkl {method} x{cores}"] = mkl_peer.float32_normal(n, std, method, cores)
            out[f"mkl_random {method} f64 x1"] = mkl_peer.float64_standard_normal(n, method)
    torch = optional("torch")
    if torch is not None:
        tdt = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype_name]
        out["pytorch"] = lambda: torch.nn.init.xavier_normal_(torch.empty(shape, dtype=tdt))
    jax = optional("jax")
    if jax is not None:
        import jax.numpy as jnp

        jdt = {"float32": jnp.float32, "float16": jnp.float16, "bfloat16": jnp.bfloat16}[dtype_name]
        draw = jax.jit(lambda k: jax.random.normal(k, shape, jdt) * std)
        key = jax.random.key(0)
        out["jax"] = lambda: draw(key).block_until_ready()
    if dtype_name != "bfloat16":  # NumPy has no bfloat16
        rng = np.random.default_rng(0)
        ndt = np.dtype(dtype_name)
        if ndt == np.float32:
            out["numpy"] = lambda: rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
        else:
            out["numpy"] = lambda: (rng.standard_normal(shape, dtype=np.float32) * std).astype(ndt)
    return out


MKL_NOTE = mkl_peer.why_unavailable()


def pinned(fn, threads=None, kernel=None):
    """fn run with the given CPU thread count and kernel, then restored."""
    def call():
        saved = mfi.num_threads(), mfi.cpu_kernel()
        if threads is not None:
            mfi.set_num_threads(threads)
        if kernel is not None:
            mfi.set_cpu_kernel(kernel)
        try:
            fn()
        finally:
            mfi.set_num_threads(saved[0])
            mfi.set_cpu_kernel(saved[1])
    return call


def portable(fn):
    """fn run in portable mode (docs/portable.md: the MLX-free module, eager
    CPU draws) in this process, where the native op is the default."""
    from mlx_fused_init import _portable, initializers

    def call():
        saved = initializers._ext
        initializers._ext = _portable
        try:
            fn()
        finally:
            initializers._ext = saved
    return call


# name -> (fused factory, stock factory), each taking the dtype.
FAMILY = {
    "glorot_normal": (mfi.glorot_normal, stock_init.glorot_normal),
    "glorot_uniform": (mfi.glorot_uniform, stock_init.glorot_uniform),
    "he_normal": (mfi.he_normal, stock_init.he_normal),
    "he_uniform": (mfi.he_uniform, stock_init.he_uniform),
    "normal": (lambda dt: mfi.normal(dtype=dt), lambda dt: stock_init.normal(dtype=dt)),
    "uniform": (lambda dt: mfi.uniform(dtype=dt), lambda dt: stock_init.uniform(dtype=dt)),
}


def write_floor(shape, itemsize: int):
    """Fresh memory of the output's size, written once. Integer fills of the
    same width: NumPy's float16 fill converts element by element."""
    dt = {4: np.uint32, 2: np.uint16}[itemsize]
    return lambda: np.empty(shape, dtype=dt).fill(1)


def peak_bytes(fn) -> int:
    """Peak MLX memory of one call above what was allocated before it."""
    mx.eval(mx.zeros(1))
    mx.clear_cache()
    base = mx.get_active_memory()
    mx.reset_peak_memory()
    fn()
    return mx.get_peak_memory() - base


def run(shapes, dtypes, families, reps):
    rows = []
    for family in families:
        # Peers and the other initializers: float32 only, to keep the run short.
        for dtype_name in dtypes if family == "glorot_normal" else ["float32"]:
            for shape in shapes:
                n = math.prod(shape)
                itemsize = DTYPES[dtype_name].size
                fns = contestants(shape, dtype_name, family)
                fns["write floor"] = write_floor(shape, itemsize)
                cpu = {}
                times = interleave(fns, reps, cpu_times=cpu)
                stock = summarize(times["stock"], n)
                floor = summarize(times["write floor"], n)
                out_bytes = n * itemsize
                peaks = {name: peak_bytes(fns[name]) for name in ("fused", "stock", "portable")
                         if name in fns}
                for name, t in times.items():
                    s = summarize(t, n)
                    s["msamples_per_cpu_s"] = n / max(statistics.median(cpu[name]), 1e-9) / 1e6
                    rows.append({
                        "family": family,
                        "dtype": dtype_name,
                        "shape": list(shape),
                        "contestant": name,
                        **s,
                        "ratio_to_stock": s["msamples_per_s"] / stock["msamples_per_s"],
                        "fraction_of_floor": s["msamples_per_s"] / floor["msamples_per_s"],
                        "peak_bytes": peaks.get(name),
                        "output_bytes": out_bytes,
                    })
                    print(
                        f"{family:14s} {dtype_name:9s} {'x'.join(map(str, shape)):>11s} "
                        f"{name:12s} {s['msamples_per_s']:9.1f} M/s  "
                        f"{s['msamples_per_cpu_s']:9.1f} M/CPU-s  "
                        f"x{rows[-1]['ratio_to_stock']:6.2f} stock  "
                        f"{100 * rows[-1]['fraction_of_floor']:5.1f}% of floor",
                        flush=True,
                    )
                per_core = {r["contestant"]: r["msamples_per_s_median"] for r in rows
                            if r["family"] == family and r["dtype"] == dtype_name
                            and r["shape"] == list(shape)}
                if "mkl ICDF x1" in per_core:
                    per_cpu = {r["contestant"]: r["msamples_per_cpu_s"] for r in rows
                               if r["family"] == family and r["dtype"] == dtype_name
                               and r["shape"] == list(shape)}
                    print(f"{'':37s}per core: fused x1 / mkl ICDF x1 = "
                          f"{per_core['fused x1'] / per_core['mkl ICDF x1']:.2f} (wall medians), "
                          f"{per_cpu['fused x1'] / per_cpu['mkl ICDF x1']:.2f} (CPU time); "
                          f"/ mkl BoxMuller2 x1 = "
                          f"{per_core['fused x1'] / per_core['mkl BoxMuller2 x1']:.2f} (wall)")
                if "portable" in per_core:
                    print(f"{'':37s}portable / fused (native) = "
                          f"{per_core['portable'] / per_core['fused']:.2f} (medians); "
                          f"portable / stock = {per_core['portable'] / per_core['stock']:.1f}")
                mib = 2**20
                print(f"{'':37s}peak memory of one call, output {out_bytes / mib:.2f} MiB: "
                      f"fused {peaks['fused'] / mib:.2f} MiB ({peaks['fused'] / out_bytes:.2f}x "
                      f"output); stock {peaks['stock'] / mib:.2f} MiB "
                      f"({peaks['stock'] / out_bytes:.2f}x output)")
    return rows


def markdown(rows, meta, command) -> str:
    lines = [
        f"Machine: {meta['cpu']}, {meta['cores']} cores, {meta['system']}; "
        f"MLX {meta['mlx']}, mlx-fused-init {meta['mlx_fused_init']} "
        f"({meta['cpu_kernel']} kernel, {meta['threads']} threads; builds here: "
        f"{meta['cpu_kernels']}). Command: `{command}`.",
        "",
        f"Load average (1 min) before / after the run: {meta['load_before']:.2f} / "
        f"{meta['load_after']:.2f}. "
        + (meta["mkl"] or f"oneMKL: {meta['mkl_version']}. {meta['mkl_caveat']}") + ".",
        "",
        "M/CPU-s: samples per second of the process's CPU time (all threads; "
        "median) — for a one-thread contestant, its speed per core even while "
        "other jobs share the cores.",
        "",
        "| initializer | dtype | shape | contestant | M samples/s (best) | median | M/CPU-s | × stock | % of write floor | peak memory − output |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        peak = "–" if r["peak_bytes"] is None else f"{(r['peak_bytes'] - r['output_bytes']) / 2**20:+.2f} MiB"
        lines.append(
            f"| {r['family']} | {r['dtype']} | {'×'.join(map(str, r['shape']))} | {r['contestant']} "
            f"| {fmt(r['msamples_per_s'])} | {fmt(r['msamples_per_s_median'])} "
            f"| {fmt(r['msamples_per_cpu_s'])} "
            f"| {fmt(r['ratio_to_stock'], 2)} | {fmt(100 * r['fraction_of_floor'])} | {peak} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows, path):
    matplotlib = optional("matplotlib")
    if matplotlib is None:
        print("matplotlib is not installed: no plot", file=sys.stderr)
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sel = [r for r in rows if r["dtype"] == "float32" and r["family"] == "glorot_normal"]
    shapes = sorted({tuple(r["shape"]) for r in sel})
    names = [n for n in ("fused", "fused x1", "stock", "mkl ICDF x1", "pytorch", "jax", "numpy",
                         "write floor")
             if any(r["contestant"] == n for r in sel)]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(names)
    for j, name in enumerate(names):
        vals = [next((r["msamples_per_s"] for r in sel
                      if r["contestant"] == name and tuple(r["shape"]) == s), 0) for s in shapes]
        ax.bar([i + j * width for i in range(len(shapes))], vals, width, label=name)
    ax.set_xticks([i + width * (len(names) - 1) / 2 for i in range(len(shapes))])
    ax.set_xticklabels(["×".join(map(str, s)) for s in shapes])
    ax.set_yscale("log")
    ax.set_ylabel("M samples/s (best of runs, log scale)")
    ax.set_title("glorot_normal, float32, CPU")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n" + __doc__.split("\n\n")[2] + "\n\n"
               "Results go to a new temporary folder unless --out or --save-results\n"
               "is given; the folder is printed at the end.")
    p.add_argument("--quick", action="store_true",
                   help="glorot_normal only, 1024^2 and 4096^2, float32 and bfloat16, "
                        "3 rounds (under a minute); writes bench_init_quick.*")
    p.add_argument("--contended", action="store_true",
                   help="also measure glorot_normal float32 4096^2 on 1 thread, all threads "
                        "and stock, idle and then with a process spinning on the last core; "
                        "prints all-threads / 1-thread ratios (benchmarks/contended.py)")
    p.add_argument("--contended-only", action="store_true",
                   help="only the --contended measurement")
    p.add_argument("--reps", type=int, default=None, help="timed rounds per case")
    p.add_argument("--family", nargs="+", choices=list(FAMILY), default=None,
                   help="initializers to measure (default: all; --quick: glorot_normal)")
    p.add_argument("--device", choices=["cpu", "gpu"], default=None,
                   help="MLX device (default: MLX's default)")
    p.add_argument("--mlx-cache-limit", metavar="BYTES", type=int, default=None,
                   help="mx.set_cache_limit(BYTES) first: MLX's CPU allocator on Linux keeps "
                        "no freed buffer above its 32 MiB default, so every large output is "
                        "fresh memory (portable mode pays for that; docs/portable.md)")
    add_output_options(p, " (what the docs quote)")
    args = p.parse_args(argv)
    if args.reps is not None and args.reps < 1:
        p.error(f"--reps must be >= 1, got {args.reps}")
    if args.device:
        mx.set_default_device(mx.gpu if args.device == "gpu" else mx.cpu)
    if args.mlx_cache_limit is not None:
        mx.set_cache_limit(args.mlx_cache_limit)
    if args.quick:
        shapes, dtypes, reps = [(1024, 1024), (4096, 4096)], ["float32", "bfloat16"], args.reps or 3
    else:
        shapes = [(1024, 1024), (4096, 4096), (8192, 8192)]
        dtypes, reps = list(DTYPES), args.reps or 5
    families = ["glorot_normal"] if args.quick else list(FAMILY)
    if args.family:
        families = args.family
    folder = output_folder(args)
    meta = machine()
    meta["cpu_kernels"] = mfi.available_cpu_kernels()
    meta["mkl"] = MKL_NOTE
    meta["mkl_version"] = None if MKL_NOTE else mkl_peer.version()
    meta["mkl_caveat"] = None if MKL_NOTE else mkl_peer.vendor_note()
    meta["load_before"] = os.getloadavg()[0]
    print(f"{meta['cpu']} ({meta['cores']} cores), MLX {meta['mlx']}, "
          f"kernel {meta['cpu_kernel']} x{meta['threads']} threads, "
          f"load {meta['load_before']:.2f}")
    print(MKL_NOTE or f"oneMKL: {meta['mkl_version']}. {meta['mkl_caveat']}")
    command = "python benchmarks/bench_init.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    written = []
    if not args.contended_only:
        rows = run(shapes, dtypes, families, reps)
        meta["load_after"] = os.getloadavg()[0]
        # --quick writes beside, not over, the full results the README quotes.
        name = "bench_init_quick" if args.quick else "bench_init"
        if args.mlx_cache_limit is not None:
            name += "_cache"
            meta["mlx_cache_limit"] = args.mlx_cache_limit
        write_json(name, {"machine": meta, "command": command, "reps": reps, "rows": rows},
                   folder=folder)
        (folder / f"{name}.md").write_text(markdown(rows, meta, command))
        png = plot(rows, folder / f"{name}.png")
        written += [f"{name}.json", f"{name}.md"] + ([f"{name}.png"] if png else [])
    if args.contended or args.contended_only:
        meta["load_before"] = os.getloadavg()[0]
        rows = contended.run([(4096, 4096)], args.reps or 7)
        meta["load_after"] = os.getloadavg()[0]
        write_json("bench_init_contended", {"machine": meta, "command": command, "rows": rows},
                   folder=folder)
        (folder / "bench_init_contended.md").write_text(contended.markdown(rows, meta, command))
        written += ["bench_init_contended.json", "bench_init_contended.md"]
    print(f"\nwrote {', '.join(written)} in {folder}"
          + ("" if folder == RESULTS else " (--save-results writes benchmarks/results/)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
