"""perturb_model: every floating parameter perturbed by its own path's
noise (init_model's subsequence), quantized and integer parameters left
alone, modules and bare trees alike (docs/zo.md)."""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten

import mlx_fused_init as mfi
from conftest import Tiny, bits, params

KEY = mx.random.key(11)


class Twins(nn.Module):
    """Two layers of one shape with the same values: only their paths differ."""

    def __init__(self):
        super().__init__()
        self.left = nn.Linear(16, 16)
        self.right = nn.Linear(16, 16)
        self.right.update(self.left.parameters())
        self.stack = [nn.Linear(16, 8), nn.RMSNorm(8)]


def expected(path, w, scale, key=KEY, weight_scale=1.0):
    return mfi.perturb(w, scale, key=key, subsequence=mfi.param_subsequence(path),
                       weight_scale=weight_scale)


@pytest.mark.parametrize("weight_scale", [1.0, 0.75])
def test_module_matches_perturb_per_parameter(weight_scale):
    model = Twins()
    mx.eval(model.parameters())
    before = params(model)
    new = dict(tree_flatten(mfi.perturb_model(model, 0.01, key=KEY, weight_scale=weight_scale)))
    assert new.keys() == before.keys()  # tree_flatten's paths, list indices included
    assert "stack.0.weight" in new and "stack.1.weight" in new
    for path, w in before.items():
        want = expected(path, w, 0.01, weight_scale=weight_scale)
        assert np.array_equal(bits(new[path]), bits(want)), path
        assert not np.array_equal(bits(new[path]), bits(w)), path  # every one moved
    # The module itself is not modified: the caller applies the result.
    assert all(before[p] is a for p, a in tree_flatten(model.parameters()))


def test_the_noise_is_the_standard_normal_stream_of_the_path():
    # (new - w) / scale is normal(0, 1) of the path's subsequence, up to the
    # float32 rounding of w + scale*z (scale 2^-4 keeps z's bits: the
    # difference is exact to ~1e-6). A uniform transform, or any other
    # subsequence, would be off by O(1).
    model = Tiny()
    mx.eval(model.parameters())
    scale = 2.0 ** -4
    new = dict(tree_flatten(mfi.perturb_model(model, scale, key=KEY)))
    for path, w in params(model).items():
        z = mfi.normal(0.0, 1.0)(w, key=KEY, subsequence=mfi.param_subsequence(path))
        np.testing.assert_allclose(np.array((new[path] - w) / scale), np.array(z), atol=1e-5,
                                   err_msg=path)


def test_the_noise_depends_on_the_path():
    # left and right hold the same values and shapes: if the subsequence
    # ignored the path (e.g. 0 for every parameter), they would stay equal.
    model = Twins()
    mx.eval(model.parameters())
    assert mx.array_equal(model.left.weight, model.right.weight)
    new = mfi.perturb_model(model, 0.1, key=KEY)
    for name in ("weight", "bias"):
        a, b = new["left"][name], new["right"][name]
        assert not np.array_equal(bits(a), bits(b)), name
    # ...and only on the path: the same parameter in a different model.
    other = nn.Module()
    other.left = model.left
    assert np.array_equal(bits(mfi.perturb_model(other, 0.1, key=KEY)["left"]["weight"]),
                          bits(new["left"]["weight"]))


def test_the_key_matters():
    model = Tiny()
    a = mfi.perturb_model(model, 0.1, key=mx.random.key(1))["proj"]["weight"]
    b = mfi.perturb_model(model, 0.1, key=mx.random.key(2))["proj"]["weight"]
    assert not mx.array_equal(a, b)


def test_tree_and_module_agree_and_keep_structure():
    model = Twins()
    tree = model.parameters()
    from_tree = mfi.perturb_model(tree, 0.05, key=KEY)
    from_model = mfi.perturb_model(model, 0.05, key=KEY)
    assert isinstance(from_tree["stack"], list) and isinstance(from_tree, dict)
    a, b = dict(tree_flatten(from_tree)), dict(tree_flatten(from_model))
    assert a.keys() == b.keys()
    for path in a:
        assert np.array_equal(bits(a[path]), bits(b[path])), path
    # A subtree's paths are relative to it: the same noise as a model of it.
    sub = mfi.perturb_model(model.stack[0].parameters(), 0.05, key=KEY)
    assert np.array_equal(bits(sub["weight"]),
                          bits(expected("weight", model.stack[0].weight, 0.05, weight_scale=1.0)))
    # Tuples stay tuples, lists lists.
    t = mfi.perturb_model({"pair": (mx.ones((2, 2)), mx.ones((3,)))}, 0.5, key=KEY)
    assert isinstance(t["pair"], tuple) and t["pair"][1].shape == (3,)
    assert np.array_equal(bits(t["pair"][0]), bits(expected("pair.0", mx.ones((2, 2)), 0.5)))


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
def test_dtypes_are_kept(dtype):
    model = Tiny()
    model.set_dtype(dtype)
    new = dict(tree_flatten(mfi.perturb_model(model, 0.01, key=KEY)))
    for path, w in params(model).items():
        assert new[path].dtype == dtype
        assert np.array_equal(bits(new[path]), bits(expected(path, w, 0.01))), path


