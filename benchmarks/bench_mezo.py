"""Regenerable noise and MeZO: perturbation throughput, and the time and peak
memory of one fine-tuning step on mlx-lm Llama-architecture models.

(a) Per-parameter perturbation, interleaved rounds after a warm-up:
    fused ``mfi.perturb(w, s, key=k)`` into a new array, and in place
    (``w = perturb(w, ...)``, w referenced nowhere else: the MeZO update's
    pattern), against stock MLX ``w + s * mx.random.normal(w.shape,
    dtype=w.dtype)``; M elements/s, ratio to stock, peak memory of one call
    above the inputs.
(b) One step on mlx-lm's ``llama.Model`` shaped as SmolLM2-135M (134.5 M
    parameters, tied embeddings) and Llama-3.2-1B (1.24 B, tied), float32
    and bfloat16, random tokens, next-token cross-entropy in float32:
      inference         mx.eval(loss) — the reference peak;
      fused MeZO        mfi.zo.MeZO(...).step (two forward passes on
                        perturbed copies, one fused update pass);
      fused MeZO, MLX scheduling   the same with low_memory=False;
      stock MeZO        the obvious MLX way: z = mx.random.normal per
                        parameter, θ+εz and θ−εz trees materialized, θ − ηgz;
      AdamW             nn.value_and_grad + optim.AdamW, one step (its
                        first: the optimizer state is created in it).
    Seconds (best of --reps) and mx.get_peak_memory() of each; ratios of
    the peaks to inference's (target for MeZO: <= 1.3) and to AdamW's
    (target: <= 0.3). A contestant whose estimated peak exceeds
    --max-gib (default: 60% of the memory available at start) is skipped
    and says so.

    python benchmarks/bench_mezo.py                 # 125M and 1B, float32 and bfloat16
    python benchmarks/bench_mezo.py --quick         # 4096^2 throughput; 125M only
    python benchmarks/bench_mezo.py --save-results  # write benchmarks/results/

Results (bench_mezo.{json,md}; --quick: bench_mezo_quick.*) go to a new
temporary folder, or to --out; only --save-results writes the committed
benchmarks/results/. The machine, the command and whether mfi.perturb is
the fused op or the Python stand-in are recorded.
"""

import argparse
import gc
import inspect
import functools
import math
import os
import statistics
import sys
import time
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_flatten, tree_unflatten

import mlx_fused_init as mfi
from _common import RESULTS, fmt, interleave, machine, write_json
from _common import add_output_options, output_folder as _output_folder

# Where results go: --save-results, --out, or a new temporary folder.
output_folder = functools.partial(_output_folder, prefix="bench_mezo")

DTYPES = {"float32": mx.float32, "bfloat16": mx.bfloat16}
GIB = 2**30

# Llama-architecture shapes (mlx_lm.models.llama.ModelArgs).
MODELS = {
    "125m": dict(  # SmolLM2-135M
        model_type="llama", hidden_size=576, num_hidden_layers=30, intermediate_size=1536,
        num_attention_heads=9, num_key_value_heads=3, rms_norm_eps=1e-5, vocab_size=49152,
        rope_theta=100000.0, tie_word_embeddings=True),
    "1b": dict(  # Llama-3.2-1B
        model_type="llama", hidden_size=2048, num_hidden_layers=16, intermediate_size=8192,
        num_attention_heads=32, num_key_value_heads=8, rms_norm_eps=1e-5, vocab_size=128256,
        rope_theta=500000.0, tie_word_embeddings=True),
    "tiny": dict(  # for tests/test_bench_mezo.py: the whole path in a second
        model_type="llama", hidden_size=64, num_hidden_layers=2, intermediate_size=128,
        num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, vocab_size=256,
        tie_word_embeddings=True),
}

LR, EPS = 1e-6, 1e-3


def perturb_impl() -> str:
    """Whether mfi.perturb is the fused op or the Python stand-in that
    preceded it (its source says so)."""
    try:
        src = inspect.getsource(mfi.perturb)
    except (OSError, TypeError):
        return "fused"
    return "python stand-in (normal draw + arithmetic)" if "Stand-in" in src else "fused"


def settle() -> int:
    """Finish pending work, drop MLX's cache, reset the peak; returns the
    active memory (the baseline of what follows)."""
    mx.synchronize()
    gc.collect()
    mx.clear_cache()
    mx.reset_peak_memory()
    return mx.get_active_memory()


# -- (a) perturbation throughput ------------------------------------------------

