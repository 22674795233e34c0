"""The initializers the mlx-lm sharding tests apply (test_sharding_full.py
and its multi-process twin, dist_worker_mlx_lm.py). Each rule set covers
every parameter of its architecture: one left alone would keep its own
stock random values, which differ between two builds of a model."""

import mlx.nn as nn

import mlx_fused_init as mfi


def moe_rules():
    """Per-layer rules as a from-scratch MoE recipe would write them: He on
    the stacked experts (batch_dims from the full shape), Glorot on the rest
    of the weights, ones for norms, zeros for the rest."""
    from mlx_lm.models.switch_layers import SwitchLinear

    return [
        (SwitchLinear, mfi.he_normal()),
        ("*norm*", mfi.ones()),
        (nn.Embedding, mfi.normal(0.0, 0.02)),
        ("*.weight", mfi.glorot_normal()),
        ("*", mfi.zeros()),
    ]


def deepseek_rules():
    """OLMo 2's truncated normal for linear and embedding weights (a
    truncated-normal window in every shard), He per expert, and a normal
    for DeepSeek's own layers (MultiLinear heads, the MoE gate)."""
    from mlx_lm.models.switch_layers import SwitchLinear

    return [(SwitchLinear, mfi.he_normal())] + mfi.recipes.olmo2() + [("*", mfi.normal(0.0, 0.02))]


RULES = {"llama": mfi.recipes.llama, "qwen3_moe": mfi.recipes.llama, "deepseek_v3": deepseek_rules}
