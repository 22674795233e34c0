"""Builds the CPU shim of the Metal kernel (tests/metal_shim) and the
stand-alone scalar CPU kernel driver (tests/cross/fill_main.cpp) with the
host's C++ compilers, and runs them: shared by test_metal_shim.py and
test_contraction.py."""

import ctypes
import functools
import os
import platform
import shutil
import subprocess
from pathlib import Path

import mlx.core as mx
import numpy as np

from mlx_fused_init._backend import ext as _ext

REPO = Path(__file__).resolve().parents[1]
SHIM = REPO / "tests" / "metal_shim"
OUT_TYPE = {mx.float32: 0, mx.float16: 1, mx.bfloat16: 2}
NP_TYPE = {mx.float32: np.uint32, mx.float16: np.uint16, mx.bfloat16: np.uint16}
DTYPES = [mx.float32, mx.float16, mx.bfloat16]

# The flags that let a compiler fuse a*b + c on its own: the Metal compiler
# may contract by default (docs/spec.md §3), so the math must give the same bits.
# On x86-64, FMA instructions must be enabled as well; arm64 always has them.
CONTRACT_FLAGS = ["-ffp-contract=fast"] + (
    ["-mfma"] if platform.machine().lower() in ("x86_64", "amd64") else [])
# The flags of the real builds (CMakeLists.txt, mfi_core).
NO_CONTRACT_FLAGS = ["-ffp-contract=off"]


def gxx():
    return shutil.which("g++") or shutil.which("c++")


@functools.lru_cache(maxsize=None)
def clangxx():
    """The newest clang++ on PATH that compiles the shim's half type
    (_Float16 on x86-64 needs clang 15 or later), or None."""
    names = [f"clang++-{v}" for v in range(30, 14, -1)] + ["clang++"]
    probe = "int main() { _Float16 h = (_Float16)1.5f; return (int)(float)h - 1; }\n"
    for name in names:
        path = shutil.which(name)
        if not path:
            continue
        r = subprocess.run([path, "-std=c++20", "-x", "c++", "-fsyntax-only", "-"],
                           input=probe, capture_output=True, text=True)
        if r.returncode == 0:
            return path
    return None


def compile_or_fail(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"compile failed: {' '.join(cmd)}\n{r.stderr[-4000:]}")


# tests/sanitize.sh sets this: the shim and the scalar driver are then
# built with AddressSanitizer + UBSan too (g++ only: the sanitizer runtime
# preloaded into Python is GCC's, and clang's instrumentation needs its own).
SANITIZE = os.environ.get("MFI_SHIM_SANITIZE") == "1"
SAN_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
             "-fno-omit-frame-pointer", "-g"]


def sanitize_flags(cxx):
    return SAN_FLAGS if SANITIZE and "clang" not in Path(cxx).name else []


