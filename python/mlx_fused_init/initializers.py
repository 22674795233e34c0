"""Drop-in replacements for ``mlx.nn.init`` built on the fused primitive."""

import math
from typing import Callable, Optional, Union

import mlx.core as mx

from . import _checks, _ext
from ._keys import resolve_key

StreamLike = Union[None, mx.Stream, mx.Device]

_NORMAL = 0  # transform kinds of the primitive (metal/fused_init_math.h)
_UNIFORM = 1


def _normal_node(shape, dtype, std, key, stream, name):
    """One fused node drawing ``std * z`` for the whole of ``shape``."""
    _checks.check_stream(stream, name)
    key = resolve_key(key, name)
    return _ext.fused_init(
        key, list(shape), dtype, kind=_NORMAL, scale=std, name=name, stream=stream
    )


def glorot_normal(
    dtype: mx.Dtype = mx.float32,
) -> Callable[..., mx.array]:
    r"""A Glorot (Xavier) normal initializer, fused.

    Same call shape as :func:`mlx.nn.init.glorot_normal`: samples from a normal
    distribution with standard deviation

    .. math:: \sigma = \gamma \sqrt{\frac{2}{\text{fan\_in} + \text{fan\_out}}}

    with ``fan_in = shape[-1] * rf``, ``fan_out = shape[0] * rf`` and
    ``rf = prod(shape[1:-1])``.

    Args:
        dtype (Dtype, optional): ``float32`` (default), ``float16`` or
          ``bfloat16``.

    Returns:
        Callable ``init(a, gain=1.0, *, key=None, stream=None)``: an array
        with ``a``'s shape (``a``'s values are never read). ``key`` is a
        ``uint32`` array of shape ``(2,)``; without one, a key is drawn from
        MLX's global PRNG state as a stock ``mx.random`` call would.

    Example:
        >>> init_fn = mlx_fused_init.glorot_normal()
        >>> w = init_fn(mx.zeros((256, 512)), key=mx.random.key(0))
    """
    _checks.check_dtype(dtype, "glorot_normal")

    def initializer(
        a: mx.array,
        gain: float = 1.0,
        *,
        key: Optional[mx.array] = None,
        stream: StreamLike = None,
    ) -> mx.array:
        name = "glorot_normal"
        shape = _checks.shape_of(a, name)
        fan_in, fan_out = _checks.fans(shape, name)
        gain = _checks.real(gain, "gain", name)
        # Zero fans only come with zero elements: nothing to scale.
        std = gain * math.sqrt(2.0 / (fan_in + fan_out)) if fan_in + fan_out else 0.0
        return _normal_node(shape, dtype, std, key, stream, name)

    return initializer
