"""Regenerable noise: ``w + scale * z`` with ``z`` this package's normal
stream, in one fused pass (docs/spec.md, "Perturbation")."""

from typing import Optional, Sequence

import mlx.core as mx

from . import _checks
from ._backend import ext as _ext
from ._keys import with_key
from .initializers import StreamLike

_FLOAT32_MAX = 3.4028234663852886e38

_NAME = "perturb"


def perturb(
    w: mx.array,
    scale: float,
    *,
    key: mx.array,
    subsequence: int = 0,
    full_shape: Optional[Sequence[int]] = None,
    start: Optional[Sequence[int]] = None,
    weight_scale: float = 1.0,
    stream: StreamLike = None,
) -> mx.array:
    r"""``w + scale * z``, where ``z`` is exactly ``normal(0.0, 1.0)`` of this
    package for ``key``, ``subsequence`` and the window (``full_shape``,
    ``start``) — so a shard's perturbation is the window of the unsharded
    one, and ``z`` can be regenerated at any time instead of stored.

    Per element, in float32: ``fma(scale, z, float32(w) * weight_scale)``
    (the product is exact when ``weight_scale`` is 1), then rounded to
    ``w``'s dtype (nearest even) as the initializers round. ``w`` is
    float32, float16 or bfloat16; the result has its shape and dtype.
    One pass: ``z`` never exists in memory.

    Example:
        >>> k = mx.random.key(0)
        >>> w2 = mlx_fused_init.perturb(w, 1e-3, key=k)       # w + 1e-3 z
        >>> w3 = mlx_fused_init.perturb(w2, -1e-3, key=k)     # back to w (up to rounding)
    """
    if not isinstance(w, mx.array):
        raise TypeError(f"[{_NAME}] w must be an mx.array, but got {type(w).__name__}.")
    if w.dtype not in _checks.SUPPORTED_DTYPES:
        raise ValueError(
            f"[{_NAME}] w must be float32, float16 or bfloat16, but got "
            f"{str(w.dtype).replace('mlx.core.', '')}.")
    scale = _checks.real(scale, "scale", _NAME)
    weight_scale = _checks.real(weight_scale, "weight_scale", _NAME)
    for arg, v in (("scale", scale), ("weight_scale", weight_scale)):
        if abs(v) > _FLOAT32_MAX:
            raise ValueError(f"[{_NAME}] {arg} must fit in float32, but got {v}.")
    _checks.check_stream(stream, _NAME)
    q = _checks.subsequence(subsequence, _NAME)
    shape = tuple(w.shape)
    full_shape, start = _checks.window(shape, full_shape, start, _NAME)
    if key is None:
        raise TypeError(f"[{_NAME}] key is required: the noise must be regenerable from it.")
    return with_key(key, _NAME, lambda k: _ext.fused_perturb(
        k, w, scale=scale, weight_scale=weight_scale, subsequence=q,
        full_shape=list(full_shape), start=list(start), name=_NAME, stream=stream))