def build_shim(out_dir: Path, cxx=None, flags=(), defines=(), tag="", source=None) -> ctypes.CDLL:
    """source: a kernel source text to compile instead of metal/fused_init.metal
    (the embedded source, _ext.metal_kernel_source())."""
    cxx = cxx or gxx()
    lib = Path(out_dir) / f"shim{tag}.so"
    defines = list(defines)
    if source is not None:
        kernel = Path(out_dir) / f"kernel_source{tag}.metal"
        kernel.write_text(source)
        defines.append(f'MFI_SHIM_KERNEL_SOURCE="{kernel}"')
    cmd = [
        cxx, "-std=c++20", "-O2", "-shared", "-fPIC",
        # The same rules as the real builds unless flags say otherwise: no
        # fast math, no contraction (the later flag wins).
        "-fno-fast-math", *NO_CONTRACT_FLAGS, *flags, *sanitize_flags(cxx),
        # Metal attributes ([[kernel]], [[buffer(n)]]) mean nothing here.
        "-Wno-attributes", "-Wno-unknown-attributes", "-Wno-unknown-pragmas",
        "-fno-strict-aliasing",
        f"-I{SHIM / 'include'}", f"-I{REPO / 'metal'}", f"-I{REPO / 'csrc'}",
        *[f"-D{d}" for d in defines],
        str(SHIM / "driver.cpp"), str(REPO / "csrc" / "fill_job.cpp"),
        "-o", str(lib),
    ]
    if "clang" in Path(cxx).name:
        cmd.remove("-Wno-attributes")  # GCC's spelling; clang has its own
    compile_or_fail(cmd)
    dll = ctypes.CDLL(str(lib))
    dll.mfi_shim_fused_init.restype = ctypes.c_int
    dll.mfi_shim_fused_init.argtypes = [
        ctypes.c_int, ctypes.c_int, ctypes.c_float, ctypes.c_float, ctypes.c_float,
        ctypes.c_uint64,
        ctypes.c_void_p, ctypes.c_int32, ctypes.c_int, ctypes.c_void_p,
        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p,
        ctypes.c_char_p, ctypes.c_int,
    ]
    dll.mfi_shim_fused_perturb.restype = ctypes.c_int
    dll.mfi_shim_fused_perturb.argtypes = [
        ctypes.c_int, ctypes.c_float, ctypes.c_float, ctypes.c_uint64,
        ctypes.c_void_p, ctypes.c_int32, ctypes.c_int, ctypes.c_void_p,
        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_int,
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
    ]
    dll.mfi_shim_registered_names.argtypes = [ctypes.c_char_p, ctypes.c_int]
    dll.mfi_shim_host_name.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    dll.mfi_shim_plan.restype = ctypes.c_int
    dll.mfi_shim_plan.argtypes = [ctypes.c_uint64, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p]
    dll.mfi_shim_philox.restype = ctypes.c_int
    dll.mfi_shim_philox.argtypes = [
        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32, ctypes.c_uint32,
        ctypes.c_uint64, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
    ]
    return dll


def key_words(key):
    """(array, stride in words) for the shim: a tuple becomes a contiguous
    key; a NumPy uint32 view (reversed, strided, broadcast) is passed as the
    GPU gets an MLX view, a pointer to key[0] and a signed stride."""
    if isinstance(key, np.ndarray):
        assert key.dtype == np.uint32 and key.shape == (2,)
        return key, key.strides[0] // key.itemsize
    return np.array(key, dtype=np.uint32), 1


def run_shim(dll, key, shape, dtype, kind=0, scale=1.0, shift=0.0, subsequence=0,
             full_shape=None, start=None, max_group=1024):
    upper = 0.0
    if kind == 1:  # scale, shift are high, low: the op's own bounds
        shift, scale, upper = _ext.uniform_bounds(shift, scale, dtype)
    full_shape = list(full_shape or shape)
    start = list(start or [0] * len(shape))
    out = np.zeros(int(np.prod(shape)), dtype=NP_TYPE[dtype])
    key_arr, key_stride = key_words(key)
    i64 = lambda v: np.array(v, dtype=np.int64)  # noqa: E731
    f, s, w = i64(full_shape), i64(start), i64(shape)
    err = ctypes.create_string_buffer(256)
    rc = dll.mfi_shim_fused_init(
        OUT_TYPE[dtype], kind, scale, shift, upper, subsequence,
        key_arr.ctypes.data, key_stride, len(shape), f.ctypes.data, s.ctypes.data,
        w.ctypes.data, max_group, out.ctypes.data, err, len(err),
    )
    assert rc == 0, err.value.decode()
    return out.reshape(shape)


def bits(a: mx.array) -> np.ndarray:
    """An MLX float array's bits, as NumPy uint32 or uint16."""
    return np.array(mx.view(a, {mx.float32: mx.uint32}.get(a.dtype, mx.uint16)))


