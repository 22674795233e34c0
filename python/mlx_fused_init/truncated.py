"""The truncated normal, and JAX/Keras ``variance_scaling`` built on it."""

import math
from typing import Callable

import mlx.core as mx

from . import _checks
from ._backend import ext as _ext
from .initializers import _UNIFORM, _NORMAL, _geometry, _mark, _node

_TRUNCATED_NORMAL = 3  # transform kind of the primitive (metal/fused_init_math.h)

# The standard deviation of a standard normal truncated to [-2, 2]: JAX's
# and Keras' variance_scaling divide by it so that the truncated draw has
# the requested variance.
TRUNCATED_STD_2 = 0.87962566103423978


def truncated_normal(
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    dtype: mx.Dtype = mx.float32,
) -> Callable[..., mx.array]:
    r"""A normal distribution ``N(mean, std^2)`` truncated to ``[a, b]``, fused.

    PyTorch ``torch.nn.init.trunc_normal_`` semantics: ``a`` and ``b`` are
    absolute bounds (not in units of ``std``), either may be infinite, and
    ``std`` is that of the normal before truncation. Drawn by inverse CDF,
    so each element is a pure function of (key, index, subsequence):
    windows, shards, threads and devices give the same bits. Every value
    lies in ``[a, b]`` after rounding to ``dtype`` (the bounds are rounded
    inward). Standardized bounds are clipped to ``[-12, 12]`` and intervals
    lying entirely more than 10 standard deviations from the mean are
    refused (see the spec for the exact definition and its accuracy).

    Returns ``init(a, *, key=None, stream=None, full_shape=None, start=None,
    subsequence=0, batch_dims=0)``, keywords as for :func:`glorot_normal`.
    """
    name = "truncated_normal"
    mean = _checks.real(mean, "mean", name)
    std = _checks.real(std, "std", name)
    low = _checks.bound(a, "a", name)
    high = _checks.bound(b, "b", name)
    _checks.check_dtype(dtype, name)
    _ext.truncation_constants(mean, std, low, high, dtype, name=name)  # raises early

    def initializer(a, *, key=None, stream=None, full_shape=None, start=None, subsequence=0,
                    batch_dims=0):
        geometry = _geometry(a, full_shape, start, name)
        _checks.check_batch_dims(batch_dims, len(geometry[0]), name)  # no fans: no effect
        return _node(geometry, name, dtype, key, stream, subsequence, kind=_TRUNCATED_NORMAL,
                     scale=std, shift=mean, low=low, high=high)

    return _mark(initializer, name)


_MODES = ("fan_in", "fan_out", "fan_avg")

# float32's smallest normal number: a spread below it draws zeros and
# subnormals, not the law asked for.
_FLOAT32_TINY = 2.0 ** -126


def _check_spread(scale, n, mode, distribution, name) -> None:
    """``ValueError`` naming ``scale`` when ``scale / n`` makes the standard
    deviation (or the uniform limit) smaller than float32's smallest normal
    number."""
    variance = scale / n
    if distribution == "uniform":
        what, spread = "uniform limit", math.sqrt(3.0 * variance)
    elif distribution == "truncated_normal":
        what, spread = "standard deviation", math.sqrt(variance) / TRUNCATED_STD_2
    else:
        what, spread = "standard deviation", math.sqrt(variance)
    if spread < _FLOAT32_TINY:
        fan = "" if n == 1 else f" with {mode} = {n:g}"
        raise ValueError(
            f"[{name}] scale={scale:g} is too small: its {what}{fan} is {spread:.3g}, below "
            f"float32's smallest normal number ({_FLOAT32_TINY:.3g}); the draws would be zeros "
            "or subnormals.")

_DISTRIBUTIONS = ("truncated_normal", "normal", "untruncated_normal", "uniform")


def variance_scaling(
    scale: float = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
    dtype: mx.Dtype = mx.float32,
) -> Callable[..., mx.array]:
    r"""JAX's / Keras' ``variance_scaling``, fused: for porting Flax and Keras
    models (``lecun_normal`` is ``variance_scaling(1.0, "fan_in")``, Flax's
    ``he_normal`` ``variance_scaling(2.0, "fan_in")``, ``glorot_uniform``
    ``variance_scaling(1.0, "fan_avg", "uniform")``).

    ``variance = scale / n`` with ``n`` = ``fan_in``, ``fan_out`` or their
    mean (``mode``), the fans computed as ``mlx.nn.init`` does for MLX's
    ``(out, in)`` weights (``fan_in = shape[-1] * rf``, ``fan_out = shape[0]
    * rf``; JAX's kernels are ``(in, out)``: transpose when porting), after
    the leading ``batch_dims`` axes. By ``distribution``:

    * ``"truncated_normal"``: normal with ``std = sqrt(variance) /
      0.87962566103423978`` truncated to ``[-2 std, 2 std]``, so that the
      draw's variance is ``variance`` (the constant is the standard
      deviation of a standard normal truncated to ``[-2, 2]``);
    * ``"normal"`` (or ``"untruncated_normal"``): ``std = sqrt(variance)``;
    * ``"uniform"``: ``[-limit, limit)`` with ``limit = sqrt(3 variance)``.

    Returns ``init(a, *, key=None, stream=None, full_shape=None, start=None,
    subsequence=0, batch_dims=0)``.
    """
    name = "variance_scaling"
    scale = _checks.real(scale, "scale", name)
    if scale <= 0.0:
        raise ValueError(f"[{name}] scale must be positive, but got {scale}.")
    if mode not in _MODES:
        raise ValueError(f"[{name}] Invalid mode: {mode}. Valid modes are: {', '.join(_MODES)}")
    if distribution not in _DISTRIBUTIONS:
        raise ValueError(
            f"[{name}] Invalid distribution: {distribution}. Valid distributions are: "
            f"{', '.join(_DISTRIBUTIONS)}")
    _checks.check_dtype(dtype, name)
    _check_spread(scale, 1, mode, distribution, name)  # too small for any weight

    def initializer(a, *, key=None, stream=None, full_shape=None, start=None, subsequence=0,
                    batch_dims=0):
        geometry = _geometry(a, full_shape, start, name)
        fan_in, fan_out = _checks.fans(geometry[1], name, batch_dims)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        # Zero fans only come with zero elements: any law will do.
        variance = scale / n if n else 1.0
        if n:
            _check_spread(scale, n, mode, distribution, name)
        if distribution == "truncated_normal":
            std = math.sqrt(variance) / TRUNCATED_STD_2
            transform = dict(kind=_TRUNCATED_NORMAL, scale=std, shift=0.0,
                             low=-2.0 * std, high=2.0 * std)
        elif distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            transform = dict(kind=_UNIFORM, low=-limit, high=limit)
        else:
            transform = dict(kind=_NORMAL, scale=math.sqrt(variance))
        return _node(geometry, name, dtype, key, stream, subsequence, **transform)

    return _mark(initializer, name)
