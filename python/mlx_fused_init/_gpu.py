"""The portable GPU path: the fused kernel handed to MLX as text.

No C++ against MLX's ABI: the per-thread work (metal/fused_init_kernel.h,
its includes inlined by the build into ``fused_init_kernel.h`` next to this
file) goes to MLX's runtime-kernel APIs, ``mx.fast.metal_kernel`` on Apple
GPUs and ``mx.fast.cuda_kernel`` on NVIDIA GPUs, which compile it once and
cache it. The result is lazy, one node in MLX's graph like any other op.

Validation and the argument words come from the MLX-free module
``_kernels`` (``_kernels.check(..., gpu=True)``), so this module never
decides anything about a draw: it only launches. tests/portable_shim.py
compiles the exact texts given to MLX (kernel_text) through CPU shims,
wrapped the way MLX wraps them (tests/mlx_kernel_text.py), and compares
bits with the CPU path.
"""

import functools
from pathlib import Path

import mlx.core as mx

# Input and output names: MLX declares the kernel's parameters under these.
INPUT_NAMES = ("key", "args")
OUTPUT_NAMES = ("out",)
PHILOX_INPUT_NAMES = ("key", "counters", "rows")
# Threads per threadgroup (Metal) or block (CUDA). Modest on purpose: a
# register-heavy kernel's own limit can be below 1024 (MLX-NOTES).
THREADGROUP = (256, 1, 1)
# MLX's grid is an int per axis and one thread draws four elements, so up
# to 2^32 - 1 threads (2^34 - 4 elements, the limit _kernels.check(gpu=True)
# enforces) need a second axis: at most GRID_X_MAX threads per row.
GRID_X_MAX = 1 << 20
MAX_ELEMENTS = (1 << 34) - 4

_DTYPE_NAMES = {mx.float32: "float32", mx.float16: "float16", mx.bfloat16: "bfloat16"}

# The kernel bodies. MLX scans a body for names (thread_position_in_grid,
# threads_per_grid: Metal then adds them as attributes to the signature;
# <input>_shape, _strides, _ndim: extra parameters), so the bodies carry no
# comments that could name one by accident; the comments are here.
#   * gid, the thread's index in the whole launch, in 64 bits: Metal's
#     grid is exactly MLX's (gx, gy, 1), so a row is threads_per_grid.x
#     long; CUDA's is rounded up to whole blocks (CustomKernel::eval_gpu:
#     blocks = ceil(g / t)), so a row is gridDim.x * blockDim.x threads.
#     fill_group returns for gid beyond the draw.
#   * args: the MetalParams words, then the outer extents (int64) and
#     strides (uint64) at fixed 8-byte aligned offsets (fused_init_params.h).
#   * key: row contiguous (ensure_row_contiguous=True copies any view), so
#     its two words are key[0] and key[1].
#   * V: the transform variant, a template argument (a compile-time
#     constant in both back-ends' generated code).
_METAL_SOURCE = """\
  const uint64_t gid = uint64_t(thread_position_in_grid.y) * uint64_t(threads_per_grid.x) +
      uint64_t(thread_position_in_grid.x);
  mfi::fill_group<V>(out, reinterpret_cast<const device mfi::MetalParams*>(args),
                     reinterpret_cast<const device int64_t*>(args + mfi::kArgsExtent),
                     reinterpret_cast<const device uint64_t*>(args + mfi::kArgsStride),
                     key[0], key[1], gid);
"""

_CUDA_SOURCE = """\
  const uint64_t gid = (uint64_t(blockIdx.y) * blockDim.y + threadIdx.y) *
      (uint64_t(gridDim.x) * blockDim.x) + (uint64_t(blockIdx.x) * blockDim.x + threadIdx.x);
  mfi::fill_group<V>(out, reinterpret_cast<const mfi::MetalParams*>(args),
                     reinterpret_cast<const int64_t*>(args + mfi::kArgsExtent),
                     reinterpret_cast<const uint64_t*>(args + mfi::kArgsStride),
                     key[0], key[1], gid);
"""

# The perturbation (variant 4): the same body with the input w, which
# fill_group reads as the weight (row contiguous, the output's type).
PERTURB_INPUT_NAMES = ("key", "args", "w")
_METAL_PERTURB_SOURCE = _METAL_SOURCE.replace("mfi::fill_group<V>(out, ", "mfi::fill_group<V>(out, w, ")
_CUDA_PERTURB_SOURCE = _CUDA_SOURCE.replace("mfi::fill_group<V>(out, ", "mfi::fill_group<V>(out, w, ")
PERTURB_VARIANT = 4