def run_shim_perturb(dll, key, w, scale, w_scale=1.0, subsequence=0, full_shape=None,
                     start=None, max_group=1024, in_place=False):
    """The perturbation kernel through the shim: w an MLX array (its bits
    are the kernel's input); in_place as when MLX donates w's buffer."""
    shape = tuple(w.shape)
    full_shape = list(full_shape or shape)
    start = list(start or [0] * len(shape))
    w_bits = np.ascontiguousarray(bits(w)).reshape(-1)
    out = np.zeros_like(w_bits)
    key_arr, key_stride = key_words(key)
    i64 = lambda v: np.array(v, dtype=np.int64)  # noqa: E731
    f, s, sh = i64(full_shape), i64(start), i64(shape)
    err = ctypes.create_string_buffer(256)
    rc = dll.mfi_shim_fused_perturb(
        OUT_TYPE[w.dtype], scale, w_scale, subsequence, key_arr.ctypes.data, key_stride,
        len(shape), f.ctypes.data, s.ctypes.data, sh.ctypes.data, max_group,
        w_bits.ctypes.data, int(in_place), out.ctypes.data, err, len(err))
    assert rc == 0, err.value.decode()
    return out.reshape(shape)


def run_cpu_perturb(key, w, scale, w_scale=1.0, subsequence=0, full_shape=None, start=None):
    """The installed extension's CPU perturbation, as bits."""
    out = _ext.fused_perturb(mx.array(key, dtype=mx.uint32), w, scale=scale,
                             weight_scale=w_scale, subsequence=subsequence,
                             full_shape=full_shape, start=start, stream=mx.cpu)
    return bits(out)


def run_philox(dll, counters, key, max_group=1024):
    """The Philox kernel through the shim: counters (n, 4) uint32, key a
    tuple or a NumPy view (key_words)."""
    c = np.ascontiguousarray(counters, dtype=np.uint32)
    key_arr, key_stride = key_words(key)
    out = np.zeros(c.shape, dtype=np.uint32)
    err = ctypes.create_string_buffer(256)
    rc = dll.mfi_shim_philox(c.ctypes.data, key_arr.ctypes.data, key_stride, c.shape[0],
                             max_group, out.ctypes.data, err, len(err))
    assert rc == 0, err.value.decode()
    return out


def run_cpu(key, shape, dtype, kind=0, scale=1.0, shift=0.0, subsequence=0,
            full_shape=None, start=None):
    """The installed extension's CPU path (kind 1: shift, scale = low, high)."""
    bounds = dict(low=shift, high=scale) if kind == 1 else dict(scale=scale, shift=shift)
    out = _ext.fused_init(
        mx.array(key, dtype=mx.uint32), list(shape), dtype, kind=kind,
        subsequence=subsequence, full_shape=full_shape, start=start, stream=mx.cpu, **bounds,
    )
    return np.array(mx.view(out, {mx.float32: mx.uint32}.get(dtype, mx.uint16)))


def build_fill_main(out_dir: Path, cxx=None, flags=(), tag="") -> Path:
    """tests/cross/fill_main.cpp with the scalar CPU kernel build, natively."""
    cxx = cxx or gxx()
    exe = Path(out_dir) / f"fill_main{tag}"
    compile_or_fail([
        cxx, "-std=c++20", "-O2", "-fno-math-errno", *NO_CONTRACT_FLAGS, *flags,
        *sanitize_flags(cxx),
        f"-I{REPO / 'csrc'}", f"-I{REPO / 'metal'}",
        str(REPO / "tests" / "cross" / "fill_main.cpp"),
        str(REPO / "csrc" / "cpu_fill_scalar.cpp"), str(REPO / "csrc" / "fill_job.cpp"),
        "-o", str(exe),
    ])
    return exe


def run_fill_main(exe, dtype, kind, key, scale, shift, upper, full, start, shape, runner=()):
    args = [*runner, str(exe), "scalar", str(OUT_TYPE[dtype]), str(kind), str(key[0]),
            str(key[1]), repr(scale), repr(shift), repr(upper), str(len(shape)),
            *map(str, full), *map(str, start), *map(str, shape)]
    out = subprocess.run(args, check=True, capture_output=True).stdout
    return np.frombuffer(out, dtype=NP_TYPE[dtype]).reshape(shape)