def throughput(shape, dtype_name: str, reps: int) -> list:
    dtype = DTYPES[dtype_name]
    n = math.prod(shape)
    key = mx.random.key(0)
    w = mfi.normal(0.0, 0.02, dtype=dtype)(mx.zeros(shape), key=key)
    held = {"w": mfi.normal(0.0, 0.02, dtype=dtype)(mx.zeros(shape), key=key)}
    mx.eval(w, held["w"], key)
    s = 1e-3

    def fused():
        mx.eval(mfi.perturb(w, s, key=key))

    def fused_in_place():
        # The old w is referenced only by the graph when evaluated: the
        # fused op may write into its buffer.
        held["w"] = mfi.perturb(held.pop("w"), s, key=key)
        mx.eval(held["w"])

    def stock():
        mx.eval(w + s * mx.random.normal(w.shape, dtype=w.dtype, key=key))

    fns = {"mfi.perturb": fused, "mfi.perturb, in place": fused_in_place, "stock": stock}
    times = interleave(fns, reps, settle=0.05)
    rows = []
    best_stock = min(times["stock"])
    for name, fn in fns.items():
        base = settle()
        fn()
        # MLX resets the peak to 0, not to the active memory: a call that
        # allocates nothing (in place) leaves it there.
        peak = max(mx.get_peak_memory(), base) - base
        best = min(times[name])
        rows.append({
            "shape": list(shape), "dtype": dtype_name, "contestant": name,
            "min_s": best, "median_s": statistics.median(times[name]),
            "melements_per_s": n / best / 1e6, "ratio_to_stock": best_stock / best,
            "peak_above_inputs_bytes": peak, "weight_bytes": n * dtype.size,
        })
        print(f"perturb {'x'.join(map(str, shape)):>9s} {dtype_name:8s} {name:24s} "
              f"{n / best / 1e6:9.1f} M/s  x{best_stock / best:6.2f} stock  "
              f"peak +{peak / 2**20:7.1f} MiB ({peak / (n * dtype.size):.2f}x the weight)",
              flush=True)
    return rows


# -- (b) one step on an mlx-lm Llama ---------------------------------------------

def build(size: str, dtype):
    from mlx_lm.models import llama

    model = llama.Model(llama.ModelArgs(**MODELS[size]))
    model.set_dtype(dtype)  # lazy: stock initial values are never computed
    mfi.init_model(model, mfi.recipes.llama(dtype=dtype), key=mx.random.key(0))
    mx.eval(model.parameters())
    return model


def loss_fn(model, tokens):
    logits = model(tokens[:, :-1]).astype(mx.float32)
    return nn.losses.cross_entropy(logits, tokens[:, 1:]).mean()


def stock_mezo_step(model, tokens, seed: int):
    """MeZO written the obvious way in MLX: z materialized per parameter,
    the perturbed trees built in full, then θ − η g z."""
    theta = tree_flatten(model.trainable_parameters())
    mx.random.seed(seed)
    zs = [mx.random.normal(p.shape, dtype=p.dtype) for _, p in theta]
    plus = tree_unflatten([(k, p + EPS * z) for (k, p), z in zip(theta, zs)])
    model.update(plus)
    lp = loss_fn(model, tokens)
    mx.eval(lp)
    minus = tree_unflatten([(k, p - EPS * z) for (k, p), z in zip(theta, zs)])
    model.update(minus)
    lm = loss_fn(model, tokens)
    mx.eval(lm)
    g = (lp.item() - lm.item()) / (2 * EPS)
    new = tree_unflatten([(k, p - LR * g * z) for (k, p), z in zip(theta, zs)])
    model.update(new)
    mx.eval(model.parameters())
    return (lp + lm) / 2


def adamw_step(model, tokens):
    opt = optim.AdamW(learning_rate=LR)
    value_and_grad = nn.value_and_grad(model, loss_fn)
    loss, grads = value_and_grad(model, tokens)
    opt.update(model, grads)
    mx.eval(loss, model.parameters(), opt.state)
    return loss


def estimates(param_bytes: int) -> dict:
    """Rough peaks (bytes), to skip what cannot fit, from runs on this
    script's models with 64 tokens: the parameters times 1.05 (inference),
    1.45 (MeZO; 2.1 in bfloat16 with perturb's stand-in, whose arithmetic
    is float32), 5.0 (stock MeZO: z, a perturbed copy, temporaries), 4.6
    (AdamW: gradients, two moments), with some margin."""
    return {"inference": 1.2 * param_bytes, "fused MeZO": 2.3 * param_bytes,
            "fused MeZO, MLX scheduling": 2.3 * param_bytes,
            "stock MeZO": 5.3 * param_bytes, "AdamW": 4.9 * param_bytes}