# Raw Philox4x32-10 blocks, one thread per counter row (the self-check's
# known answers): rows is a one-element input, so the body needs no shape.
_METAL_PHILOX_SOURCE = """\
  const uint64_t row = uint64_t(thread_position_in_grid.y) * uint64_t(threads_per_grid.x) +
      uint64_t(thread_position_in_grid.x);
  if (row < uint64_t(rows[0])) {
    mfi::Block b;
    b.x0 = counters[4 * row];
    b.x1 = counters[4 * row + 1];
    b.x2 = counters[4 * row + 2];
    b.x3 = counters[4 * row + 3];
    b = mfi::philox4x32_10(b, key[0], key[1]);
    out[4 * row] = b.x0;
    out[4 * row + 1] = b.x1;
    out[4 * row + 2] = b.x2;
    out[4 * row + 3] = b.x3;
  }
"""

_CUDA_PHILOX_SOURCE = _METAL_PHILOX_SOURCE.replace(
    """uint64_t(thread_position_in_grid.y) * uint64_t(threads_per_grid.x) +
      uint64_t(thread_position_in_grid.x)""",
    """(uint64_t(blockIdx.y) * blockDim.y + threadIdx.y) *
      (uint64_t(gridDim.x) * blockDim.x) + (uint64_t(blockIdx.x) * blockDim.x + threadIdx.x)""")

_SOURCES = {"metal": _METAL_SOURCE, "cuda": _CUDA_SOURCE}
_PERTURB_SOURCES = {"metal": _METAL_PERTURB_SOURCE, "cuda": _CUDA_PERTURB_SOURCE}
_PHILOX_SOURCES = {"metal": _METAL_PHILOX_SOURCE, "cuda": _CUDA_PHILOX_SOURCE}


def gpu_backend():
    """"metal", "cuda", or None: the GPU back-end of the running MLX."""
    metal = getattr(mx, "metal", None)
    if metal is not None and metal.is_available():
        return "metal"
    cuda = getattr(mx, "cuda", None)  # MLX releases without it: no CUDA
    if cuda is not None and cuda.is_available():
        return "cuda"
    return None


@functools.lru_cache(maxsize=None)
def kernel_header() -> str:
    """metal/fused_init_kernel.h with its includes inlined (installed by the
    build next to this file): the `header` of every portable kernel."""
    return (Path(__file__).parent / "fused_init_kernel.h").read_text()


def _check_backend(backend):
    if backend not in _SOURCES:
        raise ValueError(f"backend must be 'metal' or 'cuda', not {backend!r}")


def kernel_name(dtype, variant=0) -> str:
    """The name given to MLX: one kernel object per output dtype (and one
    for the perturbation, which has an input more). MLX 0.31 caches a
    compiled kernel by its name and template values alone (not the dtypes),
    so a name shared by dtypes would run one dtype's code for another."""
    kind = "perturb" if variant == PERTURB_VARIANT else "fused_init"
    return f"mfi_{kind}_{_DTYPE_NAMES[dtype]}"


def input_names(variant):
    return PERTURB_INPUT_NAMES if variant == PERTURB_VARIANT else INPUT_NAMES


def kernel_text(backend, variant, dtype):
    """(header, source) exactly as handed to MLX's runtime-kernel API for
    `backend` ("metal" or "cuda"). The same two strings serve the draws of
    every variant and dtype: MLX specializes them through the template
    argument V and the output's dtype in the signature it writes around the
    source; the perturbation (variant 4) has its own source, which reads w."""
    _check_backend(backend)
    if variant not in (0, 1, 2, 3, PERTURB_VARIANT) or dtype not in _DTYPE_NAMES:
        raise ValueError(f"no portable kernel for variant {variant!r}, dtype {dtype}")
    sources = _PERTURB_SOURCES if variant == PERTURB_VARIANT else _SOURCES
    return kernel_header(), sources[backend]


def philox_kernel_text(backend):
    """(header, source) of the raw Philox4x32-10 kernel."""
    _check_backend(backend)
    return kernel_header(), _PHILOX_SOURCES[backend]


