"""Checks and times the GPU paths on a machine whose MLX has a GPU back-end.

    MLX_FUSED_INIT_BACKEND=portable python benchmarks/gpu_check.py [--reps N]

1. Bits: the portable GPU kernels (python/mlx_fused_init/_gpu.py, through
   mx.fast.metal_kernel or mx.fast.cuda_kernel), and the native op's Metal
   path when this build has one, against the CPU path of the portable
   module (_kernels.fill), for every transform (normal, shifted normal,
   uniform, truncated normal) and dtype, on full tensors, windows (the top
   of the 2^62-element stream too), a subsequence >= 2^32, a key view, and
   a 4096 x 4096 draw; and the raw Philox kernel against _kernels.philox.
2. Speed: M samples/s of 4096^2 and 8192^2 float32 / bfloat16 normal draws
   through the portable kernel, against the same run's device-to-device
   copy of an array of the same size and dtype (`x + 0`: reads and writes
   it once), printed as bandwidths and as the ratio copy time / draw time
   (about 2 would be a draw as fast as writing its output alone).

The portable kernels are called directly (_kernels.check + _gpu.fused_init),
whatever backend the package chose at import; MLX_FUSED_INIT_BACKEND=
portable (set by default here) also keeps the import off the native
extension where the package supports it. Without a GPU back-end this says
so and exits 0. Exit status 1 when any bits differ.
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("MLX_FUSED_INIT_BACKEND", "portable")

import mlx.core as mx  # noqa: E402
import numpy as np  # noqa: E402

from mlx_fused_init import _gpu, _kernels  # noqa: E402

CODE = {mx.float32: 0, mx.float16: 1, mx.bfloat16: 2}
BITS = {mx.float32: np.uint32, mx.float16: np.uint16, mx.bfloat16: np.uint16}
TRANSFORMS = {
    "normal": dict(kind=0, scale=0.5),
    "shifted_normal": dict(kind=0, scale=1.5, shift=-0.25),
    "uniform": dict(kind=1, low=-0.75, high=1.5),
    "truncated_normal": dict(kind=3, scale=0.8, shift=0.1, low=-1.0, high=1.5),
}
KEY = (0xFFFFFFFF, 0x9E3779B9)
# (name, shape, window keywords)
CASES = [
    ("1027", (1027,), {}),
    ("37x1001", (37, 1001), {}),
    ("window 2-D", (30, 990), dict(full_shape=[37, 1001], start=[3, 5])),
    ("window 3-D", (4, 3, 5), dict(full_shape=[6, 7, 9], start=[1, 2, 3])),
    ("stream top", (1000,), dict(full_shape=[2**62], start=[2**62 - 1000])),
    ("subsequence 2^40+17", (33, 65), dict(subsequence=2**40 + 17)),
    ("4096x4096", (4096, 4096), {}),
]


def cpu_bits(key, shape, dtype, **spec):
    out = np.zeros(int(np.prod(shape, dtype=np.int64)), dtype=BITS[dtype])
    _kernels.fill(out, key[0], key[1], list(shape), CODE[dtype], **spec)
    return out.reshape(shape)


def bits(a):
    return np.array(mx.view(a, mx.uint32 if a.dtype == mx.float32 else mx.uint16))


def portable(key, shape, dtype, **spec):
    args, n, variant = _kernels.check(list(shape), CODE[dtype], gpu=True, **spec)
    return _gpu.fused_init(key, args, n, variant, shape, dtype, stream=mx.gpu)


def native_op():
    """The native op's fused_init when this build has a Metal path and the
    running MLX is the one it was built against; else None."""
    from mlx_fused_init import _build_info

    if mx.__version__ != _build_info.MLX_VERSION:
        return None  # never load the native module under another MLX
    try:
        from mlx_fused_init import _ext
    except Exception:  # not built
        return None
    return _ext.fused_init if _ext.built_with_metal() and mx.metal.is_available() else None


def check_bits(native) -> int:
    failures = 0
    keys = {"key": mx.array(KEY, dtype=mx.uint32),
            "reversed key view": mx.array(KEY[::-1], dtype=mx.uint32)[::-1]}
    for transform, spec in TRANSFORMS.items():
        for dtype in CODE:
            for case, shape, window in CASES:
                for key_name, key in keys.items():
                    if key_name != "key" and case != "1027":
                        continue
                    want = cpu_bits(KEY, shape, dtype, **spec, **window)
                    paths = {"portable": lambda: portable(key, shape, dtype, **spec, **window)}
                    if native is not None:
                        paths["native"] = lambda: native(key, list(shape), dtype, stream=mx.gpu,
                                                         **spec, **window)
                    for path, draw in paths.items():
                        got = bits(draw())
                        ok = np.array_equal(got, want)
                        failures += not ok
                        if not ok:
                            bad = int(np.count_nonzero(got != want))
                            print(f"  MISMATCH {path:8s} {transform} {dtype} {case} {key_name}: "
                                  f"{bad} of {want.size} elements differ")
    rng = np.random.default_rng(0)
    c = rng.integers(0, 2**32, size=(4099, 4), dtype=np.uint32)
    want = np.zeros_like(c)
    _kernels.philox(want, c, KEY[0], KEY[1], c.shape[0])
    got = np.array(_gpu.philox4x32_10(mx.array(c), mx.array(KEY, dtype=mx.uint32), mx.gpu))
    if not np.array_equal(got, want):
        failures += 1
        print("  MISMATCH philox4x32_10")
    checked = len(TRANSFORMS) * len(CODE) * (len(CASES) + 1) * (2 if native else 1) + 1
    print(f"bits: {checked - failures} of {checked} checks identical to the CPU path "
          f"(paths: portable{' and native' if native else ''}; Philox)")
    return failures


def median_time(fn, reps):
    mx.eval(fn())  # compile and warm up
    mx.synchronize()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        mx.eval(fn())
        mx.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def speed(reps):
    key = mx.array(KEY, dtype=mx.uint32)
    print(f"\nspeed (median of {reps}; copy = x + 0, reads and writes the array once)")
    print(f"{'shape':>11} {'dtype':>9} {'draw Ms/s':>10} {'draw GB/s':>10} "
          f"{'copy GB/s':>10} {'copy/draw time':>15}")
    for side in (4096, 8192):
        for dtype in (mx.float32, mx.bfloat16):
            shape = (side, side)
            n = side * side
            nbytes = n * (4 if dtype == mx.float32 else 2)
            x = mx.zeros(shape, dtype=dtype, stream=mx.gpu)
            mx.eval(x)
            t_draw = median_time(lambda: portable(key, shape, dtype, kind=0, scale=0.02), reps)
            t_copy = median_time(lambda: mx.add(x, 0, stream=mx.gpu), reps)
            print(f"{side:>5}x{side:<5} {str(dtype).split('.')[-1]:>9} {n / t_draw / 1e6:>10.0f} "
                  f"{nbytes / t_draw / 1e9:>10.1f} {2 * nbytes / t_copy / 1e9:>10.1f} "
                  f"{t_copy / t_draw:>15.2f}")
            del x


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=20)
    opts = parser.parse_args(argv)
    backend = _gpu.gpu_backend()
    if backend is None:
        print(f"MLX {mx.__version__} has no GPU back-end here (no Metal, no CUDA): "
              "nothing to check on a GPU.")
        return 0
    device = mx.device_info() if hasattr(mx, "device_info") else {}
    print(f"MLX {mx.__version__}, GPU back-end {backend}: "
          f"{device.get('device_name', device.get('architecture', '?'))}")
    native = native_op()
    failures = check_bits(native)
    speed(opts.reps)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
