"""Published initialization recipes as ``init_model`` rule sets, on the
parameter paths and layer classes of mlx-lm's models.

Each function returns a list of ``(pattern, initializer)`` rules (see
``init_model``); use it as ``init_model(model, recipes.llama(), key=...)``.
Rules are plain data: inspect, extend or reorder them (the first match
wins)::

    rules = [("lm_head.weight", mfi.normal(0.0, 0.01))] + mfi.recipes.llama()
"""

import math

import mlx.core as mx
import mlx.nn as nn

from . import _checks
from .constant import ones, zeros
from .initializers import normal
from .truncated import truncated_normal

_NORMS = (nn.RMSNorm, nn.LayerNorm)


def _std(value, arg, name) -> float:
    value = _checks.real(value, arg, name)
    if value <= 0.0:
        raise ValueError(f"[{name}] {arg} must be positive, but got {value}.")
    return value


def _norm_rules(dtype) -> list:
    # Norm scales 1 (their biases are caught by the "*.bias" rule first).
    return [(cls, ones(dtype)) for cls in _NORMS]


def llama(initializer_range: float = 0.02, dtype: mx.Dtype = mx.float32) -> list:
    """Hugging Face transformers' initialization of Llama (and of most
    decoder-only models that do not override it).

    Source: ``PreTrainedModel._init_weights`` in
    ``transformers/modeling_utils.py`` (transformers 5.x; ``LlamaPreTrainedModel``
    in ``models/llama/modeling_llama.py`` keeps it): every ``nn.Linear`` and
    ``nn.Embedding`` weight from ``normal(0, initializer_range)``, linear
    biases zero, RMSNorm / LayerNorm weights one (biases zero). Llama's
    configuration has ``initializer_range = 0.02`` and no padding index, so
    no embedding row is zeroed. On mlx-lm's ``mlx_lm.models.llama`` (and
    Mistral, Qwen2/3, ... with the same layer types): ``embed_tokens``,
    ``q/k/v/o_proj``, ``gate/up/down_proj``, ``lm_head``, the norms. The
    stacked experts of mixture-of-experts models (mlx-lm's ``switch_mlp``:
    Qwen3-MoE, Mixtral, ...) get the same ``normal(0, initializer_range)``,
    as ``Qwen3MoePreTrainedModel._init_weights``
    (``models/qwen3_moe/modeling_qwen3_moe.py``) gives its experts and
    router. Parameters of other layer types are left alone.
    """
    name = "recipes.llama"
    std = _std(initializer_range, "initializer_range", name)
    w = normal(0.0, std, dtype)
    return ([("*.bias", zeros(dtype)), ("*.switch_mlp.*", w), (nn.Linear, w),
             (nn.Embedding, w)] + _norm_rules(dtype))


def gpt2(n_layer: int, initializer_range: float = 0.02, dtype: mx.Dtype = mx.float32) -> list:
    """Hugging Face transformers' initialization of GPT-2.

    Source: ``GPT2PreTrainedModel._init_weights`` in
    ``transformers/models/gpt2/modeling_gpt2.py`` on top of
    ``PreTrainedModel._init_weights``: linear (``Conv1D``) and embedding
    (``wte``, ``wpe``) weights from ``normal(0, initializer_range)``, biases
    zero, LayerNorm weights one; then the residual projections
    ``attn.c_proj`` and ``mlp.c_proj`` of every block from ``normal(0,
    initializer_range / sqrt(2 * n_layer))`` (the GPT-2 paper's scaling by
    1/sqrt(N) for N residual layers, two per block). On mlx-lm's
    ``mlx_lm.models.gpt2`` paths (``model.h.<i>.attn.c_proj.weight``, ...).
    """
    name = "recipes.gpt2"
    if isinstance(n_layer, bool) or not isinstance(n_layer, int) or n_layer < 1:
        raise ValueError(f"[{name}] n_layer must be a positive int, but got {n_layer!r}.")
    std = _std(initializer_range, "initializer_range", name)
    w = normal(0.0, std, dtype)
    residual = normal(0.0, std / math.sqrt(2 * n_layer), dtype)
    return ([("*.bias", zeros(dtype)), ("*.c_proj.weight", residual),
             (nn.Linear, w), (nn.Embedding, w)] + _norm_rules(dtype))


def olmo2(initializer_range: float = 0.02, cutoff: float = 3.0,
          dtype: mx.Dtype = mx.float32) -> list:
    """OLMo 2's initialization: every linear and embedding weight (the
    output layer included) from a normal with standard deviation 0.02
    truncated at three standard deviations; norms one, biases zero.

    Sources: the OLMo 2 paper (Team OLMo, "2 OLMo 2 Furious",
    arXiv:2501.00656), which replaced OLMo's scaled initialization by
    N(0, 0.02) for every parameter for stability; and its training code,
    OLMo-core ``src/olmo_core/nn/transformer/init.py``, ``InitMethod.normal``
    (the method of the OLMo 2 configurations): ``nn.init.trunc_normal_(w,
    mean=0, std=0.02, a=-3 * std, b=3 * std)`` for ``w_q``, ``w_k``, ``w_v``,
    ``w_out``, the feed-forward ``w1``, ``w2``, ``w3``, the embeddings and the
    final output layer; biases zero. (Hugging Face's ``Olmo2`` port
    initializes with the untruncated generic rule instead: use ``llama()``
    for that.) On mlx-lm's ``mlx_lm.models.olmo2`` (including the q/k norms).
    """
    name = "recipes.olmo2"
    std = _std(initializer_range, "initializer_range", name)
    cutoff = _std(cutoff, "cutoff", name)
    w = truncated_normal(0.0, std, -cutoff * std, cutoff * std, dtype)
    return [("*.bias", zeros(dtype)), (nn.Linear, w), (nn.Embedding, w)] + _norm_rules(dtype)
