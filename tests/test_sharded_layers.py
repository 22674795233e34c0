"""Issue 17, items 1-6: quantized layers recognized by what they hold,
rules that match MLX's sharded counterparts of nn.Linear, MLX's segments
as split indices, templates that must explain every shard, and recipes
that mean the same at any depth."""

import warnings

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.nn.layers.distributed import _split, shard_linear
from mlx.utils import tree_unflatten

import mlx_fused_init as mfi
from conftest import MLX_LM_MISSING, Rank, params

KEY = mx.random.key(23)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.Linear(64, 128)
        self.down = nn.Linear(128, 64)


def sharded_mlp(rank, size, quantize=False):
    m = MLP()
    if quantize:
        nn.quantize(m, group_size=32, bits=4)
    m.up = shard_linear(m.up, "all-to-sharded", group=Rank(rank, size))
    m.down = shard_linear(m.down, "sharded-to-all", group=Rank(rank, size))
    return m


# Item 1 ----------------------------------------------------------------------

@pytest.mark.parametrize("call", ["init_model", "init_sharded"])
def test_quantized_sharded_layers_are_left_alone_with_a_warning(call):
    m = sharded_mlp(0, 2, quantize=True)
    assert type(m.up).__name__ == "QuantizedAllToShardedLinear"
    before = params(m)
    with pytest.warns(UserWarning, match=r"skipped the parameters of quantized layers.*up\.weight"
                                         r".*up\.scales.*down\.weight"):
        if call == "init_model":
            mfi.init_model(m, mfi.recipes.llama(), key=KEY)
        else:
            mfi.init_sharded(m, mfi.recipes.llama(), key=KEY, rank=0, size=2)
    after = params(m)
    for path, w in before.items():
        assert after[path].dtype == w.dtype and mx.array_equal(after[path], w).item(), path
    mx.eval(m.up(mx.zeros((1, 64))))  # still works: quantized_matmul needs the uint32 weight


def test_any_layer_holding_a_packed_weight_and_scales_counts_as_quantized():
    class MyQuantized(nn.Module):  # a class no list of names knows
        def __init__(self):
            super().__init__()
            self.weight, self.scales, self.biases = mx.quantize(mx.ones((8, 64)), 32, 4)

    m = nn.Sequential(MyQuantized(), nn.Linear(4, 4))
    with pytest.warns(UserWarning, match=r"layers\.0\.weight"):
        mfi.init_model(m, key=KEY)
    assert m.layers[0].weight.dtype == mx.uint32


# Item 2 ----------------------------------------------------------------------

@pytest.mark.parametrize("size", [2, 4])
@pytest.mark.parametrize("recipe", ["llama", "olmo2"])
def test_recipes_match_mlx_sharded_linear_layers(size, recipe):
    rules = getattr(mfi.recipes, recipe)()
    plain = params(mfi.init_model(MLP(), rules, key=KEY))
    for rank in range(size):
        m = sharded_mlp(rank, size)
        mfi.init_sharded(m, rules, key=KEY, rank=rank, size=size)
        want = MLP()
        want.update(tree_unflatten(list(plain.items())))
        want.up = shard_linear(want.up, "all-to-sharded", group=Rank(rank, size))
        want.down = shard_linear(want.down, "sharded-to-all", group=Rank(rank, size))
        for path, w in params(want).items():
            assert mx.array_equal(params(m)[path], w).item(), (recipe, rank, path)
    # The recipe's law, not MLX's own init (U(-1/8, 1/8): std 0.072); 8192
    # draws: the sample std is within 2% (5 standard errors) of 0.02, or of
    # 0.0197 for OLMo 2's normal truncated at 3 sigma.
    want_std = 0.02 if recipe == "llama" else 0.02 * 0.98658
    assert abs(np.std(np.array(plain["up.weight"])) / want_std - 1) < 0.04


def test_class_rules_match_sharded_counterparts_in_init_model():
    m = sharded_mlp(1, 2)
    mfi.init_model(m, [(nn.Linear, mfi.ones())], key=KEY)
    for path, w in params(m).items():
        assert np.all(np.array(w) == 1.0), path
    # A subclass of nn.Linear does not match MLX's sharded layers.
    class MyLinear(nn.Linear):
        pass

    m = sharded_mlp(1, 2)
    before = params(m)
    mfi.init_model(m, [(MyLinear, mfi.ones())], key=KEY)
    assert all(mx.array_equal(w, before[p]).item() for p, w in params(m).items())


# Item 3 ----------------------------------------------------------------------

SEGMENTS = [1, 2, 3, [0.25, 0.5], [1 / 3, 2 / 3], [4, 8], [8, 4], [4, 30], [-4], [0, 12],
            [0.5], [12], [-100, 6], [2, 2, 6]]


