"""Fused Philox4x32-10 + Box-Muller weight initializers for MLX.

Drop-in replacements for ``mlx.nn.init`` whose C++/Metal primitive draws,
transforms and scales in one pass. The exact stream: docs/spec.md, section 3.
"""

try:
    import mlx.core as _mx  # noqa: F401
except ImportError as _e:  # pragma: no cover - depends on the install
    if "libmlx" in str(_e):
        from importlib.metadata import PackageNotFoundError, version

        try:
            _v = version("mlx")
        except PackageNotFoundError:
            _v = "<your mlx version>"
        raise ImportError(
            "mlx-fused-init could not import mlx.core because libmlx.so is "
            "missing. On Linux MLX needs its CPU back-end at the same version "
            f"as mlx itself: pip install 'mlx[cpu]=={_v}'"
        ) from _e
    raise

# Native extension or portable mode: decided here, once (_backend.py).
from ._backend import backend_info, ext as _ops  # noqa: E402

available_cpu_kernels = _ops.available_cpu_kernels
cpu_kernel = _ops.cpu_kernel
num_threads = _ops.num_threads
philox4x32_10 = _ops.philox4x32_10
set_cpu_kernel = _ops.set_cpu_kernel
set_num_threads = _ops.set_num_threads
built_with_metal = _ops.built_with_metal

from ._keys import next_key  # noqa: E402
from .initializers import (  # noqa: E402
    glorot_normal,
    glorot_uniform,
    he_normal,
    he_uniform,
    normal,
    uniform,
)
from .constant import constant, ones, zeros  # noqa: E402
from .model import (  # noqa: E402
    init_model,
    param_subsequence,
    perturb_model,
    stacked_expert_layers,
)
from .sharding import init_sharded, shard, shard_ranges  # noqa: E402
from .truncated import truncated_normal, variance_scaling  # noqa: E402
from .perturb import perturb  # noqa: E402
from . import recipes  # noqa: E402
from . import zo  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "available_cpu_kernels",
    "backend_info",
    "built_with_metal",
    "constant",
    "cpu_kernel",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "init_model",
    "init_sharded",
    "next_key",
    "normal",
    "num_threads",
    "ones",
    "param_subsequence",
    "perturb",
    "perturb_model",
    "recipes",
    "philox4x32_10",
    "set_cpu_kernel",
    "set_num_threads",
    "shard",
    "shard_ranges",
    "stacked_expert_layers",
    "truncated_normal",
    "uniform",
    "variance_scaling",
    "zeros",
    "zo",
]
