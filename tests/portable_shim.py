"""Runs the portable GPU kernels (python/mlx_fused_init/_gpu.py) on the CPU.

record(backend) stands in for MLX's runtime-kernel API while _gpu builds
and calls its kernels, and keeps every call: the strings and names given to
mx.fast.metal_kernel / mx.fast.cuda_kernel, the inputs, grid, threadgroup
and template. build() wraps those strings exactly as MLX does
(tests/mlx_kernel_text.py), compiles the result as C++ through a shim
(tests/metal_shim/portable_driver.cpp, tests/cuda_shim/driver.cpp), and
run() executes every thread of the launch MLX would make.
"""

import contextlib
import ctypes
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import numpy as np

import mlx_kernel_text as mkt
from mlx_fused_init import _gpu
from shim_build import CONTRACT_FLAGS, REPO, compile_or_fail, gxx

DTYPE_NAME = {mx.float32: "float32", mx.float16: "float16", mx.bfloat16: "bfloat16",
              mx.uint32: "uint32"}
NP_BITS = {"float32": np.uint32, "float16": np.uint16, "bfloat16": np.uint16,
           "uint32": np.uint32}


@dataclass
class Launch:
    """One call of a runtime kernel, as _gpu made it."""
    backend: str
    make: dict    # the keyword arguments of mx.fast.*_kernel(...)
    call: dict    # the keyword arguments of the kernel object's call
    inputs: list  # the inputs' values, row contiguous (NumPy)

    def input_specs(self):
        return [(DTYPE_NAME[x.dtype], x.size, x.ndim) for x in self.call["inputs"]]

    def output_dtypes(self):
        return [DTYPE_NAME[d] for d in self.call["output_dtypes"]]

    def text(self, **options):
        """(kernel name, full source) as MLX generates it for this call."""
        m, c = self.make, self.call
        gen = mkt.metal_kernel_source if self.backend == "metal" else mkt.cuda_kernel_source
        return gen(m["name"], m["input_names"], m["output_names"], m["source"], m["header"],
                   self.input_specs(), self.output_dtypes(), c.get("template") or [],
                   **options)


def _host_values(x):
    # 16-bit floats as their bits: NumPy has no bfloat16.
    if x.dtype in (mx.float16, mx.bfloat16):
        return np.array(mx.view(x, mx.uint16))
    return np.array(x)


class Recorder:
    def __init__(self, backend):
        self.backend = backend
        self.launches = []

    def make_kernel(self, **make):
        def call(**kw):
            # ensure_row_contiguous=True: MLX copies every input into a row
            # contiguous array first; the kernel sees those values.
            assert make.get("ensure_row_contiguous", True), "keys of any stride need it"
            values = [np.ascontiguousarray(_host_values(x)) for x in kw["inputs"]]
            self.launches.append(Launch(self.backend, dict(make), dict(kw), values))
            return [mx.zeros(tuple(s), dtype=d)
                    for s, d in zip(kw["output_shapes"], kw["output_dtypes"])]
        return call


@contextlib.contextmanager
def record(backend):
    """_gpu as if the running MLX had the `backend` GPU back-end; yields a
    Recorder holding every kernel call made meanwhile."""
    rec = Recorder(backend)
    api = "metal_kernel" if backend == "metal" else "cuda_kernel"
    saved_backend, had_api = _gpu.gpu_backend, hasattr(mx.fast, api)
    saved_api = getattr(mx.fast, api, None)
    _gpu._kernel.cache_clear()
    _gpu._philox_kernel.cache_clear()
    _gpu.gpu_backend = lambda: backend
    setattr(mx.fast, api, rec.make_kernel)
    try:
        yield rec
    finally:
        _gpu.gpu_backend = saved_backend
        if had_api:
            setattr(mx.fast, api, saved_api)
        else:
            delattr(mx.fast, api)
        # Never leave a recording kernel object in _gpu's caches.
        _gpu._kernel.cache_clear()
        _gpu._philox_kernel.cache_clear()


# ------------------------------------------------------------------ build
def _c_type(backend, dtype):
    # The element type the generated signature declares (its spelling).
    return (mkt.METAL_TYPE if backend == "metal" else mkt.CUDA_TYPE)[dtype]


