"""Recipes on mlx-lm's own model classes (tiny configurations): every
parameter's law against the formula of its source, and, where torch is
installed, against the standard deviations Hugging Face's own
_init_weights asks for on the same configuration. Also: a mixture-of-
experts model's experts get their per-expert law."""

import math

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten
from scipy import stats

import mlx_fused_init as mfi
from conftest import MLX_LM_MISSING

llama_lm = pytest.importorskip(
    "mlx_lm.models.llama",
    reason=MLX_LM_MISSING)
from mlx_lm.models import gpt2 as gpt2_lm, olmo2 as olmo2_lm, qwen3_moe  # noqa: E402

KEY = mx.random.key(17)
R = 0.02  # initializer_range
SMALL = dict(hidden_size=128, num_hidden_layers=2, intermediate_size=256, num_attention_heads=4,
             rms_norm_eps=1e-5, vocab_size=256, num_key_value_heads=2)


def llama_model():
    return llama_lm.Model(llama_lm.ModelArgs(model_type="llama", tie_word_embeddings=False, **SMALL))


def olmo2_model():
    return olmo2_lm.Model(olmo2_lm.ModelArgs(model_type="olmo2", tie_word_embeddings=False, **SMALL))


def gpt2_model(n_layer=3):
    return gpt2_lm.Model(gpt2_lm.ModelArgs(model_type="gpt2", n_ctx=64, n_embd=128, n_head=4,
                                           n_layer=n_layer, n_positions=64,
                                           layer_norm_epsilon=1e-5, vocab_size=256))


def arrays(model) -> dict:
    mx.eval(model.parameters())
    return {k: np.array(v.astype(mx.float32)).astype(np.float64)
            for k, v in tree_flatten(model.parameters())}


def check_law(path, x, law):
    """law: ("zeros",), ("ones",), ("normal", std) or ("truncated", std, c).
    Sample statistics within 5 standard errors (n >= 8192 values per weight
    here, so a wrong std of even 5% is caught)."""
    if law[0] in ("zeros", "ones"):
        assert np.all(x == (0.0 if law[0] == "zeros" else 1.0)), path
        return
    n = x.size
    if law[0] == "normal":
        sd = law[1]
    else:
        _, std, c = law
        sd = std * stats.truncnorm(-c, c).std()
        assert np.abs(x).max() <= c * std * (1 + 2 ** -20), path
    assert abs(x.mean()) < 5 * sd / math.sqrt(n), (path, x.mean())
    assert abs(x.std() / sd - 1) < 5 / math.sqrt(2 * n) + 1e-3, (path, x.std(), sd)


def llama_law(path):  # transformers' generic _init_weights
    if path.endswith("norm.weight"):
        return ("ones",)
    return ("normal", R)


def gpt2_law(path, n_layer):  # GPT2PreTrainedModel._init_weights
    if path.endswith(".bias"):
        return ("zeros",)
    if ".ln_" in path:
        return ("ones",)
    if path.endswith("c_proj.weight"):
        return ("normal", R / math.sqrt(2 * n_layer))
    return ("normal", R)


def olmo2_law(path):  # OLMo-core InitMethod.normal
    if path.endswith("norm.weight"):
        return ("ones",)
    return ("truncated", R, 3.0)


def test_llama_recipe():
    p = arrays(mfi.init_model(llama_model(), mfi.recipes.llama(), key=KEY))
    assert len(p) == 2 * 9 + 3
    for path, x in p.items():
        check_law(path, x, llama_law(path))


def test_gpt2_recipe():
    p = arrays(mfi.init_model(gpt2_model(3), mfi.recipes.gpt2(3), key=KEY))
    assert sum(path.endswith("c_proj.weight") for path in p) == 6  # attn + mlp, 3 blocks
    for path, x in p.items():
        check_law(path, x, gpt2_law(path, 3))


def test_olmo2_recipe():
    p = arrays(mfi.init_model(olmo2_model(), mfi.recipes.olmo2(), key=KEY))
    assert any("q_norm" in path for path in p)
    for path, x in p.items():
        check_law(path, x, olmo2_law(path))


def test_recipes_follow_initializer_range_and_dtype():
    p = arrays(mfi.init_model(llama_model(), mfi.recipes.llama(0.05, mx.bfloat16), key=KEY))
    check_law("model.layers.0.mlp.up_proj.weight", p["model.layers.0.mlp.up_proj.weight"],
              ("normal", 0.05))
    m = mfi.init_model(llama_model(), mfi.recipes.llama(dtype=mx.bfloat16), key=KEY)
    assert m.model.layers[0].mlp.up_proj.weight.dtype == mx.bfloat16


