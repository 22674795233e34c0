"""The truncated normal (kind 3) through the Metal kernel source compiled
for the CPU (tests/metal_shim), against the CPU path: bit for bit, with the
real builds' flags, with a faithful (not correctly rounded) sqrt, and with
contraction allowed (-ffp-contract=fast and FMA instructions: a Metal
compiler may fuse a*b + c on its own, docs/spec.md §3's contraction rule).

Self-contained on purpose: it needs only the shim's C API
(mfi_shim_fused_init, mfi_shim_set_truncation)."""

import ctypes
import math
import platform
import shutil
import subprocess
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from mlx_fused_init._backend import ext as _ext
from conftest import bits

REPO = Path(__file__).resolve().parents[1]
SHIM = REPO / "tests" / "metal_shim"
CXX = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
OUT_TYPE = {mx.float32: 0, mx.float16: 1, mx.bfloat16: 2}
NP_TYPE = {mx.float32: np.uint32, mx.float16: np.uint16, mx.bfloat16: np.uint16}
DTYPES = [mx.float32, mx.float16, mx.bfloat16]
KEYS = [(0, 0), (12345, 678), (0xFFFFFFFF, 0x9E3779B9)]
FMA = ["-mfma"] if platform.machine().lower() in ("x86_64", "amd64") else []
BUILDS = {
    "real flags": ["-ffp-contract=off"],
    "faithful sqrt": ["-ffp-contract=off", "-DMFI_SHIM_FAITHFUL_SQRT"],
    "contraction": ["-ffp-contract=fast", *FMA],
}


@pytest.fixture(scope="module", params=list(BUILDS))
def shim(request, tmp_path_factory):
    assert CXX, "the shim test needs a C++ compiler (g++ or clang++)"
    lib = tmp_path_factory.mktemp("tn_shim") / "shim.so"
    cmd = [CXX, "-std=c++20", "-O2", "-shared", "-fPIC", "-fno-fast-math",
           *BUILDS[request.param], "-Wno-attributes", "-fno-strict-aliasing",
           f"-I{SHIM / 'include'}", f"-I{REPO / 'metal'}", f"-I{REPO / 'csrc'}",
           str(SHIM / "driver.cpp"), str(REPO / "csrc" / "fill_job.cpp"), "-o", str(lib)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-4000:]
    dll = ctypes.CDLL(str(lib))
    dll.mfi_shim_fused_init.restype = ctypes.c_int
    dll.mfi_shim_fused_init.argtypes = [
        ctypes.c_int, ctypes.c_int, ctypes.c_float, ctypes.c_float, ctypes.c_float,
        ctypes.c_uint64, ctypes.c_void_p, ctypes.c_int32, ctypes.c_int, ctypes.c_void_p,
        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p,
        ctypes.c_char_p, ctypes.c_int,
    ]
    dll.mfi_shim_set_truncation.argtypes = [ctypes.c_float] * 6 + [ctypes.c_uint32]
    return dll


def run_shim(dll, key, shape, dtype, mean, std, a, b, subsequence=0, full_shape=None,
             start=None, max_group=64):
    scale, shift, lower, upper, p_lo, c_hi, width, c4, c5, mapping = _ext.truncation_constants(
        mean, std, a, b, dtype)
    full_shape = list(full_shape or shape)
    start = list(start or [0] * len(shape))
    out = np.zeros(int(np.prod(shape)), dtype=NP_TYPE[dtype])
    key_arr = np.array(key, dtype=np.uint32)
    f, s, w = (np.array(v, dtype=np.int64) for v in (full_shape, start, shape))
    err = ctypes.create_string_buffer(256)
    dll.mfi_shim_set_truncation(lower, p_lo, c_hi, width, c4, c5, mapping)
    rc = dll.mfi_shim_fused_init(
        OUT_TYPE[dtype], 3, scale, shift, upper, subsequence, key_arr.ctypes.data, 1,
        len(shape), f.ctypes.data, s.ctypes.data, w.ctypes.data, max_group,
        out.ctypes.data, err, len(err))
    dll.mfi_shim_set_truncation(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0)
    assert rc == 0, err.value.decode()
    return out.reshape(shape)


def run_cpu(key, shape, dtype, mean, std, a, b, **kw):
    out = _ext.fused_init(mx.array(key, dtype=mx.uint32), list(shape), dtype, kind=3,
                          scale=std, shift=mean, low=a, high=b, stream=mx.cpu, **kw)
    return bits(out)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mean, std, a, b", [(0.0, 1.0, -2.0, 2.0), (0.5, 2.0, -1.0, 0.7),
                                             (1001.0, 1e-3, -math.inf, math.inf),
                                             # tail mapping (docs/spec.md §3): upper,
                                             # lower, every piece of its ln M, far
                                             (0.0, 1.0, 3.0, 8.0), (0.0, 1.0, -12.0, -9.5),
                                             (0.25, 1.3, 0.9, 1.2), (-1.0, 0.7, -math.inf, -1.0),
                                             (5.0, 2.0, 11.0, 11.2), (0.0, 1.0, 4.5, math.inf),
                                             # narrow mapping
                                             (0.0, 1e6, -2.0, 2.0), (0.0, 1.0, 3.0, 3.001)])
def test_matches_cpu(shim, dtype, mean, std, a, b):
    for key in KEYS:
        for shape in [(1,), (1023,), (7, 13), ((1 << 15) + 3,)]:
            np.testing.assert_array_equal(
                run_shim(shim, key, shape, dtype, mean, std, a, b),
                run_cpu(key, shape, dtype, mean, std, a, b),
                err_msg=f"key {key} shape {shape}")


def test_windows_and_subsequence(shim):
    full, start, shape = (37, 1001), (3, 5), (30, 990)
    want = run_cpu(KEYS[2], shape, mx.float16, 0.0, 1.0, -3.0, 2.0,
                   full_shape=list(full), start=list(start), subsequence=5)
    got = run_shim(shim, KEYS[2], shape, mx.float16, 0.0, 1.0, -3.0, 2.0,
                   full_shape=full, start=start, subsequence=5)
    np.testing.assert_array_equal(got, want)
