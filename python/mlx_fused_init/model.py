"""Whole-model initialization: every weight of an ``mlx.nn.Module`` from one
key, each parameter on its own subsequence derived from its path."""

import hashlib
import warnings
from typing import Callable, Optional

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_unflatten

from . import _checks
from ._keys import with_key

Filter = Callable[[str, nn.Module, mx.array], bool]

# Layers whose "weight" is packed integers, not a float tensor to draw.
_QUANTIZED = tuple(
    getattr(nn, n) for n in ("QuantizedLinear", "QuantizedEmbedding") if hasattr(nn, n)
)


def param_subsequence(path: str) -> int:
    """The stream subsequence (SPEC 3's q) of the parameter at ``path``: the
    first 8 bytes, little-endian, of SHA-256 of the UTF-8 path. It depends
    on the path alone, so a weight is the same whatever else the model
    holds, whichever parameters are filtered out, and in whatever order
    they are drawn."""
    return int.from_bytes(hashlib.sha256(path.encode("utf-8")).digest()[:8], "little")


def weights_only(path: str, module: nn.Module, param: mx.array) -> bool:
    """The default filter: parameters with at least 2 dimensions (weights
    of linear, embedding, convolution and attention layers), not biases or
    normalization scales."""
    return param.ndim >= 2


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
        if isinstance(owner, _QUANTIZED):
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


def init_model(
    model: nn.Module,
    initializer: Optional[Callable] = None,
    key: Optional[mx.array] = None,
    filter: Optional[Filter] = None,
    *,
    stream=None,
) -> nn.Module:
    """Re-initialize a model's weights, lazily, and return the model.

    Args:
        model: the module; updated in place (``model.update``).
        initializer: one of this package's initializers (default
          ``glorot_normal()``), called as ``initializer(param, key=key,
          subsequence=q, stream=stream)`` for each selected parameter.
        key: one key for the whole model; default: the next key of MLX's
          global PRNG state (one draw for the whole call).
        filter: ``filter(path, module, param) -> bool`` selects parameters;
          default: those with at least 2 dimensions.

    Each parameter ``path`` uses subsequence ``param_subsequence(path)``, so
    with a fixed key every weight depends only on the key and its path.
    Nothing is computed until the parameters are evaluated.
    """
    from .initializers import glorot_normal

    name = "init_model"
    initializer = glorot_normal() if initializer is None else initializer
    check_initializer(initializer, name)
    _checks.check_stream(stream, name)
    filter = weights_only if filter is None else filter
    params = named_parameters(model, filter, name)
    new = with_key(key, name, lambda k: [
        (path, initializer(param, key=k, subsequence=param_subsequence(path), stream=stream))
        for path, _, param in params
    ])
    model.update(tree_unflatten(new))
    return model
