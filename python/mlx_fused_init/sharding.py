"""Sharded initialization: this rank's piece of a weight, equal to the same
piece of the unsharded weight, without generating the rest."""

from typing import Callable, Optional, Sequence, Union

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_unflatten

from . import _checks
from ._keys import with_key
from .model import (
    batch_dims_of,
    check_initializer,
    named_parameters,
    param_subsequence,
    weights_only,
)

Segments = Union[int, Sequence[float]]


class _Shape:
    """Stands in for an array when only its shape is needed."""

    def __init__(self, shape):
        self.shape = tuple(shape)
        self.ndim = len(self.shape)


def _rank_and_size(group, rank, size, name) -> tuple:
    if rank is not None or size is not None:
        if group is not None:
            raise ValueError(f"[{name}] pass either group= or rank= and size=, not both.")
        if rank is None or size is None:
            raise ValueError(f"[{name}] rank= and size= go together.")
        rank, size = int(rank), int(size)
    else:
        group = group if group is not None else mx.distributed.init()
        rank, size = group.rank(), group.size()
    if size < 1 or not 0 <= rank < size:
        raise ValueError(f"[{name}] rank {rank} is not in a group of size {size}.")
    return rank, size


def shard_ranges(dim: int, rank: int, size: int, segments: Segments = 1, name="shard") -> list:
    """``[(start, length), ...]`` of this rank's shard of an axis of length
    ``dim``, by MLX's convention (``mlx.nn.layers.distributed``): the axis
    is first cut into ``segments`` (an int: equal parts; a list of fractions:
    cut points ``int(f * dim)``, as for a fused QKV weight), each segment into
    ``size`` equal contiguous parts, and rank r gets part r of every
    segment. As in MLX, equal parts are required: a length that does not
    divide raises ``ValueError``."""
    if isinstance(segments, int):
        if segments < 1 or dim % segments:
            raise ValueError(f"[{name}] an axis of length {dim} cannot be cut into {segments} equal segments.")
        cuts = [dim * i // segments for i in range(segments + 1)]
    else:
        cuts = [0] + [int(f * dim) for f in segments] + [dim]
    ranges = []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        if (hi - lo) % size:
            raise ValueError(
                f"[{name}] a segment of length {hi - lo} cannot be split into {size} equal "
                "shards (MLX's sharded layers require equal shards)."
            )
        part = (hi - lo) // size
        ranges.append((lo + rank * part, part))
    return ranges


def shard(
    initializer: Callable,
    axis: int = 0,
    group: Optional[mx.distributed.Group] = None,
    *,
    rank: Optional[int] = None,
    size: Optional[int] = None,
    segments: Segments = 1,
) -> Callable:
    """An initializer that returns this rank's shard of the full weight.

    ``shard(init, axis, group)(a, *args, key=...)`` takes ``a`` with the
    *full* weight's shape (only the shape is used: ``mx.zeros(shape)`` costs
    nothing, it is never evaluated) and returns the shard along ``axis``
    that rank ``group.rank()`` of ``group.size()`` holds under MLX's
    convention (see ``shard_ranges``), bit for bit equal to the same slice
    of ``init(a, *args, key=...)``. Fans come from the full shape. Without
    ``key``, one key is drawn from MLX's global state, so every rank must
    draw in the same order (seed them alike) or pass the same key.
    """
    name = "shard"
    check_initializer(initializer, name)
    rank, size = _rank_and_size(group, rank, size, name)

    def sharded(a, *args, key=None, stream=None, subsequence=0, **kwargs):
        full = _checks.shape_of(a, name)
        ax = axis + len(full) if axis < 0 else axis
        if not 0 <= ax < len(full):
            raise ValueError(f"[{name}] axis {axis} is out of range for shape {full}.")
        if "full_shape" in kwargs or "start" in kwargs:
            raise ValueError(f"[{name}] the shard sets full_shape= and start= itself.")
        ranges = shard_ranges(full[ax], rank, size, segments, name)

        def build(k):  # one key for every piece
            pieces = []
            for lo, length in ranges:
                shape = full[:ax] + (length,) + full[ax + 1:]
                start = (0,) * ax + (lo,) + (0,) * (len(full) - ax - 1)
                pieces.append(initializer(
                    _Shape(shape), *args, key=k, stream=stream, subsequence=subsequence,
                    full_shape=full, start=start, **kwargs))
            return pieces[0] if len(pieces) == 1 else mx.concatenate(pieces, axis=ax)

        return with_key(key, name, build)

    sharded.__mlx_fused_init__ = f"shard({initializer.__mlx_fused_init__})"
    return sharded


def _layer_sharding(path: str, module: nn.Module, param: mx.array):
    """MLX's own rule for its sharded linear layers: AllToShardedLinear
    splits the weight's output axis (and the bias), ShardedToAllLinear the
    weight's input axis."""
    from mlx.nn.layers import distributed as dist

    leaf = path.rsplit(".", 1)[-1]
    if isinstance(module, dist.AllToShardedLinear):
        return -1 if leaf == "bias" else max(param.ndim - 2, 0)
    if isinstance(module, dist.ShardedToAllLinear):
        return None if leaf == "bias" else -1
    return None


def init_sharded(
    model: nn.Module,
    initializer: Optional[Callable] = None,
    key: Optional[mx.array] = None,
    filter=None,
    *,
    group: Optional[mx.distributed.Group] = None,
    sharding: Optional[Callable] = None,
    stream=None,
) -> nn.Module:
    """Initialize a sharded model so that every rank's weights are its shards
    of what ``init_model`` gives the unsharded model for the same key.

    Shards are recognized from MLX's layers (``AllToShardedLinear``,
    ``ShardedToAllLinear``, as made by ``shard_linear`` or directly). For a
    model sharded with ``shard_inplace`` the layers stay ``nn.Linear``: pass
    the same ``sharding`` as to ``shard_inplace``, a callable ``(path, param)
    -> None | axis | (axis, segments)`` (or the strings "all-to-sharded" /
    "sharded-to-all", applied to every selected parameter). The full shape
    of a shard is its shape with the sharded axis times the group size.
    """
    from .initializers import glorot_normal

    name = "init_sharded"
    initializer = glorot_normal() if initializer is None else initializer
    check_initializer(initializer, name)
    rank, size = _rank_and_size(group, None, None, name)
    filter = weights_only if filter is None else filter
    if isinstance(sharding, str):
        kind = sharding
        if kind not in ("all-to-sharded", "sharded-to-all"):
            raise ValueError(f"[{name}] unknown sharding {kind!r}.")

        def sharding(path, param):
            if kind == "all-to-sharded":
                return -1 if path.endswith("bias") else max(param.ndim - 2, 0)
            return None if path.endswith("bias") else -1

    def build(k):
        new = []
        for path, module, param in named_parameters(model, filter, name):
            rule = sharding(path, param) if sharding is not None else _layer_sharding(path, module, param)
            q = param_subsequence(path)
            # Stacked experts: per-expert fans, as init_model draws them.
            b = batch_dims_of(module, param)
            extra = {"batch_dims": b} if b else {}
            if rule is None:
                new.append((path, initializer(param, key=k, subsequence=q, stream=stream, **extra)))
                continue
            axis, segments = rule if isinstance(rule, tuple) else (rule, 1)
            ax = axis + param.ndim if axis < 0 else axis
            full = list(param.shape)
            full[ax] *= size
            piece = shard(initializer, ax, rank=rank, size=size, segments=segments)
            new.append((path, piece(_Shape(full), key=k, subsequence=q, stream=stream, **extra)))
        return new

    model.update(tree_unflatten(with_key(key, name, build)))
    return model