@pytest.mark.parametrize("call, match", [
    (lambda: mfi.recipes.gpt2(0), r"\[recipes.gpt2\] n_layer must be a positive int"),
    (lambda: mfi.recipes.llama(-0.02), r"\[recipes.llama\] initializer_range must be positive"),
    (lambda: mfi.recipes.olmo2(cutoff=0.0), r"\[recipes.olmo2\] cutoff must be positive"),
])
def test_bad_recipe_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def qwen3_moe_model():
    args = qwen3_moe.ModelArgs(
        model_type="qwen3_moe", hidden_size=128, num_hidden_layers=1, intermediate_size=256,
        num_attention_heads=4, num_experts=8, num_experts_per_tok=2, decoder_sparse_step=1,
        mlp_only_layers=[], moe_intermediate_size=96, rms_norm_eps=1e-5, vocab_size=256,
        num_key_value_heads=2, head_dim=32, rope_theta=1e4, tie_word_embeddings=False,
        max_position_embeddings=64, norm_topk_prob=True)
    return qwen3_moe.Model(args)


def test_llama_recipe_covers_moe_experts():
    # Qwen3MoePreTrainedModel._init_weights: experts and router normal(0, r).
    p = arrays(mfi.init_model(qwen3_moe_model(), mfi.recipes.llama(), key=KEY))
    assert sum(".switch_mlp." in path for path in p) == 3
    for path, x in p.items():
        check_law(path, x, llama_law(path))


def test_moe_experts_get_their_per_expert_law():
    # Qwen3-MoE: SwitchLinear weights (experts, out, in). He normal per
    # expert is 1/sqrt(in); MLX's plain fan rule would give 1/sqrt(out*in).
    p = arrays(mfi.init_model(qwen3_moe_model(), mfi.he_normal(), key=KEY))
    experts = {k: v for k, v in p.items() if ".switch_mlp." in k}
    assert len(experts) == 3
    for path, x in experts.items():
        assert x.ndim == 3 and x.shape[0] == 8
        for e in range(8):  # every expert on its own
            check_law(f"{path}[{e}]", x[e], ("normal", 1 / math.sqrt(x.shape[2])))


# -------------------------------------------- against Hugging Face's code
def hf_requested_laws(build):
    """Build a transformers model with torch and record, per parameter, the
    last law its _init_weights asked for (transformers.initialization)."""
    torch = pytest.importorskip("torch", reason="torch is optional: pip install torch")
    import transformers.initialization as hfi

    laws = {}

    def record(kind):
        original = getattr(hfi, kind)

        def wrapper(tensor, *args, **kwargs):
            if kind == "normal_":
                std = kwargs.get("std", args[1] if len(args) > 1 else 1.0)
                laws[tensor.data_ptr()] = ("normal", float(std))
            else:
                laws[tensor.data_ptr()] = ("zeros",) if kind == "zeros_" else ("ones",)
            return original(tensor, *args, **kwargs)

        return original, wrapper

    patches = {k: record(k) for k in ("normal_", "zeros_", "ones_")}
    try:
        for k, (_, wrapper) in patches.items():
            setattr(hfi, k, wrapper)
        torch.manual_seed(0)
        model = build()
    finally:
        for k, (original, _) in patches.items():
            setattr(hfi, k, original)
    return {name: laws.get(param.data_ptr()) for name, param in model.named_parameters()}


def test_llama_recipe_matches_transformers():
    import transformers

    laws = hf_requested_laws(lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(
        tie_word_embeddings=False, **SMALL)))
    p = arrays(mfi.init_model(llama_model(), mfi.recipes.llama(), key=KEY))
    assert set(laws) == set(p)  # the same parameter paths
    for path, law in laws.items():
        assert law is not None, f"transformers did not initialize {path}"
        check_law(path, p[path], law)


def test_gpt2_recipe_matches_transformers():
    import transformers

    config = transformers.GPT2Config(n_embd=128, n_head=4, n_layer=3, n_positions=64,
                                     vocab_size=256)
    laws = hf_requested_laws(lambda: transformers.GPT2LMHeadModel(config))
    p = arrays(mfi.init_model(gpt2_model(3), mfi.recipes.gpt2(3), key=KEY))
    # transformers' GPT-2 lives under "transformer."; mlx-lm's under "model.";
    # lm_head is tied to wte in both.
    laws = {k.replace("transformer.", "model."): v for k, v in laws.items() if k != "lm_head.weight"}
    assert set(laws) == set(p)
    for path, law in laws.items():
        assert law is not None, f"transformers did not initialize {path}"
        check_law(path, p[path], law)