def step_rows(size: str, dtype_name: str, batch: int, seq: int, reps: int,
              max_bytes: float) -> list:
    dtype = DTYPES[dtype_name]
    model = build(size, dtype)
    n_params = sum(p.size for _, p in tree_flatten(model.parameters()))
    param_bytes = n_params * dtype.size
    tokens = mx.random.randint(0, MODELS[size]["vocab_size"], (batch, seq + 1),
                               key=mx.random.key(1))
    fused = mfi.zo.MeZO(LR, eps=EPS, key=mx.random.key(2))
    unbounded = mfi.zo.MeZO(LR, eps=EPS, key=mx.random.key(2), low_memory=False)
    contestants = {
        "inference": lambda: mx.eval(loss_fn(model, tokens)),
        "fused MeZO": lambda: fused.step(model, loss_fn, tokens),
        "fused MeZO, MLX scheduling": lambda: unbounded.step(model, loss_fn, tokens),
        "stock MeZO": lambda: stock_mezo_step(model, tokens, seed=3),
        "AdamW": lambda: adamw_step(model, tokens),
    }
    est = estimates(param_bytes)
    rows = []
    mx.eval(loss_fn(model, tokens))  # untimed: first use of the memory, threads
    print(f"\n{size}: {n_params / 1e6:.1f} M parameters, {dtype_name} "
          f"({param_bytes / GIB:.2f} GiB), tokens {batch}x{seq}", flush=True)
    for name, fn in contestants.items():
        row = {"model": size, "params": n_params, "dtype": dtype_name, "contestant": name,
               "batch": batch, "seq": seq, "param_bytes": param_bytes}
        if est[name] > max_bytes:
            row["skipped"] = (f"estimated peak {est[name] / GIB:.1f} GiB > --max-gib "
                              f"{max_bytes / GIB:.1f}")
            print(f"  {name:28s} skipped: {row['skipped']}", flush=True)
            rows.append(row)
            continue
        seconds, peaks = [], []
        try:
            for _ in range(reps):
                base = settle()
                t0 = time.perf_counter()
                fn()
                mx.synchronize()
                seconds.append(time.perf_counter() - t0)
                peaks.append(mx.get_peak_memory())
        except (RuntimeError, MemoryError, ValueError) as e:  # report, go on
            row["error"] = f"{type(e).__name__}: {e}"
            print(f"  {name:28s} failed: {row['error']}", flush=True)
            rows.append(row)
            continue
        row.update(seconds=min(seconds), peak_bytes=max(peaks), baseline_bytes=base)
        rows.append(row)
        print(f"  {name:28s} {min(seconds):8.2f} s  peak {max(peaks) / GIB:7.3f} GiB "
              f"({max(peaks) / param_bytes:.2f}x the parameters)", flush=True)
    by = {r["contestant"]: r for r in rows if "peak_bytes" in r}
    inf, adam = by.get("inference"), by.get("AdamW")
    for r in rows:
        if "peak_bytes" not in r:
            continue
        if inf:
            r["peak_over_inference"] = r["peak_bytes"] / inf["peak_bytes"]
            r["time_over_inference"] = r["seconds"] / inf["seconds"]
        if adam:
            r["peak_over_adamw"] = r["peak_bytes"] / adam["peak_bytes"]
    for name in ("fused MeZO", "fused MeZO, MLX scheduling", "stock MeZO"):
        r = by.get(name)
        if r and inf:
            print(f"  {name}: peak {r['peak_over_inference']:.2f}x inference (target <= 1.3)"
                  + (f", {r['peak_over_adamw']:.2f}x AdamW (target <= 0.3)" if adam else
                     ", AdamW not measured"), flush=True)
    del model, fused, unbounded, contestants
    settle()
    return rows


# -- output ---------------------------------------------------------------------

