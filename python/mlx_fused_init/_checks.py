"""Argument checks shared by the initializers, with MLX-style messages."""

import math
import numbers

import mlx.core as mx

SUPPORTED_DTYPES = (mx.float32, mx.float16, mx.bfloat16)


def check_dtype(dtype, name: str) -> None:
    if not isinstance(dtype, mx.Dtype):
        raise TypeError(
            f"[{name}] dtype must be an mx.Dtype such as mx.float32, but got "
            f"{type(dtype).__name__}."
        )
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(
            f"[{name}] dtype must be float32, float16 or bfloat16, but got "
            f"{dtype}."
        )


def shape_of(a, name: str) -> tuple:
    shape = getattr(a, "shape", None)
    if shape is None or not isinstance(shape, (tuple, list)):
        raise TypeError(
            f"[{name}] expected an array (its shape is used, its values are "
            f"not), but got {type(a).__name__}."
        )
    return tuple(int(d) for d in shape)


def _number(value, arg: str, name: str) -> float:
    """A Python float from a real number or a one-element array."""
    if isinstance(value, mx.array) and value.size == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"[{name}] {arg} must be a real number, but got "
            f"{type(value).__name__}."
        )
    try:
        return float(value)
    except OverflowError:  # an int beyond float64's range
        raise ValueError(
            f"[{name}] {arg} is too large in magnitude for a float64, but got "
            f"{'-' if value < 0 else ''}an integer of {len(str(abs(int(value))))} digits."
        ) from None


def real(value, arg: str, name: str) -> float:
    """A finite Python float from a real number or a one-element array."""
    value = _number(value, arg, name)
    if not math.isfinite(value):
        raise ValueError(f"[{name}] {arg} must be finite, but got {value}.")
    return value


def check_stream(stream, name: str) -> None:
    if stream is not None and not isinstance(stream, (mx.Stream, mx.Device, mx.DeviceType)):
        raise TypeError(
            f"[{name}] stream must be an mx.Stream, an mx.Device (mx.cpu, mx.gpu) or None, but "
            f"got {type(stream).__name__}."
        )


def check_batch_dims(value, ndim: int, name: str) -> int:
    """A valid ``batch_dims`` for an array of ``ndim`` dimensions: leading
    axes that index independent matrices (stacked experts)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"[{name}] batch_dims must be an int, but got {type(value).__name__}.")
    if not 0 <= value <= ndim:
        raise ValueError(
            f"[{name}] batch_dims must be in [0, {ndim}] for an array with {ndim} "
            f"dimensions, but got {value}."
        )
    return int(value)


def fans(shape: tuple, name: str, batch_dims: int = 0) -> tuple:
    """``(fan_in, fan_out)`` exactly as ``mlx.nn.init`` computes them, from
    ``shape[batch_dims:]``: the leading ``batch_dims`` axes index
    independent matrices, each with these fans."""
    batch_dims = check_batch_dims(batch_dims, len(shape), name)
    shape = shape[batch_dims:]
    if len(shape) < 2:
        extra = f" (after {batch_dims} batch dimensions)" if batch_dims else ""
        raise ValueError(
            f"[{name}] Glorot / He initialization requires at least 2 "
            f"dimensional input but input with {len(shape)} dimensions{extra}."
        )
    fan_in, fan_out = shape[-1], shape[0]
    if len(shape) > 2:
        receptive_field = math.prod(shape[1:-1])
        fan_in *= receptive_field
        fan_out *= receptive_field
    return fan_in, fan_out


def _int_tuple(value, arg: str, name: str) -> tuple:
    try:
        out = tuple(value)
    except TypeError:
        raise TypeError(
            f"[{name}] {arg} must be a sequence of ints, but got {type(value).__name__}."
        ) from None
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in out):
        raise TypeError(f"[{name}] {arg} must be a sequence of ints, but got {value!r}.")
    return tuple(int(v) for v in out)


def window(shape: tuple, full_shape, start, name: str) -> tuple:
    """``(full_shape, start)`` of the window ``shape`` (docs/spec.md §2, windows): the
    output is ``full[start[0]:start[0]+shape[0], ...]`` of the virtual tensor
    ``full_shape``. Without ``full_shape`` the window is the whole tensor."""
    if full_shape is None:
        if start is not None:
            raise ValueError(f"[{name}] start= needs full_shape= (the virtual tensor's shape).")
        return shape, (0,) * len(shape)
    full_shape = _int_tuple(full_shape, "full_shape", name)
    start = (0,) * len(shape) if start is None else _int_tuple(start, "start", name)
    if len(full_shape) != len(shape) or len(start) != len(shape):
        raise ValueError(
            f"[{name}] full_shape {full_shape} and start {start} must have as many "
            f"dimensions as the array's shape {shape}."
        )
    for arg, values in (("full_shape", full_shape), ("start", start)):
        if any(v >= 2**63 for v in values):
            raise ValueError(
                f"[{name}] {arg} {values} has an entry of 2^63 or more; a dimension must "
                "fit in a signed 64-bit integer."
            )
    for d, (f, s, n) in enumerate(zip(full_shape, start, shape)):
        if f < 0 or s < 0 or s + n > f:
            raise ValueError(
                f"[{name}] the window start {start} with shape {shape} does not lie "
                f"inside full_shape {full_shape} (dimension {d})."
            )
    return full_shape, start


def subsequence(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"[{name}] subsequence must be an int, but got {type(value).__name__}."
        )
    if not 0 <= value < 2**64:
        raise ValueError(f"[{name}] subsequence must be in [0, 2^64), but got {value}.")
    return int(value)


def bound(value, arg: str, name: str) -> float:
    """A real number that may be infinite (an interval's end), not NaN."""
    value = _number(value, arg, name)
    if math.isnan(value):
        raise ValueError(f"[{name}] {arg} must not be NaN.")
    return value
