"""init_sharded(..., full=template) on mlx-lm's own model.shard(): every
rank's parameters must equal what mlx-lm's shard() makes of the unsharded
init_model weights, bit for bit. One process, each rank simulated with
rank=/size= (the multi-process run is test_distributed.py)."""

import re

import mlx.core as mx
import mlx.nn as nn
import pytest
from mlx.nn.layers.distributed import shard_inplace, shard_linear

import mlx_fused_init as mfi
from conftest import MLX_LM_MISSING, Rank, params
from sharding_rules import moe_rules

mlx_lm_models = pytest.importorskip(
    "mlx_lm_models", reason=MLX_LM_MISSING)
MODELS = mlx_lm_models.MODELS

KEY = mx.random.key(11)
EVERYTHING = lambda path, module, param: True  # noqa: E731  biases and norms too


def expected_shards(make, init, rank, size):
    """The oracle: the unsharded model's init_model weights, sharded by
    mlx-lm's own shard() (MLX's _split and mlx-lm's head slicing)."""
    model = mfi.init_model(make(), init, key=KEY, filter=EVERYTHING)
    mx.eval(model.parameters())
    model.shard(Rank(rank, size))
    return params(model)


@pytest.mark.parametrize("arch", sorted(MODELS))
@pytest.mark.parametrize("size", [2, 4])
def test_every_rank_holds_its_slice_of_the_unsharded_weights(arch, size):
    make = MODELS[arch]
    init = mfi.normal(0.0, 0.02)
    for rank in range(size):
        want = expected_shards(make, init, rank, size)
        model = make()
        model.shard(Rank(rank, size))
        mfi.init_sharded(model, init, key=KEY, rank=rank, size=size, full=make(), filter=EVERYTHING)
        got = params(model)
        assert got.keys() == want.keys()
        sharded = 0
        for path, w in got.items():
            assert w.shape == want[path].shape, path
            assert mx.array_equal(w, want[path]).item(), f"{arch} rank {rank}/{size}: {path}"
            sharded += w.shape != params(make())[path].shape
        assert sharded > 0  # the test did exercise sharded parameters


def test_moe_model_without_full_is_refused():
    model = MODELS["qwen3_moe"]()
    model.shard(Rank(0, 2))
    with pytest.raises(ValueError, match=r"model.layers.1.mlp is marked as sharded.*pass full="):
        mfi.init_sharded(model, key=KEY, rank=0, size=2)


class Pair(nn.Module):
    def __init__(self, n=8):
        super().__init__()
        self.up = nn.Linear(16, 4 * n)
        self.down = nn.Linear(4 * n, 16)


def test_template_mismatches_name_the_parameter_and_both_shapes():
    # A plain layer whose shape differs: nothing tells how it was cut (the
    # template has no shard() method, the layer is not one of MLX's sharded
    # ones), so even a shape ratio equal to the group size is refused.
    for shape in [(16, 8), (8, 16), (16, 16)]:
        model = Pair()
        model.up.weight = mx.zeros(shape)
        with pytest.raises(ValueError, match=rf"up.weight: the shape differs from the template's "
                                             rf"\(the model has {re.escape(str(shape))}, the template \(32, 16\)\).*"
                                             r"pass sharding="):
            mfi.init_sharded(model, key=KEY, rank=0, size=2, full=Pair())
    model = Pair()
    model.extra = nn.Linear(2, 2, bias=False)
    with pytest.raises(ValueError, match=r"extra.weight \(shape \(2, 2\)\) is missing from the template"):
        mfi.init_sharded(model, key=KEY, rank=0, size=2, full=Pair())
    template = Pair()
    template.head = nn.Linear(2, 2, bias=False)
    with pytest.raises(ValueError, match=r"head.weight \(shape \(2, 2\)\) of the template full= is missing"):
        mfi.init_sharded(Pair(), key=KEY, rank=0, size=2, full=template)
    with pytest.raises(TypeError, match=r"full must be the unsharded mlx.nn.Module"):
        mfi.init_sharded(Pair(), key=KEY, rank=0, size=2, full={"up": 1})


