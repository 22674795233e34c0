"""init_model: whole-model initialization, stable per parameter path."""


import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

import mlx_fused_init as mfi
from conftest import Tiny, params

KEY = mx.random.key(5)


def test_weights_depend_only_on_key_and_path():
    a = params(mfi.init_model(Tiny(), key=KEY))
    b = params(mfi.init_model(Tiny(extra=True), key=KEY))  # more parameters
    only_proj = params(mfi.init_model(Tiny(), key=KEY, filter=lambda p, m, w: p == "proj.weight"))
    for name in ("embed.weight", "proj.weight"):
        assert mx.array_equal(a[name], b[name]).item()
    assert mx.array_equal(a["proj.weight"], only_proj["proj.weight"]).item()
    # Different paths draw different (independent) streams.
    assert not mx.array_equal(a["embed.weight"][:8, :8], a["proj.weight"][:8, :8]).item()


def test_weight_equals_the_initializer_on_its_path_subsequence():
    m = params(mfi.init_model(Tiny(), key=KEY))
    q = mfi.param_subsequence("proj.weight")
    direct = mfi.glorot_normal()(mx.zeros((16, 8)), key=KEY, subsequence=q)
    assert mx.array_equal(m["proj.weight"], direct).item()


def test_param_subsequence_is_stable():
    # Pinned: changing the path hash would change every init_model weight
    # for users' saved keys. Value: SHA-256("proj.weight")[:8], little-endian.
    import hashlib
    digest = hashlib.sha256(b"proj.weight").digest()
    assert mfi.param_subsequence("proj.weight") == int.from_bytes(digest[:8], "little")
    assert mfi.param_subsequence("a") != mfi.param_subsequence("b")


def test_non_weights_are_left_alone_and_the_result_is_lazy():
    m = Tiny()
    before = {k: np.array(v) for k, v in params(m).items()}
    out = mfi.init_model(m, key=KEY)
    assert out is m
    after = {k: np.array(v) for k, v in params(m).items()}
    for name in ("proj.bias", "norm.weight", "norm.bias"):
        np.testing.assert_array_equal(before[name], after[name])
    assert not np.array_equal(before["proj.weight"], after["proj.weight"])


def test_global_state_draws_one_key_per_call():
    mx.random.seed(11)
    a = params(mfi.init_model(Tiny()))
    mx.random.seed(11)
    b = params(mfi.init_model(Tiny()))
    c = params(mfi.init_model(Tiny()))
    assert mx.array_equal(a["proj.weight"], b["proj.weight"]).item()
    assert not mx.array_equal(b["proj.weight"], c["proj.weight"]).item()


def test_quantized_layers_are_skipped_with_a_message():
    m = Tiny()
    m.proj = nn.QuantizedLinear(64, 64)
    with pytest.warns(UserWarning, match=r"\[init_model\] skipped.*proj.weight"):
        mfi.init_model(m, key=KEY)


def test_conv_and_attention_layers():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, kernel_size=3)
            self.attn = nn.MultiHeadAttention(16, 4)

    net = mfi.init_model(Net(), key=KEY)
    p = params(net)
    assert p["conv.weight"].shape == (8, 3, 3, 3)
    for name in ("attn.query_proj.weight", "attn.out_proj.weight"):
        assert p[name].shape == (16, 16)
    # conv fans: fan_in = 3 * 9, fan_out = 8 * 9 (MLX layout (out, kh, kw, in))
    sigma = (2 / (27 + 72)) ** 0.5
    direct = mfi.glorot_normal()(mx.zeros((8, 3, 3, 3)), key=KEY,
                                 subsequence=mfi.param_subsequence("conv.weight"))
    assert mx.array_equal(p["conv.weight"], direct).item()
    assert 0.5 * sigma < float(np.array(p["conv.weight"]).std()) < 1.5 * sigma


def test_argument_errors():
    with pytest.raises(TypeError, match=r"\[init_model\] model must be an mlx.nn.Module"):
        mfi.init_model(object(), key=KEY)
    with pytest.raises(TypeError, match=r"\[init_model\] initializer must be one of"):
        mfi.init_model(Tiny(), initializer=nn.init.glorot_normal(), key=KEY)