def launch_dims(threads):
    """(grid, threadgroup) for `threads` threads: one row of up to
    GRID_X_MAX threads, or as many equal rows as needed (a few idle threads
    at the end, which return at once)."""
    if not 1 <= threads <= (MAX_ELEMENTS + 3) // 4:
        raise ValueError(f"cannot launch {threads} threads in one dispatch")
    rows = -(-threads // GRID_X_MAX)
    return (-(-threads // rows), rows, 1), THREADGROUP


@functools.lru_cache(maxsize=None)
def _kernel(backend, dtype, perturb=False):
    # Built once per process and cached: a new kernel object may mean a new
    # compile (MLX-NOTES). Looked up on mx.fast at first use, not import.
    variant = PERTURB_VARIANT if perturb else 0
    header, source = kernel_text(backend, variant, dtype)
    make = mx.fast.metal_kernel if backend == "metal" else mx.fast.cuda_kernel
    return make(name=kernel_name(dtype, variant), input_names=list(input_names(variant)),
                output_names=list(OUTPUT_NAMES), source=source, header=header,
                ensure_row_contiguous=True)


@functools.lru_cache(maxsize=None)
def _philox_kernel(backend):
    header, source = philox_kernel_text(backend)
    make = mx.fast.metal_kernel if backend == "metal" else mx.fast.cuda_kernel
    return make(name="mfi_philox4x32_10", input_names=list(PHILOX_INPUT_NAMES),
                output_names=list(OUTPUT_NAMES), source=source, header=header,
                ensure_row_contiguous=True)


def _require_backend():
    backend = gpu_backend()
    if backend is None:
        raise RuntimeError("[mlx_fused_init] the running MLX has no GPU back-end "
                           "(Metal or CUDA) for the portable GPU kernels.")
    return backend


def fused_init(key, args, n, variant, shape, dtype, stream=None):
    """The draw described by `_kernels.check(shape, code, ..., gpu=True)`,
    whose result is (args, n, variant), with key `key` (uint32, shape (2,),
    any strides), as an array of `shape` and `dtype`, lazily, on `stream`
    (a GPU stream or device; None: MLX's default)."""
    if dtype not in _DTYPE_NAMES:
        raise ValueError(f"[mlx_fused_init] no portable GPU kernel for dtype {dtype}")
    if key.dtype != mx.uint32 or key.shape != (2,):
        raise ValueError("[mlx_fused_init] the key must be a uint32 array of shape (2,)")
    if n == 0:  # nothing to launch (a grid of zero threads is no dispatch)
        return mx.zeros(list(shape), dtype=dtype, stream=stream)
    grid, threadgroup = launch_dims((n + 3) // 4)
    return _kernel(_require_backend(), dtype)(
        inputs=[key, mx.array(args, dtype=mx.uint32)],
        output_shapes=[tuple(shape)], output_dtypes=[dtype],
        grid=grid, threadgroup=threadgroup, template=[("V", int(variant))],
        stream=stream)[0]


def fused_perturb(key, w, args, n, stream=None):
    """The perturbation of `w` described by `_kernels.check(w.shape, code,
    kind=4, ..., gpu=True)`, whose result is (args, n, 4), lazily, on
    `stream`. A new array: MLX's runtime kernels do not donate inputs."""
    if w.dtype not in _DTYPE_NAMES:
        raise ValueError(f"[mlx_fused_init] no portable GPU kernel for dtype {w.dtype}")
    if key.dtype != mx.uint32 or key.shape != (2,):
        raise ValueError("[mlx_fused_init] the key must be a uint32 array of shape (2,)")
    if n == 0:
        return mx.zeros(w.shape, dtype=w.dtype, stream=stream)
    grid, threadgroup = launch_dims((n + 3) // 4)
    return _kernel(_require_backend(), w.dtype, True)(
        # 1-D: MLX passes a 0-d input by reference, which the body does not
        # index; any other shape is the same row-major run.
        inputs=[key, mx.array(args, dtype=mx.uint32), w.reshape(-1)],
        output_shapes=[tuple(w.shape)], output_dtypes=[w.dtype],
        grid=grid, threadgroup=threadgroup, template=[("V", PERTURB_VARIANT)],
        stream=stream)[0]


def philox4x32_10(counters, key, stream=None):
    """Raw Philox4x32-10 blocks of the rows of `counters` (uint32, (n, 4))
    with key `key` (uint32, (2,)), lazily on the GPU."""
    if counters.dtype != mx.uint32 or counters.ndim != 2 or counters.shape[1] != 4:
        raise ValueError("[philox4x32_10] counters must be a uint32 array of shape (n, 4)")
    if key.dtype != mx.uint32 or key.shape != (2,):
        raise ValueError("[philox4x32_10] the key must be a uint32 array of shape (2,)")
    rows = counters.shape[0]
    if rows == 0:
        return mx.zeros((0, 4), dtype=mx.uint32, stream=stream)
    grid, threadgroup = launch_dims(rows)
    return _philox_kernel(_require_backend())(
        inputs=[key, counters, mx.array([rows], dtype=mx.uint32)],
        output_shapes=[(rows, 4)], output_dtypes=[mx.uint32],
        grid=grid, threadgroup=threadgroup, stream=stream)[0]
