"""The initializers the mlx-lm sharding tests apply (test_sharding_full.py
and its multi-process twin, dist_worker_mlx_lm.py)."""

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


RULES = {"llama": moe_rules, "qwen3_moe": moe_rules, "deepseek_v3": moe_rules}