def markdown(meta, command, perturb_rows, rows) -> str:
    lines = [
        f"Machine: {meta['cpu']}, {meta['cores']} cores, {meta['system']}; MLX {meta['mlx']} "
        f"({meta['default_device']}), mlx-fused-init {meta['mlx_fused_init']} "
        f"({meta['backend']}; {meta['cpu_kernel']} kernel, {meta['threads']} threads); "
        f"mfi.perturb: {meta['perturb']}. Command: `{command}`. Load average (1 min) "
        f"before / after: {meta['load_before']:.2f} / {meta['load_after']:.2f}.",
        "",
        "Perturbation of one weight (`w + s·z`), best of the interleaved rounds:",
        "",
        "| shape | dtype | contestant | M elements/s | × stock | peak above inputs |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in perturb_rows:
        lines.append(
            f"| {'×'.join(map(str, r['shape']))} | {r['dtype']} | {r['contestant']} "
            f"| {fmt(r['melements_per_s'])} | {fmt(r['ratio_to_stock'], 2)} "
            f"| {r['peak_above_inputs_bytes'] / 2**20:.1f} MiB "
            f"({r['peak_above_inputs_bytes'] / r['weight_bytes']:.2f}× the weight) |")
    lines += [
        "",
        f"One step (lr {LR}, ε {EPS}; tokens batch × sequence as listed), seconds (best of "
        "the runs) and MLX's peak memory (weights included):",
        "",
        "| model | dtype | tokens | contestant | s | peak GiB | × params | × inference | × AdamW |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        head = (f"| {r['model']} ({r['params'] / 1e6:.0f} M) | {r['dtype']} | "
                f"{r['batch']}×{r['seq']} | {r['contestant']} ")
        if "peak_bytes" not in r:
            lines.append(head + f"| {r.get('skipped') or r.get('error')} | | | | |")
            continue
        lines.append(
            head + f"| {r['seconds']:.2f} | {r['peak_bytes'] / GIB:.3f} "
            f"| {r['peak_bytes'] / r['param_bytes']:.2f} "
            f"| {fmt(r.get('peak_over_inference', float('nan')), 2)} "
            f"| {fmt(r.get('peak_over_adamw', float('nan')), 2)} |")
    return "\n".join(lines) + "\n"


def available_bytes() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return mx.device_info().get("memory_size", 16 * GIB) if hasattr(mx, "device_info") else 16 * GIB


def main(argv=None) -> int:
    doc = __doc__.split("\n\n")
    p = argparse.ArgumentParser(
        description=doc[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n" + doc[2] + "\n\nResults go to a new temporary folder unless "
               "--out or --save-results\nis given; the folder is printed at the end.")
    p.add_argument("--quick", action="store_true",
                   help="throughput at 4096^2 only, 3 rounds; the 125m model only; writes "
                        "bench_mezo_quick.*")
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=None,
                   help="models to step (default: 125m 1b; --quick: 125m; tiny: a test "
                        "of the script)")
    p.add_argument("--shapes", nargs="+", type=int, default=None, metavar="N",
                   help="square weights N x N for the throughput (default 1024 4096; "
                        "--quick: 4096)")
    p.add_argument("--dtypes", nargs="+", choices=list(DTYPES), default=list(DTYPES))
    p.add_argument("--batch", type=int, default=1, help="sequences per step (default 1)")
    p.add_argument("--seq", type=int, default=64, help="tokens per sequence (default 64)")
    p.add_argument("--reps", type=int, default=None,
                   help="throughput rounds (default 5; --quick 3); steps are timed once each")
    p.add_argument("--max-gib", type=float, default=None,
                   help="skip a contestant whose estimated peak exceeds this (default: 60%% "
                        "of the memory available at start)")
    p.add_argument("--no-throughput", action="store_true", help="skip part (a)")
    p.add_argument("--no-steps", action="store_true", help="skip part (b)")
    add_output_options(p)
    args = p.parse_args(argv)
    for name in ("reps", "batch", "seq"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    if args.shapes and min(args.shapes) < 1:
        p.error("--shapes must be >= 1")
    folder = output_folder(args)
    meta = machine()
    meta["backend"] = mfi.backend_info()["backend"]
    meta["perturb"] = perturb_impl()
    meta["load_before"] = os.getloadavg()[0]
    max_bytes = (args.max_gib * GIB if args.max_gib is not None else 0.6 * available_bytes())
    meta["max_bytes"] = max_bytes
    command = "python benchmarks/bench_mezo.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    print(f"{meta['cpu']} ({meta['cores']} cores), MLX {meta['mlx']}, {meta['backend']}, "
          f"perturb: {meta['perturb']}; skipping estimated peaks above "
          f"{max_bytes / GIB:.1f} GiB", flush=True)
    reps = args.reps or (3 if args.quick else 5)
    sides = args.shapes or ([4096] if args.quick else [1024, 4096])
    shapes = [(n, n) for n in sides]
    perturb_rows = []
    if not args.no_throughput:
        for dtype_name in DTYPES:
            for shape in shapes:
                perturb_rows += throughput(shape, dtype_name, reps)
    rows = []
    if not args.no_steps:
        models = args.models or (["125m"] if args.quick else ["125m", "1b"])
        for size in models:
            for dtype_name in args.dtypes:
                rows += step_rows(size, dtype_name, args.batch, args.seq, 1, max_bytes)
    meta["load_after"] = os.getloadavg()[0]
    name = "bench_mezo_quick" if args.quick else "bench_mezo"
    write_json(name, {"machine": meta, "command": command, "perturbation": perturb_rows,
                      "steps": rows}, folder=folder)
    (folder / f"{name}.md").write_text(markdown(meta, command, perturb_rows, rows))
    print(f"\nwrote {name}.json, {name}.md in {folder}"
          + ("" if folder == RESULTS else " (--save-results writes benchmarks/results/)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
