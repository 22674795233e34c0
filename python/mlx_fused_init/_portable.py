"""Portable mode: the same draws as the native extension, without linking
MLX's C++ ABI, so that they work under any MLX release the project supports
(docs/portable.md).

* CPU: the MLX-free module ``_kernels`` (the native op's own CPU kernels,
  validation and thread pool) writes each draw straight into the buffer of
  a fresh, evaluated ``mx.array``. Eager: the array is computed when the
  call returns, and no temporary exists besides the output.
* GPU: the shared kernel text through MLX's runtime-kernel APIs,
  ``mx.fast.metal_kernel`` (Apple) or ``mx.fast.cuda_kernel`` (NVIDIA):
  lazy, one node in MLX's graph like the native op (``_gpu.py``).

The functions here have the signatures of the native module ``_ext`` that
the Python layer calls; ``_backend.py`` decides which one runs.
"""

import contextlib
import contextvars
import os

import mlx.core as mx

from . import _gpu, _kernels
from ._build_info import MLX_VERSION as mlx_version_built_against  # noqa: F401

_CODES = {mx.float32: 0, mx.float16: 1, mx.bfloat16: 2}


def _dtype_name(dtype) -> str:
    return str(dtype).replace("mlx.core.", "")


def _shape_str(shape) -> str:
    return "(" + ",".join(str(d) for d in shape) + ")"


def _code(dtype, name: str) -> int:
    code = _CODES.get(dtype) if isinstance(dtype, mx.Dtype) else None
    if code is None:
        raise ValueError(
            f"[{name}] dtype must be float32, float16 or bfloat16, but got {_dtype_name(dtype)}.")
    return code


def _check_key(key, name: str) -> None:
    if key.dtype != mx.uint32 or tuple(key.shape) != (2,):
        raise ValueError(
            f"[{name}] key must be a uint32 array of shape (2,) as made by "
            f"mx.random.key(seed), but got dtype {_dtype_name(key.dtype)} and shape "
            f"{_shape_str(key.shape)}.")


def _on_gpu(stream) -> bool:
    if stream is None:
        device = mx.default_device()
    elif isinstance(stream, mx.Stream):
        device = stream.device
    elif isinstance(stream, mx.Device):
        device = stream
    else:  # mx.DeviceType
        return stream == mx.gpu
    return device.type == mx.gpu


_VALIDATE_ONLY = contextvars.ContextVar("mlx_fused_init_validate_only", default=False)


@contextlib.contextmanager
def validate_only():
    """Within this block, CPU draws are validated but not computed: each
    returns a lazy placeholder of its shape. init_model uses it to check a
    whole model's draws before it replaces the first parameter."""
    token = _VALIDATE_ONLY.set(True)
    try:
        yield
    finally:
        _VALIDATE_ONLY.reset(token)


def _no_gpu(name: str):
    return RuntimeError(
        f"[{name}] MLX has no GPU back-end here (neither Metal nor CUDA), so there is no GPU "
        "kernel to run. Pass stream=mx.cpu, or call mx.set_default_device(mx.cpu).")


def _memory_bytes():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not on this platform
        return None


def _check_fits(shape, n: int, dtype, name: str) -> None:
    """An eager draw allocates at once, and MLX's allocator returns null for
    an impossible size (its own ops then crash writing to it): refuse what
    cannot fit in this machine's memory, instead."""
    nbytes = n * dtype.size
    memory = _memory_bytes()
    if memory is not None and nbytes > memory:
        raise ValueError(
            f"[{name}] the output of shape {_shape_str(shape)} needs {nbytes} bytes, more than "
            f"this machine's memory ({memory} bytes); in portable mode a CPU draw is computed "
            "when the call returns. Draw it in windows (full_shape=, start=).")


def _key_words(key, name: str) -> tuple:
    # The key may be a lazy view (key[::-1], a split): its values, evaluated.
    try:
        k0, k1 = key.tolist()
    except ValueError as e:  # MLX refuses to evaluate inside a transformation
        if "function transformations" not in str(e):
            raise
        raise ValueError(
            f"[{name}] portable mode computes CPU draws when they are called, so it cannot "
            "draw from a key that mx.compile or mx.vmap is tracing (such as MLX's global "
            "random state under mx.compile(..., inputs=mx.random.state)). Pass a concrete "
            "key= (made outside the transformation), draw outside it, or use the native "
            "extension (mlx_fused_init.backend_info()['native_command']).") from None
    return k0, k1


def fused_init(key, shape, dtype, *, kind, scale=1.0, shift=0.0, low=None, high=None,
               subsequence=0, full_shape=None, start=None, name="fused_init", stream=None):
    """The portable ``_ext.fused_init``: same arguments, same bits, same
    errors (the validation is the native op's own C++ code)."""
    code = _code(dtype, name)
    _check_key(key, name)
    shape = [int(d) for d in shape]
    draw = dict(kind=kind, scale=scale, shift=shift, low=low, high=high,
                subsequence=subsequence, full_shape=full_shape, start=start, name=name)
    if _on_gpu(stream):
        if _gpu.gpu_backend() is None:
            raise _no_gpu(name)
        args, n, variant = _kernels.check(shape, code, gpu=True, **draw)
        return _gpu.fused_init(key, args, n, variant, shape, dtype, stream)
    _, n, _ = _kernels.check(shape, code, **draw)  # refuse before allocating
    if n == 0 or _VALIDATE_ONLY.get():
        return mx.zeros(shape, dtype=dtype, stream=mx.cpu)
    _check_fits(shape, n, dtype, name)
    k0, k1 = _key_words(key, name)
    out = mx.zeros(shape, dtype=dtype, stream=mx.cpu)
    mx.eval(out)
    # The fresh array's own buffer, written in place (MLX's buffer protocol
    # is writable); nothing else refers to it yet.
    _kernels.fill(out, k0, k1, shape, code, **draw)
    return out


