"""Whole-model initialization: every weight of an ``mlx.nn.Module`` from one
key, each parameter on its own subsequence derived from its path, by one
initializer or by rules (path patterns or layer classes)."""

import fnmatch
import hashlib
import warnings
from collections.abc import Mapping
from typing import Callable, Optional, Sequence, Tuple, Union

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_unflatten

from . import _checks
from ._backend import BACKEND
from ._keys import with_key

Filter = Callable[[str, nn.Module, mx.array], bool]

Pattern = Union[str, type]
Rules = Union[Mapping, Sequence[Tuple[Pattern, Optional[Callable]]]]

# Layers whose "weight" is packed integers, not a float tensor to draw, by
# class; any other layer is recognized by what it holds (_holds_quantized).
_QUANTIZED = tuple(
    getattr(nn, n) for n in ("QuantizedLinear", "QuantizedEmbedding") if hasattr(nn, n)
)
# The same, by class name, for layers of packages we do not import (mlx-lm).
_QUANTIZED_NAMES = {"QuantizedSwitchLinear"}

#: Class names of layers whose parameters stack independent matrices along
#: their first axis (mixture-of-experts layers: weight ``(experts, out, in)``,
#: bias ``(experts, out)``). ``init_model`` draws their parameters with
#: ``batch_dims=1``, so each expert gets the fans of one ``(out, in)`` matrix,
#: and counts only the other axes when deciding what is a weight. Matched
#: against the names of the layer's class and its base classes, so mlx-lm's
#: ``mlx_lm.models.switch_layers.SwitchLinear`` (used by Qwen3-MoE, Mixtral,
#: DeepSeek, gpt-oss, ...) is recognized without importing mlx-lm. Add the
#: name of your own stacked layer class to extend the rule.
stacked_expert_layers = {"SwitchLinear"}


def _class_names(module) -> set:
    return {c.__name__ for c in type(module).__mro__}


def batch_dims_of(module: nn.Module, param: mx.array) -> int:
    """The ``batch_dims`` init_model uses for ``param`` of ``module``: 1 for
    the parameters of a stacked-expert layer (``stacked_expert_layers``),
    else 0."""
    return 1 if param.ndim >= 1 and _class_names(module) & stacked_expert_layers else 0


def _holds_quantized(module) -> bool:
    """A layer that holds a packed integer ``weight`` and its ``scales``, as
    every MLX quantization mode stores them (``mx.quantize``): MLX's
    ``QuantizedLinear``, ``QuantizedEmbedding``, ``QuantizedAllToShardedLinear``,
    ``QuantizedShardedToAllLinear``, mlx-lm's ``QuantizedSwitchLinear`` and
    any future class that stores its weight the same way."""
    weight = module.get("weight") if isinstance(module, dict) else None
    return (isinstance(weight, mx.array) and not mx.issubdtype(weight.dtype, mx.floating)
            and isinstance(module.get("scales"), mx.array))


def _is_quantized(module) -> bool:
    return (_holds_quantized(module) or isinstance(module, _QUANTIZED)
            or bool(_class_names(module) & _QUANTIZED_NAMES))


def param_subsequence(path: str) -> int:
    """The stream subsequence (docs/spec.md §3's q) of the parameter at ``path``: the
    first 8 bytes, little-endian, of SHA-256 of the UTF-8 path. It depends
    on the path alone, so a weight is the same whatever else the model
    holds, whichever parameters are filtered out, and in whatever order
    they are drawn."""
    return int.from_bytes(hashlib.sha256(path.encode("utf-8")).digest()[:8], "little")


def weights_only(path: str, module: nn.Module, param: mx.array) -> bool:
    """The default filter: parameters with at least 2 dimensions besides
    their batch dimensions (weights of linear, embedding, convolution,
    attention and stacked-expert layers), not biases or normalization
    scales."""
    return param.ndim - batch_dims_of(module, param) >= 2


def _all(path: str, module: nn.Module, param: mx.array) -> bool:
    return True


def check_initializer(initializer, name: str) -> None:
    if not hasattr(initializer, "__mlx_fused_init__"):
        raise TypeError(
            f"[{name}] initializer must be one of mlx_fused_init's initializers "
            f"(e.g. mlx_fused_init.glorot_normal()), but got {initializer!r}: "
            "it needs the key=, subsequence= and window arguments."
        )


