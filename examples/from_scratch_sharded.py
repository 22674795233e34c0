# Run alone, or on N ranks: mlx.launch --backend ring -n 4 python examples/from_scratch_sharded.py
import mlx.core as mx
from mlx.utils import tree_flatten
from mlx_lm.models import qwen3_moe

import mlx_fused_init as mfi

# A tiny Qwen3-MoE; use your real configuration (e.g. from config.json).
args = qwen3_moe.ModelArgs(
    model_type="qwen3_moe", hidden_size=256, num_hidden_layers=2, intermediate_size=512,
    num_attention_heads=8, num_experts=8, num_experts_per_tok=2, decoder_sparse_step=1,
    mlp_only_layers=[], moe_intermediate_size=128, rms_norm_eps=1e-6, vocab_size=1000,
    num_key_value_heads=4, head_dim=32, rope_theta=1e6, tie_word_embeddings=False,
    max_position_embeddings=4096, norm_topk_prob=True)

group = mx.distributed.init()
model = qwen3_moe.Model(args)
model.shard(group)                    # mlx-lm's own tensor-parallel split
full = qwen3_moe.Model(args)          # the same architecture, unsharded: lazy, never evaluated
mfi.init_sharded(model, mfi.recipes.llama(), key=mx.random.key(0), group=group, full=full)
mx.eval(model.parameters())

# Every rank holds exactly its slice of the weights one machine would draw:
one_machine = mfi.init_model(qwen3_moe.Model(args), mfi.recipes.llama(), key=mx.random.key(0))
one_machine.shard(group)              # slice them the way mlx-lm does
for path, w in tree_flatten(model.parameters()):
    assert mx.array_equal(w, dict(tree_flatten(one_machine.parameters()))[path]), path
print(f"rank {group.rank()}/{group.size()}: {len(tree_flatten(model.parameters()))} parameters, "
      "each the matching slice of the unsharded model")
