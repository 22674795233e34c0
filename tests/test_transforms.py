"""Graph behaviour: mx.compile (with random state, shapeless, CSE), mx.grad."""

import mlx.core as mx
import numpy as np
import pytest

import mlx_fused_init as mfi


def test_compile_with_random_state_matches_eager():
    init = mfi.glorot_normal()
    state = mx.random.state

    def fn(a):
        return init(a) * 1.0

    compiled = mx.compile(fn, inputs=state, outputs=state)
    a = mx.zeros((8, 8))
    if mfi.backend_info()["backend"] == "portable":
        # Eager CPU draws cannot read a traced key: a clear error. (MLX
        # leaves its random state unusable after any exception inside a
        # compiled function that takes it; reseeding repairs it.)
        try:
            with pytest.raises(ValueError, match=r"\[glorot_normal\] portable mode computes "
                               r"CPU draws when they are called, so it cannot draw from a key "
                               r"that mx.compile or mx.vmap is tracing"):
                compiled(a)
        finally:
            mx.random.seed(0)
        return
    mx.random.seed(10)
    eager = [fn(a) for _ in range(3)]
    mx.random.seed(10)
    traced = [compiled(a) for _ in range(3)]
    for e, t in zip(eager, traced):
        assert mx.array_equal(e, t).item()
    assert not mx.array_equal(traced[0], traced[1]).item()


def test_shapeless_compile():
    key = mx.random.key(4)
    init = mfi.glorot_normal()

    def fn(a):
        return init(mx.zeros((16, 8)), key=key) + a

    compiled = mx.compile(fn, shapeless=True)
    x = mx.zeros((16, 8))
    assert mx.array_equal(compiled(x), fn(x)).item()
    y = mx.ones((16, 8))
    assert mx.array_equal(compiled(y), fn(y)).item()


def test_same_key_different_shapes_are_not_merged_by_compile():
    key = mx.random.key(5)
    init = mfi.glorot_normal()

    def fn():
        a = init(mx.zeros((4, 4)), key=key)
        b = init(mx.zeros((2, 8)), key=key)  # same key, same element count
        c = init(mx.zeros((4, 4)), 2.0, key=key)  # same key and shape, other scale
        d = mfi.glorot_normal(mx.float16)(mx.zeros((4, 4)), key=key)
        return a, b, c, d

    a, b, c, d = mx.compile(fn)()
    ea, eb, ec, ed = fn()
    for got, want in ((a, ea), (b, eb), (c, ec), (d, ed)):
        assert got.shape == want.shape and got.dtype == want.dtype
        assert mx.array_equal(got, want).item()
    assert b.shape == (2, 8) and d.dtype == mx.float16
    # glorot's sigma differs for (4, 4) and (2, 8): not merged.
    assert not np.allclose(np.array(a).ravel(), np.array(b).ravel())
    np.testing.assert_allclose(np.array(c), 2 * np.array(a), rtol=1e-6)


def test_identical_calls_may_be_shared():
    key = mx.random.key(6)
    init = mfi.glorot_normal()
    out = mx.compile(lambda: (init(mx.zeros((4, 4)), key=key), init(mx.zeros((4, 4)), key=key)))()
    assert mx.array_equal(out[0], out[1]).item()


def test_grad_through_a_caller():
    init = mfi.glorot_normal()
    key = mx.random.key(8)

    def loss(x):
        w = init(mx.zeros((4, 3)), key=key)
        return ((w @ x) ** 2).sum()

    x = mx.ones((3,))
    g = mx.grad(loss)(x)
    w = init(mx.zeros((4, 3)), key=key)
    np.testing.assert_allclose(np.array(g), np.array(2 * w.T @ (w @ x)), rtol=1e-5)


def test_grad_with_respect_to_the_key_is_zero_not_a_crash():
    def f(key):
        return mfi.glorot_normal()(mx.zeros((3, 3)), key=key).sum()

    vjp_out = mx.vjp(f, [mx.random.key(0)], [mx.array(1.0)])[1][0]
    assert vjp_out.shape == (2,)
    assert not np.any(np.array(vjp_out))


def test_export_function_fails_with_a_clear_error(tmp_path):
    def fn(a):
        return mfi.glorot_normal()(a, key=mx.random.key(0))

    path = str(tmp_path / "f.mlxfn")
    if mfi.backend_info()["backend"] == "portable":
        # An eager draw with a concrete key is a constant of the exported
        # graph: the function exports, and gives that draw back.
        mx.export_function(path, fn, mx.zeros((2, 2)))
        (got,) = mx.import_function(path)(mx.zeros((2, 2)))
        assert mx.array_equal(got, fn(mx.zeros((2, 2)))).item()
        return
    with pytest.raises(Exception, match="FusedInit"):
        mx.export_function(path, fn, mx.zeros((2, 2)))


def test_jvp_through_an_initializer_is_zero():
    def f(key):
        return mfi.glorot_normal()(mx.zeros((3, 4)), key=key)

    out, tangent = mx.jvp(f, [mx.random.key(0)], [mx.zeros((2,), dtype=mx.uint32)])
    assert tangent[0].shape == (3, 4) and tangent[0].dtype == mx.float32
    assert not np.any(np.array(tangent[0]))
    assert mx.array_equal(out[0], f(mx.random.key(0))).item()
