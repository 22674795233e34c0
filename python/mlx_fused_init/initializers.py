"""Drop-in replacements for ``mlx.nn.init`` built on the fused primitive."""

import math
from typing import Callable, Optional, Sequence, Union

import mlx.core as mx

from . import _checks
from ._backend import ext as _ext
from ._keys import with_key

StreamLike = Union[None, mx.Stream, mx.Device]

_NORMAL = 0  # transform kinds of the primitive (metal/fused_init_math.h)
_UNIFORM = 1


def _geometry(a, full_shape, start, name) -> tuple:
    """``(shape, full_shape, start)``: the window ``a.shape`` of the virtual
    tensor ``full_shape`` (the whole of ``a.shape`` when not given)."""
    shape = _checks.shape_of(a, name)
    full_shape, start = _checks.window(shape, full_shape, start, name)
    return shape, full_shape, start


def _node(geometry, name, dtype, key, stream, subsequence, **transform):
    """One fused node drawing the window ``geometry`` (from _geometry).
    ``transform``: ``kind=_NORMAL, scale=sigma[, shift=mean]`` or
    ``kind=_UNIFORM, low=..., high=...``."""
    _checks.check_stream(stream, name)
    q = _checks.subsequence(subsequence, name)
    shape, full_shape, start = geometry
    return with_key(key, name, lambda k: _ext.fused_init(
        k, list(shape), dtype, subsequence=q, full_shape=list(full_shape),
        start=list(start), name=name, stream=stream, **transform,
    ))


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
        full_shape=None, start=None, subsequence=0, batch_dims=0)``: an array with ``a``'s
        shape (``a``'s values are never read). ``key`` is a ``uint32`` array
        of shape ``(2,)``; without one, a key is drawn from MLX's global PRNG
        state as a stock ``mx.random`` call would. With ``full_shape`` (and
        ``start``, default zeros) the result is the window
        ``full[start[0]:start[0]+a.shape[0], ...]`` of the tensor of shape
        ``full_shape`` that the same key would give, and the fans come from
        ``full_shape``. ``subsequence`` selects one of 2^64 independent
        streams of the key (docs/spec.md §3's ``q``). The leading ``batch_dims`` axes
        index independent matrices (stacked experts, shape ``(experts, out,
        in)`` with ``batch_dims=1``): the fans come from the other axes.

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
        batch_dims: int = 0,
    ) -> mx.array:
        name = "glorot_normal"
        geometry = _geometry(a, full_shape, start, name)
        fan_in, fan_out = _checks.fans(geometry[1], name, batch_dims)
        gain = _checks.real(gain, "gain", name)
        # Zero fans only come with zero elements: nothing to scale.
        std = gain * math.sqrt(2.0 / (fan_in + fan_out)) if fan_in + fan_out else 0.0
        return _node(geometry, name, dtype, key, stream, subsequence, kind=_NORMAL, scale=std)

    return _mark(initializer, "glorot_normal")


def _fan(fans, mode, name) -> int:
    if mode == "fan_in":
        return fans[0]
    if mode == "fan_out":
        return fans[1]
    raise ValueError(f"[{name}] Invalid mode: {mode}. Valid modes are: fan_in, fan_out")


def normal(
    mean: float = 0.0, std: float = 1.0, dtype: mx.Dtype = mx.float32
) -> Callable[..., mx.array]:
    r"""Samples from a normal distribution, fused (:func:`mlx.nn.init.normal`).

    Returns ``init(a, *, key=None, stream=None, full_shape=None, start=None,
    subsequence=0, batch_dims=0)``: ``mean + std * z`` with ``a``'s shape, computed as one
    fused multiply-add ``fma(std, z, mean)`` when ``mean != 0``. The keyword
    arguments are those of :func:`glorot_normal`.
    """
    name = "normal"
    mean = _checks.real(mean, "mean", name)
    std = _checks.real(std, "std", name)
    _checks.check_dtype(dtype, name)

    def initializer(a, *, key=None, stream=None, full_shape=None, start=None, subsequence=0,
                    batch_dims=0):
        geometry = _geometry(a, full_shape, start, name)
        _checks.check_batch_dims(batch_dims, len(geometry[0]), name)  # no fans: no effect
        return _node(geometry, name, dtype, key, stream, subsequence, kind=_NORMAL, scale=std, shift=mean)

    return _mark(initializer, name)


def uniform(
    low: float = 0.0, high: float = 1.0, dtype: mx.Dtype = mx.float32
) -> Callable[..., mx.array]:
    r"""Samples from the half-open interval ``[low, high)``, fused
    (:func:`mlx.nn.init.uniform`).

    As in MLX, ``low`` and ``high`` are first rounded to ``dtype``. Each
    value is ``min(fma(high - low, v, low), largest dtype value below high)``
    in float32 (one rounding), with ``v = (x >> 8) * 2^-24`` from one Philox
    word.
    Returns ``init(a, *, key=None, stream=None, full_shape=None, start=None,
    subsequence=0, batch_dims=0)``.
    """
    name = "uniform"
    low = _checks.real(low, "low", name)
    high = _checks.real(high, "high", name)
    _checks.check_dtype(dtype, name)
    if high < low:
        raise ValueError(f"[{name}] high must not be below low, but got low={low} and high={high}.")

    def initializer(a, *, key=None, stream=None, full_shape=None, start=None, subsequence=0,
                    batch_dims=0):
        geometry = _geometry(a, full_shape, start, name)
        _checks.check_batch_dims(batch_dims, len(geometry[0]), name)  # no fans: no effect
        return _node(geometry, name, dtype, key, stream, subsequence, kind=_UNIFORM, low=low, high=high)

    return _mark(initializer, name)


def glorot_uniform(dtype: mx.Dtype = mx.float32) -> Callable[..., mx.array]:
    r"""A Glorot (Xavier) uniform initializer, fused
    (:func:`mlx.nn.init.glorot_uniform`): ``[-limit, limit)`` with
    ``limit = gain * sqrt(6 / (fan_in + fan_out))``.

    Returns ``init(a, gain=1.0, *, key=None, stream=None, full_shape=None,
    start=None, subsequence=0, batch_dims=0)``.
    """
    name = "glorot_uniform"
    _checks.check_dtype(dtype, name)

    def initializer(a, gain=1.0, *, key=None, stream=None, full_shape=None, start=None,
                    subsequence=0, batch_dims=0):
        geometry = _geometry(a, full_shape, start, name)
        fan_in, fan_out = _checks.fans(geometry[1], name, batch_dims)
        gain = _checks.real(gain, "gain", name)
        # A negative gain gives stock MLX the mirrored interval: the same law.
        limit = abs(gain) * math.sqrt(6.0 / (fan_in + fan_out)) if fan_in + fan_out else 0.0
        return _node(geometry, name, dtype, key, stream, subsequence, kind=_UNIFORM, low=-limit, high=limit)

    return _mark(initializer, name)


def _he(name, dtype, transform):
    """The He initializers: ``transform(fan, gain)`` gives the node's
    transform arguments."""
    _checks.check_dtype(dtype, name)

    def initializer(a, mode="fan_in", gain=1.0, *, key=None, stream=None, full_shape=None,
                    start=None, subsequence=0, batch_dims=0):
        geometry = _geometry(a, full_shape, start, name)
        fan = _fan(_checks.fans(geometry[1], name, batch_dims), mode, name)
        gain = _checks.real(gain, "gain", name)
        return _node(geometry, name, dtype, key, stream, subsequence, **transform(fan, gain))

    return _mark(initializer, name)


def he_normal(dtype: mx.Dtype = mx.float32) -> Callable[..., mx.array]:
    r"""A He (Kaiming) normal initializer, fused
    (:func:`mlx.nn.init.he_normal`): ``std = gain / sqrt(fan)``, ``fan`` the
    ``fan_in`` or ``fan_out`` by ``mode``.

    Returns ``init(a, mode="fan_in", gain=1.0, *, key=None, stream=None,
    full_shape=None, start=None, subsequence=0, batch_dims=0)``.
    """
    return _he("he_normal", dtype, lambda fan, gain: dict(
        kind=_NORMAL, scale=gain / math.sqrt(fan) if fan else 0.0))


def he_uniform(dtype: mx.Dtype = mx.float32) -> Callable[..., mx.array]:
    r"""A He (Kaiming) uniform initializer, fused
    (:func:`mlx.nn.init.he_uniform`): ``[-limit, limit)`` with
    ``limit = gain * sqrt(3 / fan)``.

    Returns ``init(a, mode="fan_in", gain=1.0, *, key=None, stream=None,
    full_shape=None, start=None, subsequence=0, batch_dims=0)``.
    """

    def transform(fan, gain):
        # A negative gain gives stock MLX the mirrored interval: the same law.
        limit = abs(gain) * math.sqrt(3.0 / fan) if fan else 0.0
        return dict(kind=_UNIFORM, low=-limit, high=limit)

    return _he("he_uniform", dtype, transform)
