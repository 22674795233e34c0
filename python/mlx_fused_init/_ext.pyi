"""C++ core of mlx-fused-init: the FusedInit and Philox4x32 primitives."""

from collections.abc import Sequence

import mlx.core


def fused_init(key: mlx.core.array, shape: Sequence[int], dtype: mlx.core.Dtype, *, kind: int, scale: float = 1.0, shift: float = 0.0, low: float | None = None, high: float | None = None, subsequence: int = 0, full_shape: Sequence[int] | None = None, start: Sequence[int] | None = None, name: str = 'fused_init', stream: mlx.core.Device | mlx.core.Stream | None = None) -> mlx.core.array:
    """
    Low-level fused initializer node (use the initializers instead).

    Builds a lazy array holding elements of the stream of docs/spec.md section 3:
    kind 0 is normal (scale * z, or fma(scale, z, shift) when shift != 0; scale
    and shift rounded to float32),
    kind 1 uniform on [low, high) (low and high rounded to dtype, as MLX does),
    kind 3 normal with mean shift and std scale truncated to [low, high].
    """

def fused_perturb(key: mlx.core.array, w: mlx.core.array, *, scale: float, weight_scale: float = 1.0, subsequence: int = 0, full_shape: Sequence[int] | None = None, start: Sequence[int] | None = None, name: str = 'perturb', stream: mlx.core.Device | mlx.core.Stream | None = None) -> mlx.core.array:
    """
    Low-level fused perturbation node (use mlx_fused_init.perturb instead).

    fma(scale, z, w * weight_scale) per element in float32, rounded to w's
    dtype, z the normal(0, 1) stream of docs/spec.md section 3 for the key,
    subsequence and window; written over w's buffer when MLX may donate it.
    """

def philox4x32_10(counters: mlx.core.array, key: mlx.core.array, *, stream: mlx.core.Device | mlx.core.Stream | None = None) -> mlx.core.array:
    """
    Raw Philox4x32-10 blocks, exactly as Random123 computes them.

    Args:
        counters (array): uint32 array of shape ``(n, 4)``.
        key (array): uint32 array of shape ``(2,)``.
        stream (Stream or Device, optional): where to compute.

    Returns:
        array: uint32 array of shape ``(n, 4)``.
    """

def uniform_bounds(low: float, high: float, dtype: mlx.core.Dtype) -> tuple[float, float, float]:
    """
    (shift, scale, upper) of a uniform draw on [low, high): values are min(fma(scale, v, shift), upper), v = (x >> 8) * 2^-24, in float32, then down to the dtype's grid.
    """

def truncation_constants(mean: float, std: float, a: float, b: float, dtype: mlx.core.Dtype, name: str = 'truncation_constants') -> tuple[float, float, float, float, float, float, float, float, float, int]:
    """
    (scale, shift, lower, upper, p_lo, c_hi, width, c4, c5, mapping) of a truncated normal draw (docs/spec.md section 3): the float32 values the kernels use, and the mapping word (0: inverse CDF, 0xFFFFFFFF: narrow, 1 or 2: tail, upper or lower).
    """

def set_cpu_kernel(name: str) -> None:
    """Select the CPU kernel build: 'auto', 'scalar', 'avx2', 'avx512' or 'neon'."""

def cpu_kernel() -> str:
    """The CPU kernel build in use."""

def available_cpu_kernels() -> str:
    """The CPU kernel builds this machine can run, fastest first."""

def set_num_threads(n: int) -> None:
    """Threads per CPU evaluation; 0 means the default (all cores; the performance cores on Apple silicon; MLX_FUSED_INIT_NUM_THREADS when set)."""

def num_threads() -> int:
    """Threads per CPU evaluation."""

def built_with_metal() -> bool:
    """Whether this build carries the Metal kernels."""

def metal_kernel_source() -> str:
    """
    The self-contained Metal kernel source (metal/fused_init.metal with its headers inlined), generated at build time on every platform: what the GPU path compiles at run time when it has no metallib.
    """

def metal_kernel_origin() -> tuple[str, str]:
    """
    (kind, detail): where the GPU kernels come from in this process: 'metallib' (detail: its path), 'jit' (compiled at first use from metal_kernel_source(); detail: why) or 'none' (no Metal back-end).
    """

mlx_version_built_against: str