def test_sharding_callable_returning_none_keeps_the_layer_rule():
    # Before: a sharding= callable replaced MLX's layer rule for every
    # parameter, and None drew an AllToShardedLinear shard as a whole tensor.
    plain = mfi.init_model(Pair(), key=KEY)
    for rank in range(2):
        model = Pair()
        model.up = shard_linear(model.up, "all-to-sharded", group=Rank(rank, 2))
        model.down = shard_linear(model.down, "sharded-to-all", group=Rank(rank, 2))
        mfi.init_sharded(model, key=KEY, rank=rank, size=2, sharding=lambda path, p: None)
        assert mx.array_equal(model.up.weight, plain.up.weight[rank * 16:(rank + 1) * 16]).item()
        assert mx.array_equal(model.down.weight, plain.down.weight[:, rank * 16:(rank + 1) * 16]).item()


def test_shard_inplace_with_full_equals_mlx_sharding_of_the_full_weights():
    plain = mfi.init_model(Pair(), key=KEY)
    for rank in range(4):
        want = Pair()
        want.update(plain.parameters())
        shard_inplace(want.up, "all-to-sharded", group=Rank(rank, 4))
        shard_inplace(want.down, "sharded-to-all", group=Rank(rank, 4))
        model = Pair()
        shard_inplace(model.up, "all-to-sharded", group=Rank(rank, 4))
        shard_inplace(model.down, "sharded-to-all", group=Rank(rank, 4))
        # shard_inplace leaves plain nn.Linear layers: the same predicate
        # as shard_inplace's tells init_sharded how they were cut.
        mfi.init_sharded(model, key=KEY, rank=rank, size=4, full=Pair(), sharding=lambda path, w: (
            (-1 if path.endswith("bias") else 0) if path.startswith("up.")
            else (None if path.endswith("bias") else -1)))
        for path, w in params(model).items():
            if path.endswith("weight"):
                assert mx.array_equal(w, params(want)[path]).item(), path


@pytest.mark.parametrize("arch", ["qwen3_moe", "deepseek_v3"])
def test_rules_with_stacked_experts_match_init_model(arch):
    make = MODELS[arch]
    plain = mfi.init_model(make(), moe_rules(), key=KEY)
    # The law the experts must have: He per expert, 1/sqrt(in) = 1/8 here.
    experts = plain.model.layers[1].mlp.switch_mlp.gate_proj.weight
    assert experts.shape == (8, 32, 64)
    assert abs(mx.std(experts).item() - 64 ** -0.5) < 0.01  # 16384 samples: se ~ 0.0007
    for rank in range(2):
        want = mfi.init_model(make(), moe_rules(), key=KEY)
        want.shard(Rank(rank, 2))
        model = make()
        model.shard(Rank(rank, 2))
        mfi.init_sharded(model, moe_rules(), key=KEY, rank=rank, size=2, full=make())
        got, want = params(model), params(want)
        for path in want:
            assert mx.array_equal(got[path], want[path]).item(), f"rank {rank}: {path}"


@pytest.mark.parametrize("size", [2, 4])
def test_expert_parallel_shards_through_full_and_through_shard(size):
    make = MODELS["qwen3_moe"]
    plain = mfi.init_model(make(), moe_rules(), key=KEY)
    full_w = plain.model.layers[1].mlp.switch_mlp.down_proj.weight  # (8, 64, 32)
    e = 8 // size
    for rank in range(size):
        model = make()
        for name in ("gate_proj", "up_proj", "down_proj"):
            shard_inplace(getattr(model.model.layers[1].mlp.switch_mlp, name),
                          lambda path, w: 0, group=Rank(rank, size))
        # Expert parallelism is not what the template's shard() does (tensor
        # parallelism): sharding= says how the experts were cut.
        mfi.init_sharded(model, moe_rules(), key=KEY, rank=rank, size=size, full=make(),
                         sharding=lambda path, w: 0 if ".switch_mlp." in path else None)
        mine = model.model.layers[1].mlp.switch_mlp.down_proj.weight
        assert mine.shape == (e, 64, 32)
        assert mx.array_equal(mine, full_w[rank * e:(rank + 1) * e]).item()
        # The same shard from shard(axis=0), per-expert fans via batch_dims.
        alone = mfi.shard(mfi.he_normal(), 0, rank=rank, size=size)(
            mx.zeros((8, 64, 32)), key=KEY, batch_dims=1,
            subsequence=mfi.param_subsequence("model.layers.1.mlp.switch_mlp.down_proj.weight"))
        assert mx.array_equal(alone, mine).item()
