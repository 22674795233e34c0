"""The Metal kernel source, compiled as C++ through tests/metal_shim and run
on the CPU for every thread of the dispatch the host code plans, gives the
bits of the CPU path."""

import ctypes
import shutil
import subprocess
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from mlx_fused_init import _ext
from conftest import bits

REPO = Path(__file__).resolve().parents[1]
SHIM = REPO / "tests" / "metal_shim"
CXX = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
OUT_TYPE = {mx.float32: 0, mx.float16: 1, mx.bfloat16: 2}
NP_TYPE = {mx.float32: np.uint32, mx.float16: np.uint16, mx.bfloat16: np.uint16}


def build(tmp: Path, *defines: str) -> ctypes.CDLL:
    lib = tmp / ("shim" + "".join(d.lower() for d in defines) + ".so")
    cmd = [
        CXX, "-std=c++20", "-O2", "-shared", "-fPIC",
        # The same rules as the real builds: no contraction, no fast math.
        "-ffp-contract=off", "-fno-fast-math",
        # Metal attributes ([[kernel]], [[buffer(n)]]) mean nothing here.
        "-Wno-attributes", "-fno-strict-aliasing",
        f"-I{SHIM / 'include'}", f"-I{REPO / 'metal'}", f"-I{REPO / 'csrc'}",
        *[f"-D{d}" for d in defines],
        str(SHIM / "driver.cpp"), str(REPO / "csrc" / "fill_job.cpp"),
        "-o", str(lib),
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    dll = ctypes.CDLL(str(lib))
    dll.mfi_shim_fused_init.restype = ctypes.c_int
    dll.mfi_shim_fused_init.argtypes = [
        ctypes.c_int, ctypes.c_int, ctypes.c_float, ctypes.c_float, ctypes.c_float,
        ctypes.c_uint64,
        ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_void_p,
        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p,
        ctypes.c_char_p, ctypes.c_int,
    ]
    dll.mfi_shim_registered_names.argtypes = [ctypes.c_char_p, ctypes.c_int]
    dll.mfi_shim_host_name.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    dll.mfi_shim_philox.restype = None
    dll.mfi_shim_philox.argtypes = [
        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32,
        ctypes.c_uint64, ctypes.c_void_p,
    ]
    return dll


@pytest.fixture(scope="session")
def shim(tmp_path_factory):
    assert CXX, "the shim test needs a C++ compiler (g++ or clang++)"
    return build(tmp_path_factory.mktemp("shim"))


@pytest.fixture(scope="session")
def shim_faithful_sqrt(tmp_path_factory):
    return build(tmp_path_factory.mktemp("shim_fsqrt"), "MFI_SHIM_FAITHFUL_SQRT")


def run_shim(dll, key, shape, dtype, kind=0, scale=1.0, shift=0.0, subsequence=0,
             full_shape=None, start=None, max_group=1024):
    upper = 0.0
    if kind == 1:  # scale, shift are high, low: the op's own bounds
        shift, scale, upper = _ext.uniform_bounds(shift, scale, dtype)
    full_shape = list(full_shape or shape)
    start = list(start or [0] * len(shape))
    out = np.zeros(int(np.prod(shape)), dtype=NP_TYPE[dtype])
    key_arr = np.array(key, dtype=np.uint32)
    i64 = lambda v: np.array(v, dtype=np.int64)  # noqa: E731
    f, s, w = i64(full_shape), i64(start), i64(shape)
    err = ctypes.create_string_buffer(256)
    rc = dll.mfi_shim_fused_init(
        OUT_TYPE[dtype], kind, scale, shift, upper, subsequence,
        key_arr.ctypes.data, 1, len(shape), f.ctypes.data, s.ctypes.data,
        w.ctypes.data, max_group, out.ctypes.data, err, len(err),
    )
    assert rc == 0, err.value.decode()
    return out.reshape(shape)


def run_cpu(key, shape, dtype, kind=0, scale=1.0, shift=0.0, subsequence=0,
            full_shape=None, start=None):
    bounds = dict(low=shift, high=scale) if kind == 1 else dict(scale=scale, shift=shift)
    out = _ext.fused_init(
        mx.array(key, dtype=mx.uint32), list(shape), dtype, kind=kind,
        subsequence=subsequence, full_shape=full_shape, start=start, stream=mx.cpu, **bounds,
    )
    return bits(out)


KEYS = [(0, 0), (12345, 678), (0xFFFFFFFF, 0x9E3779B9)]
DTYPES = [mx.float32, mx.float16, mx.bfloat16]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 3, 4, 1023, (1 << 20) + 3])
def test_sizes_match_cpu(shim, n, dtype):
    for key in KEYS:
        np.testing.assert_array_equal(
            run_shim(shim, key, (n,), dtype, scale=0.5),
            run_cpu(key, (n,), dtype, scale=0.5),
            err_msg=f"key {key}",
        )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7, 13), (5, 3, 11), (8, 3, 3, 5), (1, 1)])