def launch_macro(launch, kernel_name, text):
    """MFI_CALL: the generated kernel called with the shim's arguments."""
    args = [f"static_cast<const {_c_type(launch.backend, d)}*>(in[{i}])"
            for i, (d, _, _) in enumerate(launch.input_specs())]
    (out_dtype,) = launch.output_dtypes()
    args.append(f"static_cast<{_c_type(launch.backend, out_dtype)}*>(out)")
    if launch.backend == "cuda":
        return f"#define MFI_CALL(in, out) {kernel_name}({', '.join(args)})\n"
    # Metal: the attributes the signature declares, in its order.
    values = {"thread_position_in_grid": "pos", "threads_per_grid": "tpg"}
    for attr, _ in mkt.METAL_ATTRIBUTES:
        if f"[[{attr}]]" in text:
            assert attr in values, f"the shim does not model the attribute {attr}"
            args.append(values[attr])
    template = launch.call.get("template") or []
    inst = kernel_name + mkt.metal_write_template(template) if template else kernel_name
    return f"#define MFI_CALL(in, out, pos, tpg) {inst}({', '.join(args)})\n"


_BUILT = {}
_LOCK = threading.Lock()


def build(launch, out_dir, cxx=None, flags=CONTRACT_FLAGS, **text_options):
    """A ctypes handle on the shim of this launch's kernel text; built once
    per distinct text, compiler and flags."""
    cxx = cxx or gxx()
    kernel_name, text = launch.text(**text_options)
    macro = launch_macro(launch, kernel_name, text)
    key = hashlib.sha256("\0".join([text, macro, cxx, *flags]).encode()).hexdigest()[:16]
    with _LOCK:
        if key in _BUILT:
            return _BUILT[key]
    out_dir = Path(out_dir)
    src, inc, lib = (out_dir / f"k_{key}.txt", out_dir / f"k_{key}_launch.h",
                     out_dir / f"k_{key}.so")
    src.write_text(text)
    inc.write_text(macro)
    if launch.backend == "metal":
        driver, includes = REPO / "tests" / "metal_shim" / "portable_driver.cpp", [
            REPO / "tests" / "metal_shim" / "include"]
    else:
        driver, includes = REPO / "tests" / "cuda_shim" / "driver.cpp", [
            REPO / "tests" / "cuda_shim" / "include"]
    cmd = [
        cxx, "-std=c++20", "-O2", "-shared", "-fPIC",
        # No fast math, as on the GPUs. flags: by default contraction on
        # (with FMA instructions), as NVRTC's default (--fmad=true) and
        # possibly Metal's: the kernel's math is written not to care
        # (fused_init_math.h), and these shims check it too.
        "-fno-fast-math", *flags,
        "-Wno-unknown-pragmas", "-fno-strict-aliasing",
        "-Wno-attributes" if "clang" not in Path(cxx).name else "-Wno-unknown-attributes",
        *[f"-I{p}" for p in includes],
        f'-DMFI_SHIM_KERNEL_SOURCE="{src}"', f'-DMFI_SHIM_LAUNCH="{inc}"',
        str(driver), "-o", str(lib),
    ]
    compile_or_fail(cmd)
    dll = ctypes.CDLL(str(lib))
    dll.mfi_shim_launch.restype = ctypes.c_int
    dll.mfi_shim_launch.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64,
                                    ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p,
                                    ctypes.c_int]
    with _LOCK:
        _BUILT[key] = dll
    return dll


def run(dll, launch):
    """Every thread of the launch; returns the output's bits (NumPy uint32
    or uint16, the output's shape)."""
    (shape,) = launch.call["output_shapes"]
    (dtype,) = launch.output_dtypes()
    out = np.zeros(int(np.prod(shape, dtype=np.int64)), dtype=NP_BITS[dtype])
    ptrs = (ctypes.c_void_p * len(launch.inputs))(*[x.ctypes.data for x in launch.inputs])
    grid = np.array(launch.call["grid"], dtype=np.int32)
    group = np.array(launch.call["threadgroup"], dtype=np.int32)
    err = ctypes.create_string_buffer(256)
    rc = dll.mfi_shim_launch(ptrs, out.ctypes.data, out.nbytes, grid.ctypes.data,
                             group.ctypes.data, err, len(err))
    assert rc == 0, err.value.decode()
    return out.reshape(tuple(shape))
