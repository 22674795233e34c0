"""Run by tests/test_distributed.py under `mlx.launch --backend ring -n N`:
each rank initializes its shards; all_gather must equal the single-process
tensors bit for bit. Prints one "OK rank r/N" line, or exits non-zero."""

import sys

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.nn.layers.distributed import shard_linear

import mlx_fused_init as mfi

group = mx.distributed.init()
rank, size = group.rank(), group.size()
KEY = mx.random.key(77)


def gather(shard, axis):
    """The full tensor from every rank's shard along axis (all_gather
    concatenates along axis 0)."""
    moved = mx.moveaxis(shard, axis, 0)
    full = mx.distributed.all_gather(moved, group=group)
    return mx.moveaxis(full, 0, axis)


def same_bits(a, b, what):
    a, b = np.array(a.astype(mx.float32)), np.array(b.astype(mx.float32))
    if a.shape != b.shape or not np.array_equal(a.view(np.uint32), b.view(np.uint32)):
        print(f"MISMATCH rank {rank}: {what}", flush=True)
        sys.exit(1)


# 1. shard() of single weights, both axes, with segments.
for full_shape, axis, segments, dtype in [
    ((64, 24), 0, 1, mx.float32),
    ((48, 64), 1, 1, mx.float32),
    ((8, 3, 3, 16), 0, 1, mx.float16),
    ((96, 32), 0, 3, mx.bfloat16),  # a fused QKV weight
    ((12 * size, 8), 0, [1 / 3, 2 / 3], mx.float32),
]:
    init = mfi.glorot_normal(dtype)
    piece = mfi.shard(init, axis, group, segments=segments)(mx.zeros(full_shape), key=KEY)
    full = init(mx.zeros(full_shape), key=KEY)
    if segments == 1:
        same_bits(gather(piece, axis), full, f"shard {full_shape} axis {axis}")
    else:
        # Gathered, each rank's piece holds its part of every segment.
        n_seg = segments if isinstance(segments, int) else len(segments) + 1
        parts = gather(piece, axis).split(size, axis=axis)  # per rank
        per_seg = [p.split(n_seg, axis=axis) for p in parts]
        rebuilt = mx.concatenate([per_seg[r][s] for s in range(n_seg) for r in range(size)], axis=axis)
        same_bits(rebuilt, full, f"shard {full_shape} segments {segments}")

# 2. A small model and its sharded twin (shard_linear), same key.


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 32)
        self.up = nn.Linear(32, 64)
        self.down = nn.Linear(64, 32)
        self.norm = nn.RMSNorm(32)


plain = mfi.init_model(MLP(), key=KEY)
twin = MLP()
twin.up = shard_linear(twin.up, "all-to-sharded", group=group)
twin.down = shard_linear(twin.down, "sharded-to-all", group=group)
mfi.init_sharded(twin, key=KEY, group=group)
same_bits(twin.embed.weight, plain.embed.weight, "embedding (not sharded)")
same_bits(gather(twin.up.weight, 0), plain.up.weight, "AllToShardedLinear weight")
same_bits(gather(twin.down.weight, 1), plain.down.weight, "ShardedToAllLinear weight")

print(f"OK rank {rank}/{size}", flush=True)