@pytest.mark.parametrize("kind, shift", [(0, 0.0), (0, -1.5), (1, -0.75)])
def test_shapes_dtypes_transforms_match_cpu(shim, shape, dtype, kind, shift):
    key = KEYS[1]
    got = run_shim(shim, key, shape, dtype, kind=kind, scale=1.5, shift=shift)
    np.testing.assert_array_equal(got, run_cpu(key, shape, dtype, kind=kind, scale=1.5, shift=shift))


@pytest.mark.parametrize(
    "full_shape, start, shape",
    [
        ((37, 1001), (3, 5), (30, 990)),  # rows start and end inside blocks
        ((16, 16), (4, 0), (8, 16)),  # whole rows: one run
        ((6, 7, 9), (1, 2, 3), (4, 3, 5)),  # two outer dimensions
        ((4, 5, 6, 7), (1, 0, 2, 1), (2, 5, 3, 6)),
    ],
)
def test_windows_match_cpu(shim, full_shape, start, shape):
    for dtype in DTYPES:
        got = run_shim(shim, KEYS[2], shape, dtype, full_shape=full_shape, start=start)
        want = run_cpu(KEYS[2], shape, dtype, full_shape=list(full_shape), start=list(start))
        np.testing.assert_array_equal(got, want)


def test_64_bit_stream_indexes(shim):
    # A window at the end of a virtual tensor of 2^34 + 12 elements: block
    # indexes above 2^32 use the counter's high word.
    full, start, shape = (2**17 + 3, 2**17), (2**17, 2**17 - 40), (3, 40)
    for dtype in DTYPES:
        got = run_shim(shim, KEYS[0], shape, dtype, full_shape=full, start=start)
        np.testing.assert_array_equal(
            got, run_cpu(KEYS[0], shape, dtype, full_shape=list(full), start=list(start))
        )


def test_subsequence(shim):
    q = 2**40 + 17
    np.testing.assert_array_equal(
        run_shim(shim, KEYS[1], (33,), mx.float32, subsequence=q),
        run_cpu(KEYS[1], (33,), mx.float32, subsequence=q),
    )


@pytest.mark.parametrize("max_group", [1, 7, 32, 1024])
def test_threadgroup_sizes(shim, max_group):
    n = 4 * 97 + 2
    np.testing.assert_array_equal(
        run_shim(shim, KEYS[1], (n,), mx.float16, max_group=max_group),
        run_cpu(KEYS[1], (n,), mx.float16),
    )


def test_faithful_sqrt_device_gives_the_same_bits(shim_faithful_sqrt):
    # A GPU whose sqrt is only faithful still yields the correctly rounded
    # radius (fused_init_math.h, sqrt_rn), hence the same bits.
    for dtype in DTYPES:
        np.testing.assert_array_equal(
            run_shim(shim_faithful_sqrt, KEYS[1], (4099,), dtype),
            run_cpu(KEYS[1], (4099,), dtype),
        )


def test_instantiated_names_are_exactly_the_host_names(shim):
    # Every kernel the .metal file instantiates is one the host can ask for
    # (metal_kernel_name), and the other way round.
    buf = ctypes.create_string_buffer(4096)
    shim.mfi_shim_registered_names(buf, len(buf))
    registered = set(buf.value.decode().split())
    host = set()
    for out_type in range(3):
        for variant in range(4):  # normal, uniform, shifted normal, truncated normal
            shim.mfi_shim_host_name(out_type, variant, buf, len(buf))
            host.add(buf.value.decode())
    assert len(host) == 12
    assert registered == host


def test_philox_kernel_matches_known_answers(shim, philox_kat):
    for counter, key, expected, name in philox_kat:
        c = np.array([counter], dtype=np.uint32)
        k = np.array(key, dtype=np.uint32)
        out = np.zeros((1, 4), dtype=np.uint32)
        shim.mfi_shim_philox(c.ctypes.data, k.ctypes.data, 1, 1, 1024, out.ctypes.data)
        assert out[0].tolist() == expected, name


def test_philox_kernel_matches_cpu(shim):
    rng = np.random.default_rng(0)
    c = rng.integers(0, 2**32, size=(1000, 4), dtype=np.uint32)
    k = np.array([5, 0, 9], dtype=np.uint32)  # key[1] at stride 2
    out = np.zeros((1000, 4), dtype=np.uint32)
    shim.mfi_shim_philox(c.ctypes.data, k.ctypes.data, 2, 1000, 64, out.ctypes.data)
    want = _ext.philox4x32_10(mx.array(c), mx.array([5, 9], dtype=mx.uint32), stream=mx.cpu)
    np.testing.assert_array_equal(out, np.array(want))