class WithQuantized(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(8, 64)
        self.q = nn.Linear(64, 64)
        self.out = nn.Linear(64, 8)
        self.positions = mx.arange(5)  # an integer buffer
        self.mask = mx.array([True, False, True])


@pytest.mark.parametrize("as_tree", [False, True], ids=["module", "tree"])
def test_quantized_and_integer_parameters_are_untouched(as_tree):
    model = WithQuantized()
    nn.quantize(model, group_size=32, bits=4, class_predicate=lambda p, m: p == "q")
    assert isinstance(model.q, nn.QuantizedLinear)
    before = params(model)
    assert before["q.scales"].dtype == mx.float32  # floating, yet not to be perturbed
    new = dict(tree_flatten(mfi.perturb_model(model.parameters() if as_tree else model, 0.1,
                                              key=KEY)))
    untouched = {"q.weight", "q.scales", "q.biases", "q.bias", "positions", "mask"}
    assert untouched <= before.keys()
    for path, w in before.items():
        if path in untouched:
            assert new[path] is w, path
        else:
            assert np.array_equal(bits(new[path]), bits(expected(path, w, 0.1))), path


def test_only_what_is_given_is_perturbed():
    # A module: every parameter, frozen ones too; trainable_parameters():
    # only those.
    model = Tiny()
    model.norm.freeze()
    everything = dict(tree_flatten(mfi.perturb_model(model, 0.1, key=KEY)))
    trainable = dict(tree_flatten(mfi.perturb_model(model.trainable_parameters(), 0.1, key=KEY)))
    assert "norm.weight" in everything and "norm.weight" not in trainable
    assert not mx.array_equal(everything["norm.weight"], model.norm.weight)
    assert np.array_equal(bits(trainable["proj.weight"]), bits(everything["proj.weight"]))


def test_scale_zero_and_empty_models():
    model = Tiny()
    mx.eval(model.parameters())
    new = dict(tree_flatten(mfi.perturb_model(model, 0.0, key=KEY)))
    for path, w in params(model).items():
        assert mx.array_equal(new[path], w), path
    assert mfi.perturb_model(nn.ReLU(), 0.1, key=KEY) == {}
    assert mfi.perturb_model({}, 0.1, key=KEY) == {}


def test_applied_with_update_and_lazy():
    model = Tiny()
    mx.eval(model.parameters())
    want = expected("proj.weight", model.proj.weight, 0.2)
    model.update(mfi.perturb_model(model, 0.2, key=KEY))
    assert np.array_equal(bits(model.proj.weight), bits(want))


def test_errors_name_the_argument():
    model = Tiny()
    with pytest.raises(TypeError, match=r"\[perturb_model\] params_or_model must be an "
                                        r"mlx.nn.Module or a parameter tree.*got array"):
        mfi.perturb_model(mx.zeros((2, 2)), 0.1, key=KEY)
    with pytest.raises(TypeError, match=r"\[perturb_model\] params_or_model must be a tree of "
                                        r"mx.array, but the leaf at 'a.1' is float"):
        mfi.perturb_model({"a": [mx.zeros(2), 1.5]}, 0.1, key=KEY)
    with pytest.raises(ValueError, match=r"\[perturb_model\] scale must be finite, but got nan"):
        mfi.perturb_model(model, float("nan"), key=KEY)
    with pytest.raises(TypeError, match=r"\[perturb_model\] scale must be a real number"):
        mfi.perturb_model(model, "0.1", key=KEY)
    with pytest.raises(ValueError, match=r"\[perturb_model\] weight_scale must be finite"):
        mfi.perturb_model(model, 0.1, key=KEY, weight_scale=float("inf"))
    with pytest.raises(TypeError, match="key"):
        mfi.perturb_model(model, 0.1)  # the key is required: noise must be regenerable
    with pytest.raises(TypeError, match=r"\[perturb_model\] key must be an mx.array"):
        mfi.perturb_model(model, 0.1, key=0)
    with pytest.raises(ValueError, match=r"\[perturb_model\] key must be .*but got dtype "
                                         r"int32 and shape \(2,\)"):
        mfi.perturb_model(model, 0.1, key=mx.array([1, 2]))
    with pytest.raises(TypeError, match=r"\[perturb_model\] stream must be"):
        mfi.perturb_model(model, 0.1, key=KEY, stream="cpu")
    with pytest.raises(ValueError, match=r"\[perturb_model\] w: the dtype must be float32, "
                                         r"float16 or bfloat16 to be perturbed, but got "
                                         r"float64"):
        mfi.perturb_model({"w": mx.zeros((2,), dtype=mx.float64)}, 0.1, key=KEY)
