# Run alone, or on N ranks: mlx.launch --backend ring -n 2 python examples/sharded_init.py
import mlx.core as mx
import mlx.nn as nn
from mlx.nn.layers.distributed import shard_linear

import mlx_fused_init as mfi

group = mx.distributed.init()  # this process's group (size 1 when run alone)
rank, size = group.rank(), group.size()
key = mx.random.key(0)  # the same key on every rank

# One weight: this rank's rows of a 4096 x 1024 weight, drawn alone.
init = mfi.glorot_normal()
mine = mfi.shard(init, axis=0, group=group)(mx.zeros((4096, 1024)), key=key)
rows = 4096 // size
full = init(mx.zeros((4096, 1024)), key=key)  # only to check; never needed
assert mx.array_equal(mine, full[rank * rows:(rank + 1) * rows])

# A model sharded with MLX's layers: the same weights as unsharded.
class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.Linear(256, 1024)
        self.down = nn.Linear(1024, 256)

model = MLP()
model.up = shard_linear(model.up, "all-to-sharded", group=group)  # splits outputs
model.down = shard_linear(model.down, "sharded-to-all", group=group)  # splits inputs
mfi.init_sharded(model, key=key, group=group)

twin = mfi.init_model(MLP(), key=key)  # the unsharded model, same key
n = 1024 // size
assert mx.array_equal(model.up.weight, twin.up.weight[rank * n:(rank + 1) * n])
assert mx.array_equal(model.down.weight, twin.down.weight[:, rank * n:(rank + 1) * n])
print(f"rank {rank}/{size}: shards equal the unsharded weights")
