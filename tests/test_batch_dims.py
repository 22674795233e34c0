"""batch_dims: stacked matrices (mixture-of-experts weights) get the fans of
one matrix; init_model applies it to stacked-expert layers."""

import math

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

import mlx_fused_init as mfi
from conftest import params

KEY = mx.random.key(3)
E, OUT, IN = 8, 128, 256


def eq(a, b) -> bool:
    return mx.array_equal(a, b).item()


@pytest.mark.parametrize("factory", [mfi.he_normal, mfi.he_uniform])
def test_he_on_stacked_experts_is_he_on_one_expert(factory):
    # (E, OUT, IN) and (E*OUT, IN) share the stream and, with batch_dims=1,
    # fan_in = IN: the same bits. Without batch_dims MLX's rule reads OUT as a
    # receptive field (fan_in = OUT*IN), 11x too small for these shapes.
    init = factory()
    stacked = init(mx.zeros((E, OUT, IN)), key=KEY, batch_dims=1)
    flat = init(mx.zeros((E * OUT, IN)), key=KEY)
    assert eq(stacked.reshape(E * OUT, IN), flat)
    plain = init(mx.zeros((E, OUT, IN)), key=KEY)
    ratio = np.std(np.array(stacked)) / np.std(np.array(plain))
    assert abs(ratio - math.sqrt(OUT)) < 0.05 * math.sqrt(OUT)


@pytest.mark.parametrize("factory, law", [
    (mfi.glorot_normal, lambda std: mfi.normal(0.0, std)),
    (mfi.glorot_uniform, lambda std: mfi.uniform(-std * math.sqrt(3), std * math.sqrt(3))),
])
def test_glorot_fans_come_from_the_matrix(factory, law):
    std = math.sqrt(2.0 / (OUT + IN))
    got = factory()(mx.zeros((E, OUT, IN)), key=KEY, batch_dims=1)
    assert eq(got, law(std)(mx.zeros((E, OUT, IN)), key=KEY))


def test_two_batch_dims_and_receptive_fields():
    # (2, 3, out=4, k=5, in=6): fans of (4, 5, 6) are in 30, out 20.
    got = mfi.glorot_normal()(mx.zeros((2, 3, 4, 5, 6)), key=KEY, batch_dims=2)
    assert eq(got, mfi.normal(0.0, math.sqrt(2.0 / 50))(mx.zeros((2, 3, 4, 5, 6)), key=KEY))


def test_windows_and_shards_keep_working():
    full = mfi.he_normal()(mx.zeros((E, OUT, IN)), key=KEY, batch_dims=1)
    window = mfi.he_normal()(mx.zeros((3, 40, IN)), key=KEY, batch_dims=1,
                             full_shape=(E, OUT, IN), start=(2, 10, 0))
    assert eq(window, full[2:5, 10:50])
    for rank in range(4):  # experts split over 4 ranks
        piece = mfi.shard(mfi.he_normal(), axis=0, rank=rank, size=4)(
            mx.zeros((E, OUT, IN)), key=KEY, batch_dims=1)
        assert eq(piece, full[2 * rank:2 * rank + 2])


@pytest.mark.parametrize("value, exc, match", [
    (2, ValueError, r"\[he_normal\] .*at least 2 dimensional.*after 2 batch dimensions"),
    (4, ValueError, r"\[he_normal\] batch_dims must be in \[0, 3\]"),
    (-1, ValueError, r"\[he_normal\] batch_dims must be in"),
    (True, TypeError, r"\[he_normal\] batch_dims must be an int"),
    (1.0, TypeError, r"\[he_normal\] batch_dims must be an int"),
])
def test_bad_batch_dims(value, exc, match):
    with pytest.raises(exc, match=match):
        mfi.he_normal()(mx.zeros((E, OUT, IN)), batch_dims=value, key=KEY)


class SwitchLinear(nn.Module):
    """Stands in for mlx_lm.models.switch_layers.SwitchLinear (same name,
    same parameter shapes): init_model recognizes it by class name."""

    def __init__(self, in_dims, out_dims, experts):
        super().__init__()
        self.weight = mx.zeros((experts, out_dims, in_dims))
        self.bias = mx.zeros((experts, out_dims))


class MoE(nn.Module):
    def __init__(self):
        super().__init__()
        self.router = nn.Linear(IN, E, bias=False)
        self.experts = SwitchLinear(IN, OUT, E)


def test_init_model_draws_stacked_experts_per_expert():
    p = params(mfi.init_model(MoE(), mfi.he_normal(), key=KEY))
    q = mfi.param_subsequence("experts.weight")
    want = mfi.he_normal()(mx.zeros((E * OUT, IN)), key=KEY, subsequence=q)
    assert eq(p["experts.weight"].reshape(E * OUT, IN), want)
    # The (experts, out) bias is a stack of vectors, not a weight.
    assert not np.any(np.array(p["experts.bias"]))


def test_the_rule_extends_to_other_class_names(monkeypatch):
    class MyExperts(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = mx.zeros((E, OUT, IN))

    m = nn.Module()
    m.moe = MyExperts()
    plain = params(mfi.init_model(m, mfi.he_normal(), key=KEY))["moe.weight"]
    monkeypatch.setattr(mfi.model, "stacked_expert_layers", {"SwitchLinear", "MyExperts"})
    stacked = params(mfi.init_model(m, mfi.he_normal(), key=KEY))["moe.weight"]
    assert abs(np.std(np.array(stacked)) - 1 / math.sqrt(IN)) < 0.01 / math.sqrt(IN)
    assert abs(np.std(np.array(plain)) - 1 / math.sqrt(OUT * IN)) < 0.01 / math.sqrt(OUT * IN)
