"""oneMKL's Philox4x32-10 as a benchmark peer, through the MKL that the
``mkl_random`` wheel installs.

Two ways in:

* ``mkl_random.MKLRandomState(brng="philox4x32x10").standard_normal`` (ICDF and
  Box-Muller2): the Python API, float64 only, one thread;
* ``vsRngGaussian`` called with ctypes on the same ``libmkl_rt``: float32
  like the fused kernel, with the scale applied by MKL (sigma), one thread or
  one stream per core, each skipped ahead to its own part of the sequence
  (vslSkipAheadStream), on a persistent pool of Python threads (ctypes
  releases the GIL during the call, so the threads run in parallel).

Neither gives MLX arrays or MLX's bits; they measure how fast the strongest
CPU implementation of this generator fills memory with normals.
"""

import ctypes
import ctypes.util
import glob
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# mkl_vsl_defines.h
VSL_BRNG_PHILOX4X32X10 = 16 << 20
METHODS = {"ICDF": 2, "BoxMuller2": 1}


def why_unavailable() -> str | None:
    """None if the peer can run, else a sentence saying why not."""
    try:
        import mkl_random  # noqa: F401
    except Exception as e:  # ImportError, or a broken install
        return f"mkl_random is not importable ({e.__class__.__name__}): no oneMKL peer"
    if _library() is None:
        return "libmkl_rt was not found: no oneMKL float32 peer"
    return None


_lib = None


def _library():
    global _lib
    if _lib is None:
        # The mkl wheel puts libmkl_rt.so.N in <prefix>/lib.
        names = sorted(glob.glob(os.path.join(sys.prefix, "lib", "libmkl_rt.so*")))
        found = ctypes.util.find_library("mkl_rt")
        for name in names + ([found] if found else []):
            try:
                lib = ctypes.CDLL(name)
            except OSError:
                continue
            lib.vslNewStream.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_uint]
            lib.vslSkipAheadStream.argtypes = [ctypes.c_void_p, ctypes.c_longlong]
            lib.vsRngGaussian.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                                          ctypes.c_void_p, ctypes.c_float, ctypes.c_float]
            # Threads are ours (one stream each), not MKL's.
            lib.MKL_Set_Num_Threads(1)
            _lib = lib
            break
    return _lib


def version() -> str:
    lib = _library()
    buf = ctypes.create_string_buffer(256)
    lib.mkl_get_version_string(buf, len(buf))
    return " ".join(buf.value.decode(errors="replace").split())


def vendor_note() -> str:
    """A caveat for the results on a non-Intel CPU, else ''."""
    try:
        with open("/proc/cpuinfo") as f:
            vendor = next((ln.split(":", 1)[1].strip() for ln in f
                           if ln.startswith("vendor_id")), "")
    except OSError:
        return ""
    if vendor in ("", "GenuineIntel"):
        return ""
    return (f"On this {vendor} CPU oneMKL may run its generic code path (on an "
            "AMD EPYC Zen 4, perf showed its Philox and ICDF in libmkl_vml_def.so even "
            "with MKL_ENABLE_INSTRUCTIONS=AVX512): these need not be oneMKL's best numbers")


def float32_normal(n: int, sigma: float, method: str, threads: int):
    """A callable that returns a fresh float32 array of n normals * sigma."""
    lib = _library()
    streams = []
    for t in range(threads):
        s = ctypes.c_void_p()
        if lib.vslNewStream(ctypes.byref(s), VSL_BRNG_PHILOX4X32X10, 1234) != 0:
            raise RuntimeError("vslNewStream failed")
        lib.vslSkipAheadStream(s, t << 40)
        streams.append(s)
    # Chunks of equal size, multiples of 16 elements.
    chunk = ((n + threads - 1) // threads + 15) // 16 * 16
    code = METHODS[method]
    pool = ThreadPoolExecutor(threads) if threads > 1 else None

    def part(out, t):
        lo, hi = t * chunk, min(n, (t + 1) * chunk)
        if hi > lo:
            ptr = out.ctypes.data + 4 * lo
            if lib.vsRngGaussian(code, streams[t], hi - lo, ptr, 0.0, sigma) != 0:
                raise RuntimeError("vsRngGaussian failed")

    def call():
        out = np.empty(n, dtype=np.float32)
        if pool is None:
            part(out, 0)
        else:
            for f in [pool.submit(part, out, t) for t in range(threads)]:
                f.result()
        return out

    return call


def float64_standard_normal(n: int, method: str):
    """mkl_random's own API: a fresh float64 array of n standard normals."""
    import mkl_random

    # MKLRandomState since mkl_random 1.3.2 (RandomState is deprecated).
    cls = getattr(mkl_random, "MKLRandomState", None) or mkl_random.RandomState
    rs = cls(1234, brng="philox4x32x10")
    return lambda: rs.standard_normal(n, method=method)