_PERTURB = 4  # the perturbation's transform kind (fused_init_math.h)


def _row_contiguous(w):
    """w, or a row-major copy of it: the kernels read one run."""
    if hasattr(mx, "contiguous"):
        return mx.contiguous(w)
    return mx.reshape(mx.flatten(w), w.shape)  # MLX releases before mx.contiguous


def fused_perturb(key, w, *, scale, weight_scale=1.0, subsequence=0, full_shape=None,
                  start=None, name="perturb", stream=None):
    """The portable ``_ext.fused_perturb``: the same bits, in a new array
    (portable mode cannot write over MLX's buffers: no donation)."""
    code = _code(w.dtype, name)
    _check_key(key, name)
    shape = [int(d) for d in w.shape]
    draw = dict(kind=_PERTURB, scale=scale, shift=weight_scale, subsequence=subsequence,
                full_shape=full_shape, start=start, name=name)
    if _on_gpu(stream):
        if _gpu.gpu_backend() is None:
            raise _no_gpu(name)
        args, n, _ = _kernels.check(shape, code, gpu=True, **draw)
        return _gpu.fused_perturb(key, w, args, n, stream)
    _, n, _ = _kernels.check(shape, code, **draw)
    if n == 0:
        return mx.zeros(shape, dtype=w.dtype, stream=mx.cpu)
    _check_fits(shape, n, w.dtype, name)
    k0, k1 = _key_words(key, name)

    def eager(w):
        src = _row_contiguous(w)
        out = mx.zeros(shape, dtype=w.dtype, stream=mx.cpu)
        mx.eval(src, out)
        _kernels.fill(out, k0, k1, shape, code, w=src, **draw)
        return out

    # The eager result has no graph to differentiate through: give it the
    # native op's derivatives (weight_scale in w), as mx.grad expects.
    f = mx.custom_function(eager)

    @f.vjp
    def _vjp(primals, cotangent, output):
        return (cotangent if weight_scale == 1.0
                else cotangent * mx.array(weight_scale, cotangent.dtype),)

    @f.jvp
    def _jvp(primals, tangents):
        # One input: MLX passes its tangent itself, not in a tuple.
        t = (tangents[0] if isinstance(tangents, (list, tuple)) else tangents).astype(w.dtype)
        return (t if weight_scale == 1.0 else t * mx.array(weight_scale, w.dtype),)

    return f(w)


def philox4x32_10(counters, key, *, stream=None):
    """The portable ``_ext.philox4x32_10``: raw Philox4x32-10 blocks."""
    name = "philox4x32_10"
    _check_key(key, name)
    if counters.dtype != mx.uint32 or counters.ndim != 2 or counters.shape[1] != 4:
        raise ValueError(
            f"[{name}] counters must be a uint32 array of shape (n, 4), but got dtype "
            f"{_dtype_name(counters.dtype)} and shape {_shape_str(counters.shape)}.")
    if _on_gpu(stream):
        if _gpu.gpu_backend() is None:
            raise _no_gpu(name)
        return _gpu.philox4x32_10(counters, key, stream)
    rows = counters.shape[0]
    k0, k1 = _key_words(key, name)
    flat = mx.array(counters.tolist(), dtype=mx.uint32) if rows else None
    out = mx.zeros((rows, 4), dtype=mx.uint32, stream=mx.cpu)
    mx.eval(out)
    if rows:
        _kernels.philox(out, flat, k0, k1, rows)
    return out


def uniform_bounds(low, high, dtype):
    return _kernels.uniform_bounds(low, high, _code(dtype, "uniform_bounds"))


def truncation_constants(mean, std, a, b, dtype, name="truncation_constants"):
    return _kernels.truncation_constants(mean, std, a, b, _code(dtype, name), name)


def built_with_metal() -> bool:
    """Whether a Metal GPU kernel can run: MLX's Metal back-end is there."""
    return _gpu.gpu_backend() == "metal"


def gpu_kernels() -> str:
    """'metal', 'cuda' or '' (no GPU back-end in this MLX)."""
    return _gpu.gpu_backend() or ""


def metal_kernel_origin() -> tuple:
    backend = _gpu.gpu_backend()
    if backend == "metal":
        return ("portable", "mx.fast.metal_kernel, compiled by MLX at first use")
    if backend == "cuda":
        return ("portable", "mx.fast.cuda_kernel, compiled by NVRTC at first use")
    return ("none", "this MLX has no GPU back-end")


metal_kernel_source = _kernels.metal_kernel_source
set_cpu_kernel = _kernels.set_cpu_kernel
cpu_kernel = _kernels.cpu_kernel
available_cpu_kernels = _kernels.available_cpu_kernels
set_num_threads = _kernels.set_num_threads
num_threads = _kernels.num_threads


def __getattr__(name):
    # The CPU test hooks (_x86_usable, _cpu_pool_run, _cpu_split_*, ...):
    # bound into both modules by csrc/cpu_bindings.h.
    if name.startswith("_") and not name.startswith("__"):
        return getattr(_kernels, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
