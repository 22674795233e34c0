"""Fused Philox4x32-10 + Box-Muller weight initializers for MLX.

Drop-in replacements for ``mlx.nn.init`` whose C++/Metal primitive draws,
transforms and scales in one pass. The exact stream: docs/spec.md, section 3.
"""

from ._build_info import MLX_VERSION as _BUILT_AGAINST

try:
    import mlx.core as _mx
except ImportError as _e:  # pragma: no cover - depends on the install
    if "libmlx" in str(_e):
        raise ImportError(
            "mlx-fused-init could not import mlx.core because libmlx.so is "
            "missing. On Linux MLX needs its CPU back-end: "
            f"pip install 'mlx[cpu]=={_BUILT_AGAINST}' (or install "
            "mlx-fused-init with the [cpu] extra)."
        ) from _e
    raise

if _mx.__version__ != _BUILT_AGAINST:
    raise ImportError(
        f"mlx-fused-init was built against MLX {_BUILT_AGAINST}, but MLX "
        f"{_mx.__version__} is installed. The extension links libmlx and "
        "shares nanobind's ABI with mlx.core, so the versions must match: "
        f"pip install 'mlx=={_BUILT_AGAINST}', or rebuild mlx-fused-init "
        "from source against the MLX you have."
    )

from ._ext import (  # noqa: E402
    available_cpu_kernels,
    built_with_metal,
    cpu_kernel,
    num_threads,
    philox4x32_10,
    set_cpu_kernel,
    set_num_threads,
)
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
from .model import init_model, param_subsequence, stacked_expert_layers  # noqa: E402
from .sharding import init_sharded, shard, shard_ranges  # noqa: E402
from .truncated import truncated_normal, variance_scaling  # noqa: E402
from . import recipes  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "available_cpu_kernels",
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
]
