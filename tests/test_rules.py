"""init_model with rules, and the constant initializers they use for biases
and norms."""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

import mlx_fused_init as mfi
from conftest import Tiny, params

KEY = mx.random.key(9)


def eq(a, b) -> bool:
    return mx.array_equal(a, b).item()


def direct(init, path, shape):
    return init(mx.zeros(shape), key=KEY, subsequence=mfi.param_subsequence(path))


@pytest.mark.parametrize("as_list", [False, True])
def test_first_match_wins_and_none_leaves_alone(as_list):
    rules = {
        "proj.weight": mfi.normal(0.0, 0.5),
        "norm.*": mfi.ones(),
        "*.weight": mfi.glorot_normal(),  # embed.weight: proj.weight matched first
        "*.bias": mfi.zeros(),
    }
    rules = list(rules.items()) if as_list else rules
    p = params(mfi.init_model(Tiny(), rules, key=KEY))
    assert eq(p["proj.weight"], direct(mfi.normal(0.0, 0.5), "proj.weight", (16, 8)))
    assert eq(p["embed.weight"], direct(mfi.glorot_normal(), "embed.weight", (10, 8)))
    assert not np.any(np.array(p["proj.bias"]))
    assert np.all(np.array(p["norm.bias"]) == 1.0)  # "norm.*" came before "*.bias"
    assert np.all(np.array(p["norm.weight"]) == 1.0)


def test_norm_weight_needs_a_rule_before_the_weight_pattern():
    with pytest.raises(ValueError, match=r"\[glorot_normal\] .*at least 2 dimensional"):
        mx.eval(params(mfi.init_model(Tiny(), {"*.weight": mfi.glorot_normal()}, key=KEY)))


def test_class_patterns_match_the_owner():
    rules = [(nn.LayerNorm, mfi.ones()), (nn.Linear, None), ("*", mfi.normal(0.0, 0.02))]
    m = Tiny()
    old = params(m)
    p = params(mfi.init_model(m, rules, key=KEY))
    for name in ("norm.weight", "norm.bias"):  # the LayerNorm owns both
        assert np.all(np.array(p[name]) == 1.0)
    for name in ("proj.weight", "proj.bias"):  # None: left alone
        assert eq(p[name], old[name])
    assert eq(p["embed.weight"], direct(mfi.normal(0.0, 0.02), "embed.weight", (10, 8)))


def test_unmatched_parameters_are_left_alone():
    m = Tiny()
    old = params(m)
    p = params(mfi.init_model(m, {"embed.*": mfi.normal()}, key=KEY))
    for name in ("proj.weight", "proj.bias", "norm.weight", "norm.bias"):
        assert eq(p[name], old[name])
    assert not eq(p["embed.weight"], old["embed.weight"])


def test_changing_one_rule_never_changes_another_parameter():
    a = params(mfi.init_model(Tiny(), {"proj.weight": mfi.normal(), "*": None,
                                       "embed.weight": mfi.he_normal()}, key=KEY))
    b = params(mfi.init_model(Tiny(), [("proj.weight", mfi.uniform()),
                                       ("embed.weight", mfi.he_normal())], key=KEY))
    assert eq(a["embed.weight"], b["embed.weight"]) is False  # "*" came first in a
    c = params(mfi.init_model(Tiny(), [("embed.weight", mfi.he_normal()),
                                       ("proj.weight", mfi.normal())], key=KEY))
    assert eq(b["embed.weight"], c["embed.weight"])
    assert eq(a["proj.weight"], c["proj.weight"])
    assert not eq(b["proj.weight"], c["proj.weight"])


def test_filter_applies_before_rules():
    m = Tiny()
    old = params(m)
    p = params(mfi.init_model(m, {"*": mfi.normal()}, key=KEY,
                              filter=lambda path, mod, w: path.startswith("proj")))
    assert eq(p["embed.weight"], old["embed.weight"])
    assert not eq(p["proj.bias"], old["proj.bias"])


@pytest.mark.parametrize("rules, exc, match", [
    ({3: mfi.normal()}, TypeError, r"\[init_model\] rule 0: the pattern must be"),
    ({int: mfi.normal()}, TypeError, r"\[init_model\] rule 0: the pattern must be"),
    ([("*",)], TypeError, r"\[init_model\] rule 0 must be a \(pattern, initializer\) pair"),
    ({"*": nn.init.normal()}, TypeError, r"\[init_model\] \[rule '\*'\] initializer must be"),
])
def test_bad_rules(rules, exc, match):
    with pytest.raises(exc, match=match):
        mfi.init_model(Tiny(), rules, key=KEY)


@pytest.mark.parametrize("dtype", [mx.float32, mx.float16, mx.bfloat16])
def test_constants_are_drop_ins_for_mlx_constant(dtype):
    a = mx.zeros((3, 5))
    for ours, value in ((mfi.zeros(dtype), 0.0), (mfi.ones(dtype), 1.0),
                        (mfi.constant(-0.25, dtype), -0.25)):
        got = ours(a)
        want = nn.init.constant(value, dtype)(a)
        assert got.dtype == dtype and got.shape == (3, 5)
        assert eq(got, want)
        # The keywords init_model and shard pass change nothing.
        w = ours(mx.zeros((2, 5)), key=KEY, subsequence=7, full_shape=(3, 5), start=(1, 0),
                 batch_dims=1, stream=mx.cpu)
        assert eq(w, want[1:])


def test_constant_does_not_advance_the_global_state():
    mx.random.seed(4)
    a = mx.random.normal((4,))
    mx.random.seed(4)
    mfi.zeros()(mx.zeros((2, 2)))
    assert eq(mx.random.normal((4,)), a)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: mfi.constant(float("nan")), ValueError, r"\[constant\] value must be finite"),
    (lambda: mfi.constant("1"), TypeError, r"\[constant\] value must be a real number"),
    (lambda: mfi.zeros(mx.int32), ValueError, r"\[zeros\] dtype must be float32"),
    (lambda: mfi.ones()(mx.zeros((2,)), full_shape=(1,)), ValueError, r"\[ones\] the window"),
])
def test_constant_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
