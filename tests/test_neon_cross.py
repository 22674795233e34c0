"""The arm64 NEON build of the CPU kernel, cross-compiled and run under qemu
on this x86-64 machine, gives the bits of the x86-64 build (tests/cross/).
.ci/run installs the cross compiler and qemu (Debian: g++-aarch64-linux-gnu,
qemu-user); elsewhere the test is skipped for want of them."""

import shutil
import subprocess
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from mlx_fused_init._backend import ext as _ext
from conftest import bits

REPO = Path(__file__).resolve().parents[1]
CROSS = shutil.which("aarch64-linux-gnu-g++")
QEMU = shutil.which("qemu-aarch64")
pytestmark = pytest.mark.skipif(
    not (CROSS and QEMU),
    reason="arm64 cross compiler and qemu not installed (apt-get install g++-aarch64-linux-gnu qemu-user)",
)
OUT_TYPE = {mx.float32: 0, mx.float16: 1, mx.bfloat16: 2}
NP = {mx.float32: np.uint32, mx.float16: np.uint16, mx.bfloat16: np.uint16}


@pytest.fixture(scope="module")
def arm64_driver(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("arm64")
    flags = ["-std=c++20", "-O3", "-ffp-contract=off", "-fno-math-errno",
             f"-I{REPO / 'csrc'}", f"-I{REPO / 'metal'}"]
    objs = []
    # The same per-file flags as CMakeLists.txt: the scalar build must not
    # be vectorized, the NEON build uses the arm64 defaults.
    for src, extra in (("cpu_fill_scalar.cpp", ["-fno-tree-vectorize", "-fno-tree-slp-vectorize"]),
                       ("cpu_fill_neon.cpp", []), ("fill_job.cpp", [])):
        obj = tmp / (src + ".o")
        subprocess.run([CROSS, *flags, *extra, "-c", str(REPO / "csrc" / src), "-o", str(obj)], check=True)
        objs.append(str(obj))
    exe = tmp / "fill_main"
    subprocess.run([CROSS, *flags, "-static", str(REPO / "tests" / "cross" / "fill_main.cpp"), *objs,
                    "-o", str(exe)], check=True)
    return exe


def run_arm64(exe, isa, dtype, kind, key, scale, shift, upper, full, start, shape, w=None):
    """w: a perturbation's input (kind 4), as bits, handed over stdin."""
    args = [QEMU, str(exe), isa, str(OUT_TYPE[dtype]), str(kind), str(key[0]), str(key[1]),
            repr(scale), repr(shift), repr(upper), str(len(shape)),
            *map(str, full), *map(str, start), *map(str, shape)]
    stdin = None if w is None else np.ascontiguousarray(w).tobytes()
    out = subprocess.run(args, check=True, capture_output=True, input=stdin).stdout
    return np.frombuffer(out, dtype=NP[dtype]).reshape(shape)


CASES = [
    ((1,), None, None), ((3,), None, None), ((4,), None, None), ((1023,), None, None),
    (((1 << 20) + 3,), None, None), ((30, 990), (37, 1001), (3, 5)),
]


@pytest.mark.parametrize("dtype", [mx.float32, mx.float16, mx.bfloat16])
@pytest.mark.parametrize("transform", ["normal", "shifted", "uniform"])
def test_neon_and_scalar_on_arm64_match_x86(arm64_driver, dtype, transform):
    key = (12345, 678)
    for shape, full, start in CASES:
        full = full or shape
        start = start or (0,) * len(shape)
        if transform == "uniform":
            low, high = -0.75, 1.5
            shift, scale, upper = _ext.uniform_bounds(low, high, dtype)
            x86 = _ext.fused_init(mx.array(key, dtype=mx.uint32), list(shape), dtype, kind=1,
                                  low=low, high=high, full_shape=list(full), start=list(start),
                                  stream=mx.cpu)
            kind = 1
        else:
            scale, shift, upper = 0.75, (0.25 if transform == "shifted" else 0.0), 0.0
            x86 = _ext.fused_init(mx.array(key, dtype=mx.uint32), list(shape), dtype, kind=0,
                                  scale=scale, shift=shift, full_shape=list(full),
                                  start=list(start), stream=mx.cpu)
            kind = 0
        for isa in ("neon", "scalar"):
            got = run_arm64(arm64_driver, isa, dtype, kind, key, scale, shift, upper, full, start, shape)
            np.testing.assert_array_equal(got, bits(x86), err_msg=f"{isa} {shape}")


@pytest.mark.parametrize("dtype", [mx.float32, mx.float16, mx.bfloat16])
def test_neon_perturbation_on_arm64_matches_x86(arm64_driver, dtype):
    # In place, as when MLX donates w's buffer (fill_main.cpp).
    key = (0xFFFFFFFF, 0x9E3779B9)
    for shape, full, start in CASES:
        full = full or shape
        start = start or (0,) * len(shape)
        w = (mx.random.normal(shape, key=mx.random.key(7)) * 3.0).astype(dtype)
        x86 = _ext.fused_perturb(mx.array(key, dtype=mx.uint32), w, scale=-0.3,
                                 weight_scale=0.99, full_shape=list(full), start=list(start),
                                 stream=mx.cpu)
        for isa in ("neon", "scalar"):
            got = run_arm64(arm64_driver, isa, dtype, 4, key, -0.3, 0.99, 0.0, full, start,
                            shape, w=bits(w))
            np.testing.assert_array_equal(got, bits(x86), err_msg=f"{isa} {shape}")