def named_parameters(model: nn.Module, filter: Filter, name: str):
    """``(path, module, param)`` for every parameter ``filter`` accepts;
    quantized layers are skipped with a warning."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"[{name}] model must be an mlx.nn.Module, but got {type(model).__name__}.")
    modules = dict(model.named_modules())
    skipped = []
    out = []
    for path, param in tree_flatten(model.parameters()):
        owner_path = path.rsplit(".", 1)[0] if "." in path else ""
        owner = modules.get(owner_path, model)
        if _is_quantized(owner):
            if path not in skipped and filter(path, owner, param):
                skipped.append(path)
            continue
        if filter(path, owner, param):
            out.append((path, owner, param))
    if skipped:
        warnings.warn(
            f"[{name}] skipped the parameters of quantized layers (their weights are "
            f"packed integers; initialize before quantizing): {', '.join(skipped)}",
            stacklevel=3,
        )
    return out


def _is_rules(obj) -> bool:
    return isinstance(obj, Mapping) or (
        isinstance(obj, (list, tuple)) and not hasattr(obj, "__mlx_fused_init__"))


def parse_rules(rules: Rules, name: str) -> list:
    """``[(pattern, initializer or None), ...]`` in order, checked."""
    items = list(rules.items()) if isinstance(rules, Mapping) else list(rules)
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(
                f"[{name}] rule {i} must be a (pattern, initializer) pair, but got {item!r}.")
        pattern, init = item
        if not isinstance(pattern, str) and not (
                isinstance(pattern, type) and issubclass(pattern, nn.Module)):
            raise TypeError(
                f"[{name}] rule {i}: the pattern must be an fnmatch string over the "
                f"parameter path or an nn.Module subclass, but got {pattern!r}.")
        if init is not None and not hasattr(init, "__mlx_fused_init__"):
            raise TypeError(
                f"[{name}] rule {pattern!r}: the initializer must be one of mlx_fused_init's "
                f"initializers (e.g. mlx_fused_init.normal(0.0, 0.02)) or None, but got "
                f"{init!r}: it needs the key=, subsequence= and window arguments.")
        out.append((pattern, init))
    return out


def _sharded_counterparts() -> tuple:
    """MLX's sharded versions of ``nn.Linear``: not subclasses of it, but the
    same layer cut over ranks (``mlx.nn.layers.distributed``). Their
    quantized versions hold packed weights and are skipped anyway."""
    from mlx.nn.layers import distributed as dist

    return tuple(getattr(dist, n) for n in ("AllToShardedLinear", "ShardedToAllLinear")
                 if hasattr(dist, n))


def class_matches(pattern: type, module) -> bool:
    """Whether a class rule matches the layer ``module``: an instance of
    ``pattern``, or of one of MLX's sharded counterparts of ``nn.Linear``
    when ``pattern`` is ``nn.Linear`` (or a base class of it): a rule for a
    layer means the same layer once ``shard_linear`` has cut it."""
    if isinstance(module, pattern):
        return True
    return issubclass(nn.Linear, pattern) and isinstance(module, _sharded_counterparts())


def path_matches(pattern: str, path: str) -> bool:
    """``fnmatch`` of ``pattern`` over ``path``; a path is also matched as if
    preceded by a dot, so that ``"*.bias"`` means a bias at any depth, the
    top level (``"bias"`` of a bare ``nn.Linear``) included."""
    return fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase("." + path, pattern)


def rule_for(rules: list, path: str, module: nn.Module):
    """The initializer of the first rule that matches (``None``: leave the
    parameter alone, also when no rule matches)."""
    for pattern, init in rules:
        if isinstance(pattern, str):
            if path_matches(pattern, path):
                return init
        elif class_matches(pattern, module):
            return init
    return None


def update(model: nn.Module, pairs: list) -> None:
    """``model.update`` with ``(path, array)`` pairs; none is no update
    (MLX's ``tree_unflatten`` of an empty list fails before MLX 0.27)."""
    if pairs:
        model.update(tree_unflatten(pairs))


def call_rule(init, path: str, name: str, *args, **kwargs):
    """``init(*args, **kwargs)`` for the parameter ``path``; an error names
    the parameter (chained from the initializer's own)."""
    try:
        return init(*args, **kwargs)
    except (ValueError, TypeError) as e:
        raise ValueError(f"[{name}] {path}: the rule's initializer failed: {e}") from e


def rules_and_filter(initializer, filter, name: str) -> tuple:
    """``(rules, filter)`` of a call taking one initializer or rules: one
    initializer (default ``glorot_normal()``) is the rule ``("*", it)``
    over the weights (``weights_only``); rules apply to every parameter
    unless a filter says otherwise."""
    from .initializers import glorot_normal

    if initializer is not None and _is_rules(initializer):
        return parse_rules(initializer, name), _all if filter is None else filter
    initializer = glorot_normal() if initializer is None else initializer
    check_initializer(initializer, name)
    return [("*", initializer)], weights_only if filter is None else filter


def init_model(
    model: nn.Module,
    initializer: Union[None, Callable, Rules] = None,
    key: Optional[mx.array] = None,
    filter: Optional[Filter] = None,
    *,
    stream=None,
) -> nn.Module:
    """Re-initialize a model's parameters, lazily, and return the model.

    Args:
        model: the module; updated in place (``model.update``).
        initializer: one of this package's initializers (default
          ``glorot_normal()``), called as ``initializer(param, key=key,
          subsequence=q, stream=stream, batch_dims=b)`` for each selected
          parameter; or *rules*: a mapping or a list of ``(pattern,
          initializer)`` pairs. A pattern is an ``fnmatch`` pattern over the
          parameter's path (``"*.bias"``, ``"layers.*.mlp.down_proj.weight"``;
          ``*`` also matches dots) or an ``nn.Module`` subclass, which
          matches the parameters the layer owns directly (``nn.RMSNorm``).
          The first matching rule wins; ``None`` as initializer, or no
          matching rule, leaves the parameter as it is.
        key: one key for the whole model; default: the next key of MLX's
          global PRNG state (one draw for the whole call).
        filter: ``filter(path, module, param) -> bool`` selects parameters
          before any rule applies; default: those with at least 2
          dimensions besides their batch dimensions for a single
          initializer, every parameter for rules.

    Each parameter ``path`` uses subsequence ``param_subsequence(path)``, so
    with a fixed key every weight depends only on the key, its path and its
    own rule: changing the rule of one layer never changes another. The
    parameters of stacked-expert layers (``stacked_expert_layers``) are
    drawn with ``batch_dims=1``: each expert gets its own matrix's fans.
    Nothing is computed until the parameters are evaluated.
    """
    name = "init_model"
    rules, filter = rules_and_filter(initializer, filter, name)
    _checks.check_stream(stream, name)
    jobs = []
    for path, module, param in named_parameters(model, filter, name):
        init = rule_for(rules, path, module)
        if init is not None:
            # Only the shape is kept: the old values are never read, and
            # holding them would keep them alive (see below).
            jobs.append((path, init, mx.zeros(param.shape, param.dtype),
                         batch_dims_of(module, param)))
    param = module = None  # the loop's last parameter must not outlive the swap

    def draw(k, path, init, like, b):
        return call_rule(init, path, name, like, key=k, subsequence=param_subsequence(path),
                         stream=stream, **({"batch_dims": b} if b else {}))

    if BACKEND == "native":
        def build(k):
            return [(path, draw(k, path, init, like, b)) for path, init, like, b in jobs]

        update(model, with_key(key, name, build))
        return model

    # Portable mode draws on the CPU eagerly, so the parameters are swapped
    # one at a time: the old one leaves the model (a lazy placeholder of
    # its shape takes its place) before the new one is drawn, and the peak
    # is the model itself rather than the model twice.
    def build_in_place(k):
        from ._portable import validate_only

        with validate_only():  # every draw checked before the first swap
            for job in jobs:
                draw(k, *job)
        for path, init, like, b in jobs:
            update(model, [(path, like)])
            update(model, [(path, draw(k, path, init, like, b))])

    with_key(key, name, build_in_place)
    return model


def _dtype_name(dtype) -> str:
    return str(dtype).replace("mlx.core.", "")


def _check_key(key, name: str) -> mx.array:
    if not isinstance(key, mx.array):
        raise TypeError(
            f"[{name}] key must be an mx.array of dtype uint32 and shape (2,) "
            f"(e.g. mx.random.key(0)), but got {type(key).__name__}.")
    if key.dtype != mx.uint32 or key.shape != (2,):
        raise ValueError(
            f"[{name}] key must be an mx.array of dtype uint32 and shape (2,) "
            f"(e.g. mx.random.key(0)), but got dtype {_dtype_name(key.dtype)} and shape "
            f"{key.shape}.")
    return key


def perturbation_plan(params_or_model, name: str, trainable: bool = False) -> tuple:
    """``(tree, paths)``: the parameter tree and the paths of the leaves that
    ``perturb_model`` perturbs, in ``tree_flatten`` order and spelling.

    A module contributes ``model.parameters()`` (``trainable=True``:
    ``model.trainable_parameters()``); the parameters of quantized layers
    are recognized by their owner, as ``init_model`` recognizes them. A
    bare tree (dicts, lists and tuples of arrays) has no owners: a dict
    that holds a packed integer ``weight`` and ``scales`` (``mx.quantize``'s
    layout, what a quantized layer's ``parameters()`` is) is a quantized
    layer, and all its leaves are left alone. Non-floating leaves (packed
    weights, integer buffers, masks) are never perturbed."""
    if isinstance(params_or_model, nn.Module):
        model = params_or_model
        tree = model.trainable_parameters() if trainable else model.parameters()
        modules = dict(model.named_modules())

        def quantized_owner(path, parent):
            owner_path = path.rsplit(".", 1)[0] if "." in path else ""
            return _is_quantized(modules.get(owner_path, model))
    elif isinstance(params_or_model, (dict, list, tuple)):
        tree = params_or_model

        def quantized_owner(path, parent):
            return isinstance(parent, dict) and _holds_quantized(parent)
    else:
        raise TypeError(
            f"[{name}] params_or_model must be an mlx.nn.Module or a parameter tree (dicts "
            f"and lists of mx.array, as model.parameters()), but got "
            f"{type(params_or_model).__name__}.")

    paths = []

    def walk(node, prefix, parent):
        if isinstance(node, dict):
            items = node.items()
        elif isinstance(node, (list, tuple)):
            items = enumerate(node)
        elif isinstance(node, mx.array):
            if mx.issubdtype(node.dtype, mx.floating) and not quantized_owner(prefix, parent):
                if node.dtype not in _checks.SUPPORTED_DTYPES:
                    raise ValueError(
                        f"[{name}] {prefix}: the dtype must be float32, float16 or bfloat16 to "
                        f"be perturbed, but got {_dtype_name(node.dtype)}.")
                paths.append(prefix)
            return
        else:
            raise TypeError(
                f"[{name}] params_or_model must be a tree of mx.array, but the leaf at "
                f"{prefix or '<root>'!r} is {type(node).__name__}.")
        for k, child in items:
            walk(child, f"{prefix}.{k}" if prefix else str(k), node)

    walk(tree, "", None)
    return tree, paths


def map_paths(tree, paths, fn):
    """A copy of ``tree`` (same containers' types) whose leaves at ``paths``
    are replaced by ``fn(path, leaf)``; every other leaf is the same object."""
    todo = set(paths)

    def walk(node, prefix):
        if isinstance(node, dict):
            return {k: walk(v, f"{prefix}.{k}" if prefix else str(k)) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            out = [walk(v, f"{prefix}.{i}" if prefix else str(i)) for i, v in enumerate(node)]
            return out if isinstance(node, list) else type(node)(out)
        return fn(prefix, node) if prefix in todo else node

    return walk(tree, "")


def perturb_model(
    params_or_model,
    scale: float,
    *,
    key: mx.array,
    weight_scale: float = 1.0,
    stream=None,
):
    """Every floating parameter perturbed by ``scale`` times its own
    regenerable noise: the new parameter tree, lazy.

    Args:
        params_or_model: an ``nn.Module`` (its ``parameters()``: every
          parameter, frozen ones included; pass
          ``model.trainable_parameters()`` for only those) or a parameter
          tree, dicts and lists of arrays as ``model.parameters()`` returns.
        scale: the noise's standard deviation (any finite real; 0 gives the
          parameters back, up to ``weight_scale``).
        key: a ``uint32`` array of shape ``(2,)``; required (the noise must
          be regenerable).
        weight_scale: each parameter is multiplied by it first
          (``weight_scale * w + scale * z``; a weight decay step).
        stream: as in MLX ops.

    The parameter at ``path`` becomes ``perturb(w, scale, key=key,
    subsequence=param_subsequence(path), weight_scale=weight_scale)``: its
    noise is ``normal(0.0, 1.0)`` of ``init_model``'s subsequence for the
    path, so it depends only on (key, path, element) and can be regenerated
    at any time instead of stored. The parameters of quantized layers (all
    of them: packed weights, scales, biases) and non-floating parameters
    are returned unchanged (the same arrays). Returns a tree of the input's
    structure (for a module, ``model.parameters()``'s), with the unchanged
    leaves as the same objects; the module is not modified: apply the
    result with ``model.update(...)``.
    """
    from .perturb import perturb

    name = "perturb_model"
    tree, paths = perturbation_plan(params_or_model, name)
    scale = _checks.real(scale, "scale", name)
    weight_scale = _checks.real(weight_scale, "weight_scale", name)
    key = _check_key(key, name)
    _checks.check_stream(stream, name)
    return map_paths(tree, paths, lambda path, w: perturb(
        w, scale, key=key, subsequence=param_subsequence(path),
        weight_scale=weight_scale, stream=stream))
