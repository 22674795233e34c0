"""The main job, ``python -m mlx_fused_init``: what is installed, whether it
computes what it should on this machine, and how fast against stock MLX."""

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

import mlx.core as mx
import mlx.nn.init as stock_init

from . import __version__
from ._backend import backend_info, ext as _ext
from .initializers import glorot_normal

# Random123's known-answer vectors for Philox4x32-10 (kat_vectors):
# (counter, key, expected output).
PHILOX_KAT = (
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    (
        (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF),
        (0xFFFFFFFF, 0xFFFFFFFF),
        (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD),
    ),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
)


def metal_library() -> Path:
    return Path(__file__).with_name("mlx_fused_init.metallib")


def metal_report() -> list:
    """Where the GPU kernels come from (docs/gpu.md, "Trying it on a Mac")."""
    kind, detail = _ext.metal_kernel_origin()
    lib = metal_library()
    if kind == "none":
        return [f"  GPU kernels: none ({detail})"]
    if kind == "portable":
        return [f"  GPU kernels: portable, {detail}"]
    lines = []
    if kind == "metallib":
        lines.append(f"  Metal kernels: metallib, loaded from {detail}")
    else:
        lines.append(f"  Metal kernels: compiled at first GPU use from the embedded source ({detail})")
        lines.append(f"  metallib: {lib} {'found' if lib.exists() else 'absent'}")
    jit = os.environ.get("MLX_FUSED_INIT_METAL_JIT")
    lines.append(f"  MLX_FUSED_INIT_METAL_JIT: {jit if jit is not None else 'unset'}")
    return lines


def check_philox(stream) -> list:
    failures = []
    for counter, key, expected in PHILOX_KAT:
        got = _ext.philox4x32_10(
            mx.array([counter], dtype=mx.uint32),
            mx.array(key, dtype=mx.uint32),
            stream=stream,
        ).tolist()[0]
        if tuple(got) != expected:
            failures.append(
                f"Philox4x32-10 counter={[hex(c) for c in counter]} "
                f"key={[hex(k) for k in key]}: got {[hex(g) for g in got]}, "
                f"expected {[hex(e) for e in expected]}"
            )
    return failures


def check_distribution(stream) -> tuple:
    """2^20 standard normal draws with a fixed key: moments, range, and the
    Kolmogorov-Smirnov distance to the normal CDF. The key is fixed, so the
    outcome is deterministic; the bounds are what a correct N(0, 1) sample of
    this size passes with probability > 0.9999, so only a broken kernel
    fails."""
    n = 1 << 20
    z = _ext.fused_init(
        mx.random.key(20261129), [n], mx.float32, kind=0, scale=1.0, stream=stream
    )
    z = mx.array(z, dtype=mx.float32)
    s = mx.sort(z, stream=mx.cpu)
    cdf = 0.5 * (1.0 + mx.erf(s / math.sqrt(2.0)))
    i = mx.arange(1, n + 1, dtype=mx.float32)
    d = mx.maximum(mx.max(i / n - cdf), mx.max(cdf - (i - 1) / n))
    mean = mx.mean(z).item()
    std = mx.std(z).item()
    ks = d.item()
    max_abs = mx.max(mx.abs(z)).item()
    finite = bool(mx.all(mx.isfinite(z)).item())
    stats = dict(mean=mean, std=std, ks=ks, max_abs=max_abs)
    failures = []
    # sd(mean) = 1/sqrt(n) ~ 0.00098 and sd(std) ~ 1/sqrt(2n) ~ 0.00069: 5 sd.
    if abs(mean) > 5 / math.sqrt(n):
        failures.append(f"mean {mean:.5f} is more than 5 sd from 0")
    if abs(std - 1) > 5 / math.sqrt(2 * n):
        failures.append(f"std {std:.5f} is more than 5 sd from 1")
    # KS critical value at alpha = 1e-4: sqrt(-ln(alpha / 2) / 2) / sqrt(n).
    if ks > math.sqrt(-math.log(0.5e-4) / 2) / math.sqrt(n):
        failures.append(f"KS distance {ks:.5f} is too large")
    # No draw can exceed sqrt(-2 ln 2^-33) = 6.7637 (docs/spec.md §3).
    if not finite or max_abs > 6.7638:
        failures.append(f"values out of range (max |z| = {max_abs}, finite = {finite})")
    return failures, stats


