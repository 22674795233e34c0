"""Sharded initialization: this rank's piece of a weight, equal to the same
piece of the unsharded weight, without generating the rest."""

import copy
import numbers
from typing import Callable, Optional, Sequence, Union

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from . import _checks
from ._keys import with_key
from .model import (
    batch_dims_of,
    call_rule,
    check_initializer,
    named_parameters,
    param_subsequence,
    rule_for,
    rules_and_filter,
    update,
)

Segments = Union[int, Sequence[int], Sequence[float]]


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


def _segment_bounds(dim: int, segments, name: str) -> list:
    """``[(lo, hi), ...]`` of the segments MLX's ``_split``
    (``mlx/nn/layers/distributed.py``) cuts an axis of length ``dim`` into:
    an int is that many equal parts; a list whose first element is an int
    holds split indices (``mx.split``'s, as Python slices read them:
    negative ones count from the end, all are clamped to ``[0, dim]``, and
    segment k is ``[i[k-1], i[k])``, empty if reversed); a list of floats
    holds fractions, split index ``int(f * dim)`` each."""
    if isinstance(segments, bool):
        raise TypeError(f"[{name}] segments must be an int or a list of split indices or "
                        f"fractions, but got {segments!r}.")
    if isinstance(segments, numbers.Integral):
        segments = int(segments)
        if segments < 1 or dim % segments:
            raise ValueError(
                f"[{name}] an axis of length {dim} cannot be cut into {segments} equal segments.")
        return [(dim * i // segments, dim * (i + 1) // segments) for i in range(segments)]
    try:
        points = list(segments)
    except TypeError:
        raise TypeError(f"[{name}] segments must be an int or a list of split indices or "
                        f"fractions, but got {segments!r}.") from None
    if not points:
        raise ValueError(f"[{name}] segments must not be an empty list.")
    if any(isinstance(p, bool) or not isinstance(p, numbers.Real) for p in points):
        raise TypeError(f"[{name}] segments must hold ints (split indices) or floats "
                        f"(fractions), but got {segments!r}.")
    if isinstance(points[0], numbers.Integral):  # MLX: split indices
        if not all(isinstance(p, numbers.Integral) for p in points):
            raise TypeError(f"[{name}] segments starting with an int are split indices and must "
                            f"all be ints (as mx.split takes them), but got {segments!r}.")
        indices = [int(p) for p in points]
    else:  # MLX: fractions of the axis
        indices = [int(float(p) * dim) for p in points]

    def clamp(i):  # a Python slice bound
        return min(max(i + dim if i < 0 else i, 0), dim)

    cuts = [0] + [clamp(i) for i in indices] + [dim]
    return [(lo, max(lo, hi)) for lo, hi in zip(cuts[:-1], cuts[1:])]


def shard_ranges(
    dim: int, rank: int, size: int, segments: Segments = 1, name="shard", *, balanced: bool = False
) -> list:
    """``[(start, length), ...]`` of this rank's shard of an axis of length
    ``dim``, exactly as MLX's ``shard_inplace`` / ``shard_linear`` cut it
    (``_split`` in ``mlx.nn.layers.distributed``): the axis is first cut
    into ``segments`` — an int: that many equal parts; a list of ints:
    split indices, as ``mx.split`` takes them (mlx-lm's Qwen3.5 passes
    ``[key_dim, 2 * key_dim]`` for its fused QKV); a list of floats:
    fractions, split index ``int(f * dim)`` each — then each segment into
    ``size`` contiguous parts, and rank r gets part r of every segment.

    As in MLX, the parts must be equal: a segment whose length does not
    divide raises ``ValueError``. With ``balanced=True`` any length is
    accepted and split as ``numpy.array_split`` does: the first ``length %
    size`` ranks get one element more (MLX's layers do not shard this way
    yet; use it for your own layers and for expert parallelism over an
    uneven expert count)."""
    ranges = []
    for lo, hi in _segment_bounds(dim, segments, name):
        part, extra = divmod(hi - lo, size)
        if extra and not balanced:
            raise ValueError(
                f"[{name}] a segment of length {hi - lo} cannot be split into {size} equal "
                "shards (MLX's sharded layers require equal shards; balanced=True splits "
                "it as numpy.array_split does)."
            )
        ranges.append((lo + rank * part + min(rank, extra), part + (rank < extra)))
    return ranges


def shard(
    initializer: Callable,
    axis: int = 0,
    group: Optional[mx.distributed.Group] = None,
    *,
    rank: Optional[int] = None,
    size: Optional[int] = None,
    segments: Segments = 1,
    balanced: bool = False,
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

    ``axis=0`` of a stacked-expert weight ``(experts, out, in)`` is expert
    parallelism: rank r holds experts ``[r*E/N, (r+1)*E/N)``; pass the
    initializer's ``batch_dims=1`` through the call so that the fans stay
    per expert. ``balanced=True`` accepts lengths that do not divide
    (see ``shard_ranges``).
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
        ranges = shard_ranges(full[ax], rank, size, segments, name, balanced=balanced)

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


class _Rank:
    """A stand-in for ``mx.distributed.Group``: ``rank()`` and ``size()``
    are all that MLX's and mlx-lm's sharding code asks of a group."""

    def __init__(self, rank, size):
        self._rank, self._size = rank, size

    def rank(self):
        return self._rank

    def size(self):
        return self._size


def _runs(line) -> list:
    """``[(start, length), ...]``: the runs of consecutive values of a list
    of indices."""
    runs = []
    for v in line:
        if runs and runs[-1][0] + runs[-1][1] == v:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((v, 1))
    return runs


class _Explainer:
    """Where each shard lies in its full parameter, worked out from the
    template ``full`` and the layers' own sharding, never from a shape
    ratio alone.

    * A template with a ``shard(group)`` method (mlx-lm's models): that
      method is run on copies of the template whose parameters are index
      probes (``arange`` along one axis, broadcast, so lazy views that cost
      nothing until a shard is taken), for a stand-in group of this rank
      and size. What it does to the probes — MLX's ``_split`` with any
      ``segments``, head slices, repeats — is read back: each axis of the
      shard is a list of indices into the full axis. A parameter it leaves
      alone is replicated and must have the template's shape exactly.
    * Otherwise, MLX's sharded linear layers in the model
      (``AllToShardedLinear``, ``ShardedToAllLinear``) by their documented
      split; anything else is replicated and must have the template's shape.
    """

    def __init__(self, model, full, rank, size, name):
        self.full, self.rank, self.size, self.name = full, rank, size, name
        self.templates = dict(tree_flatten(full.parameters()))
        self.modules = dict(model.named_modules())
        self.has_shard = callable(getattr(full, "shard", None))
        self.passes = {}

    def _pass(self, d):
        """``(probes, results)`` of the template's ``shard()`` run on index
        probes along axis ``d``: path -> the probe given / what it became."""
        if d not in self.passes:
            probes, memo = {}, {}
            for path, p in self.templates.items():
                if p.ndim > d:
                    shape = [1] * p.ndim
                    shape[d] = p.shape[d]
                    # float32 (exact below 2^24) so that shard code doing
                    # arithmetic on weights runs, and shows up as non-indices
                    dtype = mx.float32 if p.shape[d] < 2**24 else mx.int32
                    probe = mx.broadcast_to(mx.arange(p.shape[d], dtype=dtype).reshape(shape),
                                            p.shape)
                    probes[path] = probe
                    memo[id(p)] = probe
            clone = copy.deepcopy(self.full, memo)
            state = mx.random.state[0]  # layers that shard() builds draw their own init
            try:
                clone.shard(_Rank(self.rank, self.size))
            except Exception as e:
                raise ValueError(
                    f"[{self.name}] the template's shard() failed for rank {self.rank} of "
                    f"{self.size}: {e}") from e
            finally:
                mx.random.seed((int(state[0]) << 32) | int(state[1]))
            self.passes[d] = (probes, dict(tree_flatten(clone.parameters())))
        return self.passes[d]

    def __call__(self, path, shard_shape, fshape):
        """``None`` for a replicated parameter, else the runs ``[(start,
        length), ...]`` of the full tensor that each axis of the shard
        holds, in order."""
        name = self.name
        both = f"the model has {tuple(shard_shape)}, the template {tuple(fshape)}"
        if tuple(shard_shape) == tuple(fshape):
            return None  # the whole parameter, on every rank
        if not self.has_shard:
            raise ValueError(
                f"[{name}] {path}: the shape differs from the template's ({both}), but its "
                "layer is not one of MLX's sharded layers and the template has no shard() "
                "method to tell how it was cut: pass sharding= with its (axis, segments).")
        probes, results = self._pass(0)
        if path not in results:
            raise ValueError(f"[{name}] {path}: the template's shard() removes this parameter.")
        if results[path] is probes.get(path):
            raise ValueError(
                f"[{name}] {path} is not sharded by the template's shard() (it is "
                f"replicated on every rank), so it must have the template's shape, but "
                f"{both}: full= must be the same architecture, unsharded.")
        runs = []
        for d in range(len(fshape)):
            got = self._pass(d)[1][path]
            if tuple(got.shape) != tuple(shard_shape) or not (
                    mx.issubdtype(got.dtype, mx.integer) or mx.array_equal(got, mx.floor(got)).item()):
                what = (f"shape {tuple(got.shape)}" if tuple(got.shape) != tuple(shard_shape)
                        else "values that are not a selection of the full parameter's (it "
                        "computes on them)")
                raise ValueError(
                    f"[{name}] {path}: the template's shard() gives rank {self.rank} of "
                    f"{self.size} {what}, but the model holds shape {tuple(shard_shape)}: the "
                    "model was not sharded by the template's shard() for this group (pass "
                    "sharding= for parameters sharded otherwise).")
            index = [0] * got.ndim
            index[d] = slice(None)
            line = got[tuple(index)]
            shape = [1] * got.ndim
            shape[d] = got.shape[d]
            if not mx.array_equal(got, mx.broadcast_to(line.reshape(shape), got.shape)).item():
                raise ValueError(
                    f"[{name}] {path}: the template's shard() mixes axes of this parameter; "
                    "only selections along its axes can be drawn.")
            runs.append(_runs([int(v) for v in line.tolist()]))
        return runs


def _draw_runs(init, runs, fshape, common):
    """The shard made of the blocks ``runs`` (per axis) of the full tensor,
    each drawn as a window and concatenated in order."""
    ndim = len(fshape)

    def block(d, start, shape):
        if d == ndim:
            return init(_Shape(shape), full_shape=fshape, start=tuple(start), **common)
        if not runs[d]:  # an empty axis
            return block(d + 1, start + [0], shape + [0])
        parts = [block(d + 1, start + [lo], shape + [n]) for lo, n in runs[d]]
        return parts[0] if len(parts) == 1 else mx.concatenate(parts, axis=d)

    return block(0, [], [])


def _marked_sharded(model: nn.Module) -> list:
    """Modules that mlx-lm's ``shard()`` methods mark with a
    ``sharding_group`` of more than one rank (its MoE blocks, whose expert
    weights are sharded in place and so keep their layer classes)."""
    out = []
    for path, m in model.named_modules():
        g = getattr(m, "sharding_group", None)
        if g is not None and hasattr(g, "size") and g.size() > 1:
            out.append(path or "<model>")
    return out


def init_sharded(
    model: nn.Module,
    initializer=None,
    key: Optional[mx.array] = None,
    filter=None,
    *,
    group: Optional[mx.distributed.Group] = None,
    rank: Optional[int] = None,
    size: Optional[int] = None,
    full: Optional[nn.Module] = None,
    sharding: Optional[Callable] = None,
    stream=None,
) -> nn.Module:
    """Initialize a sharded model so that every rank's weights are its shards
    of what ``init_model`` gives the unsharded model for the same key and
    the same ``initializer`` — one of this package's initializers or rules,
    exactly as ``init_model`` takes them (default ``glorot_normal()``).

    Where each parameter's full shape and window come from, in this order:

    1. ``sharding``: a callable ``(path, param) -> None | axis | (axis,
       segments)``, as given to MLX's ``shard_inplace`` (or the strings
       "all-to-sharded" / "sharded-to-all" for every selected parameter).
       Where it returns ``None``, the next rules apply — a parameter of a
       layer that MLX marks as sharded is never drawn as a whole tensor.
    2. ``full``: the same architecture built unsharded (lazily: its own
       weights are never evaluated, so it costs nothing). A parameter's
       full shape is the template's; the window is inferred from the
       shard's shape (one axis cut into ``size`` equal parts, rank r holds
       part r). Anything else — two axes differ, a ratio that is not the
       group size, a parameter missing on either side — is a ``ValueError``
       naming the parameter and both shapes. This covers mlx-lm's
       ``model.shard(group)``, which mixes ``shard_linear`` layers with
       in-place sharded experts and head slices. Parameters are selected
       (``filter``), and rules matched, on the template's modules — the
       unsharded classes (``nn.Linear``, mlx-lm's ``SwitchLinear``) that
       rules and recipes name — and stacked experts get ``batch_dims`` from
       the full shape, as ``init_model`` gives them.
    3. MLX's sharded layers (``AllToShardedLinear``, ``ShardedToAllLinear``):
       their documented split, with the full shape the shard's times the
       group size.

    Anything else is drawn whole. Without ``full`` and ``sharding``, a
    module marked by mlx-lm as sharded (``sharding_group``) is a
    ``ValueError``, since its in-place-sharded parameters carry no trace of
    their full shapes.

    ``group`` (default: ``mx.distributed.init()``), or ``rank=`` and
    ``size=`` to compute one rank's shards without a group (one rank of a
    simulated cluster).
    """
    name = "init_sharded"
    rules, filter = rules_and_filter(initializer, filter, name)
    _checks.check_stream(stream, name)
    rank, size = _rank_and_size(group, rank, size, name)
    if full is not None and not isinstance(full, nn.Module):
        raise TypeError(f"[{name}] full must be the unsharded mlx.nn.Module, but got {type(full).__name__}.")
    if isinstance(sharding, str):
        kind = sharding
        if kind not in ("all-to-sharded", "sharded-to-all"):
            raise ValueError(f"[{name}] unknown sharding {kind!r}.")

        def sharding(path, param):
            if kind == "all-to-sharded":
                return -1 if path.endswith("bias") else max(param.ndim - 2, 0)
            return None if path.endswith("bias") else -1

    if full is None and sharding is None:
        marked = _marked_sharded(model)
        if marked:
            raise ValueError(
                f"[{name}] {', '.join(marked[:3])} {'is' if len(marked) == 1 else 'are'} marked as "
                "sharded (sharding_group) but the full shapes of their in-place-sharded "
                "parameters are unknown: pass full= (the model built unsharded) or sharding=.")

    if full is None:
        selected = named_parameters(model, filter, name)
        full_shapes = {}
    else:
        selected, full_shapes = _select_from_template(model, full, filter, name)

    jobs = []  # (path, module, the model's parameter, initializer, batch_dims, full shape or None)
    for path, module, param in selected:
        init = rule_for(rules, path, module)
        if init is not None:
            fshape = full_shapes.get(path)
            b = batch_dims_of(module, _Shape(fshape) if fshape else param)
            jobs.append((path, module, param, init, b, fshape))

    explain = _Explainer(model, full, rank, size, name) if full is not None else None
    modules = dict(model.named_modules())

    def one(k, path, module, param, init, b, fshape):
        q = param_subsequence(path)
        common = dict(key=k, subsequence=q, stream=stream, **({"batch_dims": b} if b else {}))
        shard_shape = tuple(param.shape)
        rule = sharding(path, param) if sharding is not None else None
        if rule is None and fshape is not None:
            # MLX's sharded layers explain themselves (segments 1) where the
            # template cannot run its own shard().
            owner = modules.get(path.rsplit(".", 1)[0] if "." in path else "", model)
            if not explain.has_shard:
                rule = _layer_sharding(path, owner, param)
            if rule is None:
                runs = explain(path, shard_shape, fshape)
                if runs is None:
                    return call_rule(init, path, name, _Shape(fshape), **common)
                return call_rule(_draw_runs, path, name, init, runs, fshape, common)
        if rule is None and fshape is None:
            rule = _layer_sharding(path, module, param)
            if rule is None:
                return call_rule(init, path, name, param, **common)
        axis, segments = rule if isinstance(rule, tuple) else (rule, 1)
        ax = axis + param.ndim if axis < 0 else axis
        if fshape is None:
            fshape = list(shard_shape)
            fshape[ax] *= size
        out = call_rule(shard(init, ax, rank=rank, size=size, segments=segments), path, name,
                        _Shape(fshape), **common)
        if tuple(out.shape) != shard_shape:
            raise ValueError(
                f"[{name}] {path}: sharding gives a shard of shape {tuple(out.shape)} "
                f"but the model holds {shard_shape}.")
        return out

    def build(k):
        return [(job[0], one(k, *job)) for job in jobs]

    update(model, with_key(key, name, build))
    return model


def _select_from_template(model, full, filter, name):
    """The parameters to draw, chosen on the template ``full`` (its modules
    are the unsharded classes that filters and rules are written for), as
    ``(path, template module, the model's shard)``, and their full shapes.
    Both models must have the same parameter paths."""
    ours = dict(tree_flatten(model.parameters()))
    theirs = dict(tree_flatten(full.parameters()))
    extra = sorted(set(ours) - set(theirs))
    if extra:
        raise ValueError(
            f"[{name}] {extra[0]} (shape {tuple(ours[extra[0]].shape)}) is missing from the "
            f"template full= ({len(extra)} parameter(s) in all): full must be the same "
            "architecture, unsharded.")
    selected, shapes = [], {}
    for path, module, tparam in named_parameters(full, filter, name):
        if path not in ours:
            raise ValueError(
                f"[{name}] {path} (shape {tuple(tparam.shape)}) of the template full= is "
                "missing from the model.")
        selected.append((path, module, ours[path]))
        shapes[path] = tuple(tparam.shape)
    return selected, shapes
