"""Run by tests/test_distributed.py under `mlx.launch --backend ring -n N`:
tiny mlx-lm models sharded by their own `model.shard(group)` and
initialized with `init_sharded(..., full=...)` must hold, on every rank, what
`model.shard(group)` makes of `init_model`'s unsharded weights, bit for bit.
Prints one "OK rank r/N" line, or exits non-zero."""

import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

import mlx_fused_init as mfi

sys.path.insert(0, str(Path(__file__).parent))
from mlx_lm_models import MODELS  # noqa: E402
from sharding_rules import RULES  # noqa: E402

group = mx.distributed.init()
rank, size = group.rank(), group.size()
KEY = mx.random.key(2024)

for arch in ("qwen3_moe", "deepseek_v3", "llama"):
    make = MODELS[arch]
    want = mfi.init_model(make(), RULES[arch](), key=KEY)
    mx.eval(want.parameters())
    want.shard(group)
    model = make()
    model.shard(group)
    mfi.init_sharded(model, RULES[arch](), key=KEY, group=group, full=make())
    want, got = dict(tree_flatten(want.parameters())), dict(tree_flatten(model.parameters()))
    if want.keys() != got.keys():
        print(f"MISMATCH rank {rank}: {arch} parameter paths", flush=True)
        sys.exit(1)
    for path in want:
        a = np.array(want[path].astype(mx.float32)).view(np.uint32)
        b = np.array(got[path].astype(mx.float32)).view(np.uint32)
        if a.shape != b.shape or not np.array_equal(a, b):
            print(f"MISMATCH rank {rank}: {arch} {path}", flush=True)
            sys.exit(1)

print(f"OK rank {rank}/{size}", flush=True)