def time_call(fn, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        mx.eval(fn())
        best = min(best, time.perf_counter() - t0)
    return best


def benchmark(stream, shape=(4096, 4096), reps=5) -> tuple:
    """Fused vs stock glorot_normal, float32, interleaved; best of ``reps``."""
    a = mx.zeros(shape)
    fused = glorot_normal()
    stock = stock_init.glorot_normal()
    with mx.stream(stream):
        mx.eval(fused(a), stock(a))  # warm-up: allocator, threads, kernels
        t_fused = t_stock = float("inf")
        for _ in range(reps):
            t_fused = min(t_fused, time_call(lambda: fused(a), 1))
            t_stock = min(t_stock, time_call(lambda: stock(a), 1))
    n = math.prod(shape)
    return n / t_fused / 1e6, n / t_stock / 1e6


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlx_fused_init",
        description="Versions, where the GPU kernels come from, a self-check and a speed check.")
    parser.add_argument(
        "--device", choices=["cpu", "gpu"], default=None,
        help="run the checks on this device (default: MLX's default device)")
    parser.add_argument(
        "--version", action="store_true",
        help="print the versions and which implementation runs (native or portable), then exit")
    args = parser.parse_args(argv)
    info = backend_info()
    if args.version:
        print(f"mlx-fused-init {__version__}: {info['backend']} (MLX {info['mlx']}, "
              f"built against MLX {info['built_against']}; GPU: {info['gpu']})")
        return 0
    if args.device == "gpu" and info["gpu"] == "none":
        print("--device gpu: no GPU kernel can run here (this MLX has no GPU back-end)",
              file=sys.stderr)
        return 2
    if args.device is not None:
        mx.set_default_device(mx.cpu if args.device == "cpu" else mx.gpu)
    stream = mx.default_stream(mx.default_device())
    print(f"mlx-fused-init {__version__}")
    print(f"  MLX {info['mlx']} (native extension built against MLX {info['built_against']})")
    print(f"  backend: {info['backend']} ({info['reason']})")
    if info["backend"] == "portable":
        print("    portable mode: CPU draws are eager (computed when the call returns);")
        print(f"    the native path for this MLX: {info['native_command']}")
    print(f"  Python {platform.python_version()} on {platform.system()} {platform.machine()}")
    print(f"  default device: {mx.default_device()}")
    print(f"  GPU draws: {info['gpu']}")
    for line in metal_report():
        print(line)
    print(f"  CPU kernel: {_ext.cpu_kernel()} (available: {_ext.available_cpu_kernels()}), "
          f"{_ext.num_threads()} threads")

    print("\nSelf-check")
    failures = check_philox(stream)
    print(f"  Philox4x32-10 known answers (Random123): {'ok' if not failures else 'FAILED'}")
    dist_failures, st = check_distribution(stream)
    failures += dist_failures
    print(
        f"  normal draw, 2^20 samples on {stream.device}: mean {st['mean']:+.5f}, "
        f"std {st['std']:.5f}, KS {st['ks']:.5f}, max |z| {st['max_abs']:.4f}: "
        f"{'ok' if not dist_failures else 'FAILED'}"
    )
    if stream.device == mx.gpu:
        key = mx.random.key(7)
        g = _ext.fused_init(key, [1 << 16], mx.float32, kind=0, scale=1.0, stream=stream)
        c = _ext.fused_init(key, [1 << 16], mx.float32, kind=0, scale=1.0, stream=mx.cpu)
        same = mx.array_equal(
            mx.view(g, mx.uint32), mx.view(c, mx.uint32)
        ).item()
        print(f"  GPU and CPU give the same bits: {'ok' if same else 'FAILED'}")
        if not same:
            failures.append("GPU output differs from CPU output")

    print("\nSpeed: glorot_normal, 4096x4096 float32, best of 5, interleaved")
    fused, stock = benchmark(stream)
    print(f"  fused (mlx_fused_init)  {fused:9.1f} M samples/s")
    print(f"  stock (mlx.nn.init)     {stock:9.1f} M samples/s")
    print(f"  ratio                   {fused / stock:9.1f}x")

    if failures:
        print("\nSELF-CHECK FAILED:")
        for f in failures:
            print(f"  - {f}")
        return 1
    print("\nAll checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