@pytest.mark.parametrize("segments", SEGMENTS, ids=str)
@pytest.mark.parametrize("size", [1, 2])
def test_shard_ranges_follow_mlx_split_exactly(segments, size):
    """Indices or fractions, reversed, clamped, negative: whatever MLX's
    _split does to an axis of 12 (or of 24), shard_ranges says the same."""
    for dim in (12, 24):
        axis = mx.arange(dim)
        try:
            parts = _split(axis, segments, 0)
            theirs = np.array(mx.concatenate([_split(p, size, 0)[r] for p in parts for r in [0]]
                                             if size == 1 else
                                             [_split(p, size, 0)[0] for p in parts]))
        except ValueError:  # MLX refuses (unequal parts): so must we
            with pytest.raises(ValueError):
                mfi.shard_ranges(dim, 0, size, segments)
            continue
        for rank in range(size):
            theirs = np.array(mx.concatenate([_split(p, size, 0)[rank] for p in parts]))
            ranges = mfi.shard_ranges(dim, rank, size, segments)
            assert all(n >= 0 for _, n in ranges), ranges
            ours = np.concatenate([np.arange(lo, lo + n) for lo, n in ranges] + [np.zeros(0, int)])
            np.testing.assert_array_equal(ours, theirs)


def test_issue_example_of_split_indices():
    assert mfi.shard_ranges(12, 0, 2, segments=[4, 8]) == [(0, 2), (4, 2), (8, 2)]
    assert mfi.shard_ranges(12, 1, 2, segments=[4, 8]) == [(2, 2), (6, 2), (10, 2)]


@pytest.mark.parametrize("segments, exc", [([], ValueError), ([4, 0.5], TypeError),
                                           (True, TypeError), (["a"], TypeError)])
def test_bad_segments(segments, exc):
    with pytest.raises(exc, match=r"\[shard\] segments"):
        mfi.shard_ranges(12, 0, 2, segments)


def test_shard_with_split_indices_equals_mlx_shard_inplace():
    full = mfi.normal()(mx.zeros((12, 4)), key=KEY)
    for rank in range(2):
        want = mx.concatenate([_split(p, 2, 0)[rank] for p in _split(full, [4, 8], 0)])
        got = mfi.shard(mfi.normal(), 0, rank=rank, size=2, segments=[4, 8])(
            mx.zeros((12, 4)), key=KEY)
        assert mx.array_equal(got, want).item()


# Item 5 ----------------------------------------------------------------------

def tiny_llama(vocab):
    from mlx_lm.models import llama

    return llama.Model(llama.ModelArgs(
        model_type="llama", hidden_size=32, num_hidden_layers=1, intermediate_size=64,
        num_attention_heads=4, num_key_value_heads=4, rms_norm_eps=1e-5, vocab_size=vocab,
        tie_word_embeddings=False))


def test_a_wrong_template_is_refused_even_when_a_ratio_equals_the_group_size():
    pytest.importorskip("mlx_lm", reason=MLX_LM_MISSING)
    model = tiny_llama(96)
    model.shard(Rank(0, 2))
    with pytest.raises(ValueError, match=r"model.embed_tokens.weight is not sharded by the "
                                         r"template's shard\(\) \(it is replicated.*the model "
                                         r"has \(96, 32\), the template \(192, 32\)"):
        mfi.init_sharded(model, key=KEY, rank=0, size=2, full=tiny_llama(192))


def test_a_shard_the_template_does_not_make_is_refused():
    pytest.importorskip("mlx_lm", reason=MLX_LM_MISSING)
    model = tiny_llama(96)
    model.shard(Rank(0, 4))  # a world of 4, but init_sharded told 2
    with pytest.raises(ValueError, match=r"q_proj.weight: the template's shard\(\) gives rank 0 "
                                         r"of 2 shape \(16, 32\), but the model holds shape \(8, 32\)"):
        mfi.init_sharded(model, key=KEY, rank=0, size=2, full=tiny_llama(96))


def test_the_probe_leaves_the_global_random_state_alone():
    pytest.importorskip("mlx_lm", reason=MLX_LM_MISSING)
    model, template = tiny_llama(96), tiny_llama(96)  # building a model draws its own init
    model.shard(Rank(1, 2))
    mx.random.seed(8)
    mfi.init_sharded(model, key=KEY, rank=1, size=2, full=template)
    after = mx.random.normal((4,))
    mx.random.seed(8)
    assert mx.array_equal(mx.random.normal((4,)), after).item()


# Item 6 ----------------------------------------------------------------------

@pytest.mark.parametrize("recipe", ["llama", "olmo2", "gpt2"])
def test_recipes_mean_the_same_at_the_top_level(recipe):
    rules = mfi.recipes.gpt2(2) if recipe == "gpt2" else getattr(mfi.recipes, recipe)()
    top = params(mfi.init_model(nn.LayerNorm(4), rules, key=KEY))
    assert np.all(np.array(top["weight"]) == 1.0) and np.all(np.array(top["bias"]) == 0.0)
    lin = params(mfi.init_model(nn.Linear(64, 64), rules, key=KEY))
    nested = params(mfi.init_model(nn.Sequential(nn.Linear(64, 64)), rules, key=KEY))
    assert np.all(np.array(lin["bias"]) == 0.0)
    assert np.all(np.array(nested["layers.0.bias"]) == 0.0)
    # 4096 draws, std 0.02 (0.0197 for olmo2): the stock init's is 0.072.
    assert 0.018 < np.std(np.array(lin["weight"])) < 0.022


def test_path_patterns_match_top_level_parameters():
    m = nn.Linear(3, 3)
    mfi.init_model(m, {"*.bias": mfi.constant(5.0), "*.weight": mfi.ones()}, key=KEY)
    assert np.all(np.array(m.bias) == 5.0) and np.all(np.array(m.weight) == 1.0)
