"""Constant initializers (``zeros``, ``ones``, ``constant``): drop-ins for
``mlx.nn.init.constant`` that also take the keywords ``init_model`` and
``shard`` pass, so that one rule set covers biases and norm scales."""

from typing import Callable

import mlx.core as mx

from . import _checks
from .initializers import _mark


def constant(value: float, dtype: mx.Dtype = mx.float32) -> Callable[..., mx.array]:
    r"""An initializer that returns an array filled with ``value``
    (:func:`mlx.nn.init.constant`).

    Returns ``init(a, *, key=None, stream=None, full_shape=None, start=None,
    subsequence=0, batch_dims=0)``: ``mx.full(a.shape, value, dtype)``. The
    keywords are accepted for uniformity with the random initializers and do
    not change the result (a window of a constant tensor is the constant);
    no key is drawn from MLX's global state.
    """
    name = "constant"
    value = _checks.real(value, "value", name)
    _checks.check_dtype(dtype, name)
    return _constant(name, value, dtype)


def zeros(dtype: mx.Dtype = mx.float32) -> Callable[..., mx.array]:
    """``constant(0.0, dtype)``: for biases."""
    _checks.check_dtype(dtype, "zeros")
    return _constant("zeros", 0.0, dtype)


def ones(dtype: mx.Dtype = mx.float32) -> Callable[..., mx.array]:
    """``constant(1.0, dtype)``: for normalization scales."""
    _checks.check_dtype(dtype, "ones")
    return _constant("ones", 1.0, dtype)


def _constant(name, value, dtype):
    def initializer(a, *, key=None, stream=None, full_shape=None, start=None, subsequence=0,
                    batch_dims=0):
        shape = _checks.shape_of(a, name)
        _checks.window(shape, full_shape, start, name)
        _checks.check_batch_dims(batch_dims, len(shape), name)
        _checks.check_stream(stream, name)
        _checks.subsequence(subsequence, name)
        return mx.full(shape, value, dtype=dtype, stream=stream)

    return _mark(initializer, name)
