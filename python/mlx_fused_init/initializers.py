"""Drop-in replacements for ``mlx.nn.init`` built on the fused primitive."""

import math
from typing import Callable, Optional, Sequence, Union

import mlx.core as mx

from . import _checks, _ext
from ._keys import resolve_key

StreamLike = Union[None, mx.Stream, mx.Device]

_NORMAL = 0  # transform kinds of the primitive (metal/fused_init_math.h)
_UNIFORM = 1


def _geometry(a, full_shape, start, name) -> tuple:
    """``(shape, full_shape, start)``: the window ``a.shape`` of the virtual
    tensor ``full_shape`` (the whole of ``a.shape`` when not given)."""
    shape = _checks.shape_of(a, name)
    full_shape, start = _checks.window(shape, full_shape, start, name)
    return shape, full_shape, start


def _node(geometry, name, kind, scale, shift, dtype, key, stream, subsequence):
    """One fused node drawing the window ``geometry`` (from _geometry)."""
    _checks.check_stream(stream, name)
    q = _checks.subsequence(subsequence, name)
    key = resolve_key(key, name)
    shape, full_shape, start = geometry
    return _ext.fused_init(
        key, list(shape), dtype, kind=kind, scale=scale, shift=shift, subsequence=q,
        full_shape=list(full_shape), start=list(start), name=name, stream=stream,
    )


def _mark(initializer, name):
    """Tag our initializers (init_model and shard accept only these)."""
    initializer.__mlx_fused_init__ = name
    initializer.__name__ = initializer.__qualname__ = name
    return initializer


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
        Callable ``init(a, gain=1.0, *, key=None, stream=None,
        full_shape=None, start=None, subsequence=0)``: an array with ``a``'s
        shape (``a``'s values are never read). ``key`` is a ``uint32`` array
        of shape ``(2,)``; without one, a key is drawn from MLX's global PRNG
        state as a stock ``mx.random`` call would. With ``full_shape`` (and
        ``start``, default zeros) the result is the window
        ``full[start[0]:start[0]+a.shape[0], ...]`` of the tensor of shape
        ``full_shape`` that the same key would give, and the fans come from
        ``full_shape``. ``subsequence`` selects one of 2^64 independent
        streams of the key (SPEC 3's ``q``).

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
        full_shape: Optional[Sequence[int]] = None,
        start: Optional[Sequence[int]] = None,
        subsequence: int = 0,
    ) -> mx.array:
        name = "glorot_normal"
        geometry = _geometry(a, full_shape, start, name)
        fan_in, fan_out = _checks.fans(geometry[1], name)
        gain = _checks.real(gain, "gain", name)
        # Zero fans only come with zero elements: nothing to scale.
        std = gain * math.sqrt(2.0 / (fan_in + fan_out)) if fan_in + fan_out else 0.0
        return _node(geometry, name, _NORMAL, std, 0.0, dtype, key, stream, subsequence)

    return _mark(initializer, "glorot_normal")
