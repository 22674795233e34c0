"""shard(), shard_ranges() and init_model() in one process (the multi-process
check is test_distributed.py)."""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.nn.layers.distributed import _split

import mlx_fused_init as mfi
from conftest import Tiny, bits, params

KEY = mx.random.key(5)


@pytest.mark.parametrize("size", [1, 2, 3, 4])
@pytest.mark.parametrize("segments", [1, 2, [0.25, 0.5]])
def test_shard_ranges_follow_mlx_split(size, segments):
    dim = 24 * size
    axis = mx.arange(dim)
    for rank in range(size):
        # MLX's own sharding of a weight (mlx/nn/layers/distributed.py).
        theirs = mx.concatenate([_split(part, size, 0)[rank] for part in _split(axis, segments, 0)])
        ours = np.concatenate([np.arange(lo, lo + n) for lo, n in mfi.shard_ranges(dim, rank, size, segments)])
        np.testing.assert_array_equal(ours, np.array(theirs))


def test_shard_ranges_refuse_unequal_shards():
    with pytest.raises(ValueError, match="cannot be split into 3 equal shards"):
        mfi.shard_ranges(10, 0, 3)


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("size", [2, 3])
def test_shards_concatenate_to_the_full_weight(axis, size):
    full_shape = (12, 18)
    init = mfi.glorot_normal()
    full = init(mx.zeros(full_shape), key=KEY)
    pieces = [mfi.shard(init, axis, rank=r, size=size)(mx.zeros(full_shape), key=KEY) for r in range(size)]
    assert mx.array_equal(mx.concatenate(pieces, axis=axis), full).item()


def test_shard_with_segments_matches_mlx_sharding_of_the_full_weight():
    init = mfi.glorot_normal()
    full = init(mx.zeros((24, 8)), key=KEY)
    for r in range(2):
        ours = mfi.shard(init, 0, rank=r, size=2, segments=3)(mx.zeros((24, 8)), key=KEY)
        theirs = mx.concatenate([_split(p, 2, 0)[r] for p in _split(full, 3, 0)])
        np.testing.assert_array_equal(bits(ours), bits(theirs))


def test_shard_draws_one_key_for_all_pieces():
    init = mfi.glorot_normal()
    mx.random.seed(3)
    piece = mfi.shard(init, 0, rank=1, size=2, segments=2)(mx.zeros((8, 4)))
    mx.random.seed(3)
    full = init(mx.zeros((8, 4)))
    expect = mx.concatenate([full[2:4], full[6:8]])
    assert mx.array_equal(piece, expect).item()


def test_shard_argument_errors():
    init = mfi.glorot_normal()
    with pytest.raises(ValueError, match="rank 2 is not in a group of size 2"):
        mfi.shard(init, 0, rank=2, size=2)
    with pytest.raises(ValueError, match="rank= and size= go together"):
        mfi.shard(init, 0, rank=0)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        mfi.shard(init, 2, rank=0, size=1)(mx.zeros((2, 2)))
    with pytest.raises(TypeError, match="initializer must be one of mlx_fused_init"):
        mfi.shard(nn.init.glorot_normal(), 0, rank=0, size=1)


def test_init_sharded_with_a_group_of_one_equals_init_model():
    plain = params(mfi.init_model(Tiny(), key=KEY))
    twin = params(mfi.init_sharded(Tiny(), key=KEY, group=mx.distributed.init()))
    assert plain.keys() == twin.keys()
    for k in ("embed.weight", "proj.weight"):  # the rest keeps each Tiny()'s own init
        assert mx.array_equal(plain[k], twin[k]).item(), k


@pytest.mark.parametrize("dim, size", [(10, 3), (7, 4), (3, 4), (12, 5), (16, 4)])
@pytest.mark.parametrize("segments", [1, [0.5]])
def test_balanced_ranges_follow_numpy_array_split(dim, size, segments):
    cuts = [0, dim] if segments == 1 else [0, int(0.5 * dim), dim]
    for rank in range(size):
        want = np.concatenate([np.array_split(np.arange(lo, hi), size)[rank]
                               for lo, hi in zip(cuts[:-1], cuts[1:])])
        got = [np.arange(lo, lo + n) for lo, n in mfi.shard_ranges(dim, rank, size, segments, balanced=True)]
        np.testing.assert_array_equal(np.concatenate(got), want)


@pytest.mark.parametrize("axis", [0, 1])
def test_balanced_shards_concatenate_to_the_full_weight(axis):
    full_shape = (10, 7)
    init = mfi.glorot_uniform()
    full = init(mx.zeros(full_shape), key=KEY)
    pieces = [mfi.shard(init, axis, rank=r, size=3, balanced=True)(mx.zeros(full_shape), key=KEY)
              for r in range(3)]
    assert [p.shape[axis] for p in pieces] == [len(s) for s in np.array_split(np.arange(full_shape[axis]), 3)]
    assert mx.array_equal(mx.concatenate(pieces, axis=axis), full).item()
