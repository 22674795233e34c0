"""Tiny configurations of mlx-lm's model classes, shared by the sharding
tests and their multi-process worker. Every dimension that a world size of
up to 4 shards (heads, intermediate sizes, expert counts) divides by 4."""

from mlx_lm.models import deepseek_v3, llama, qwen3_moe


def tiny_llama():
    return llama.Model(llama.ModelArgs(
        model_type="llama", hidden_size=64, num_hidden_layers=2, intermediate_size=128,
        num_attention_heads=4, num_key_value_heads=4, rms_norm_eps=1e-5, vocab_size=96,
        tie_word_embeddings=False))


def tiny_qwen3_moe():
    return qwen3_moe.Model(qwen3_moe.ModelArgs(
        model_type="qwen3_moe", hidden_size=64, num_hidden_layers=2, intermediate_size=128,
        num_attention_heads=4, num_experts=8, num_experts_per_tok=2, decoder_sparse_step=1,
        mlp_only_layers=[0], moe_intermediate_size=32, rms_norm_eps=1e-6, vocab_size=96,
        num_key_value_heads=4, head_dim=16, rope_theta=10000.0, tie_word_embeddings=False,
        max_position_embeddings=128, norm_topk_prob=True))


def tiny_deepseek_v3():
    return deepseek_v3.Model(deepseek_v3.ModelArgs(
        vocab_size=96, hidden_size=64, intermediate_size=128, moe_intermediate_size=32,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
        n_shared_experts=1, n_routed_experts=8, kv_lora_rank=16, q_lora_rank=32,
        qk_rope_head_dim=8, v_head_dim=16, qk_nope_head_dim=16, num_experts_per_tok=2,
        first_k_dense_replace=1, n_group=1, topk_group=1))


MODELS = {"llama": tiny_llama, "qwen3_moe": tiny_qwen3_moe, "deepseek_v3": tiny_deepseek_v3}
