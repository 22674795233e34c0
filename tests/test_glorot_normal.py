"""Parity with mlx.nn.init.glorot_normal: call shape, fans, dtypes, state."""

import gc
import inspect
import math
import threading

import mlx.core as mx
import mlx.nn.init as stock
import numpy as np
import pytest

import mlx_fused_init as mfi
from conftest import to_numpy


def test_factory_signature_matches_stock():
    ours = inspect.signature(mfi.glorot_normal)
    theirs = inspect.signature(stock.glorot_normal)
    assert list(ours.parameters) == list(theirs.parameters) == ["dtype"]
    assert ours.parameters["dtype"].default == theirs.parameters["dtype"].default


def test_initializer_call_shape():
    params = inspect.signature(mfi.glorot_normal()).parameters
    assert list(params)[:2] == ["a", "gain"]
    assert params["gain"].default == 1.0
    assert params["key"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["stream"].kind is inspect.Parameter.KEYWORD_ONLY


@pytest.mark.parametrize("dtype", [mx.float32, mx.float16, mx.bfloat16])
@pytest.mark.parametrize("shape", [(2, 3), (16, 8, 3, 3), (5, 1, 7)])
def test_shape_and_dtype_like_stock(shape, dtype):
    a = mx.ones(shape, dtype=mx.int32)  # the input's dtype and values are ignored
    ours = mfi.glorot_normal(dtype)(a)
    theirs = stock.glorot_normal(dtype)(a)
    assert ours.shape == theirs.shape == shape
    assert ours.dtype == theirs.dtype == dtype


def test_default_dtype_is_float32():
    assert mfi.glorot_normal()(mx.zeros((4, 4))).dtype == mx.float32


def test_input_values_are_never_read():
    key = mx.random.key(1)
    a = mfi.glorot_normal()(mx.zeros((9, 9)), key=key)
    b = mfi.glorot_normal()(mx.full((9, 9), float("nan")), key=key)
    assert mx.array_equal(a, b).item()


@pytest.mark.parametrize(
    "shape",
    [(512, 256), (64, 3, 3, 128), (200, 10, 50)],
)
def test_sample_std_follows_the_fans(shape):
    # Same fans as mlx.nn.init: compare the sample std with stock's formula.
    rf = math.prod(shape[1:-1])
    sigma = math.sqrt(2.0 / (shape[-1] * rf + shape[0] * rf))
    gain = 1.5
    w = to_numpy(mfi.glorot_normal()(mx.zeros(shape), gain, key=mx.random.key(9)))
    n = w.size
    # The sample std of n normal draws has sd sigma / sqrt(2n); 6 sd keeps a
    # correct kernel from ever failing (p < 1e-8), while a wrong fan (off by
    # a factor >= 1.1 for these shapes) is hundreds of sd away.
    assert abs(w.std() - gain * sigma) <= 6 * gain * sigma / math.sqrt(2 * n)
    # And the stock initializer agrees on the same target.
    s = np.array(stock.glorot_normal()(mx.zeros(shape), gain))
    assert abs(s.std() - gain * sigma) <= 6 * gain * sigma / math.sqrt(2 * n)


def test_positional_and_keyword_gain():
    key = mx.random.key(2)
    a = mx.zeros((32, 32))
    by_pos = mfi.glorot_normal()(a, 2.0, key=key)
    by_kw = mfi.glorot_normal()(a, gain=2.0, key=key)
    unit = mfi.glorot_normal()(a, key=key)
    assert mx.array_equal(by_pos, by_kw).item()
    np.testing.assert_allclose(np.array(by_pos), 2.0 * np.array(unit), rtol=1e-6)


@pytest.mark.parametrize("shape", [(3,), ()])
def test_less_than_two_dims_raises_like_stock(shape):
    with pytest.raises(ValueError, match="at least 2 dimensional"):
        stock.glorot_normal()(mx.zeros(shape))
    with pytest.raises(ValueError, match=r"\[glorot_normal\].*at least 2 dimensional"):
        mfi.glorot_normal()(mx.zeros(shape))


def test_zero_sized_weight_gives_empty_array():
    w = mfi.glorot_normal()(mx.zeros((0, 0)))
    mx.eval(w)
    assert w.shape == (0, 0)


def test_seed_makes_calls_reproducible():
    init = mfi.glorot_normal()
    a = mx.zeros((16, 16))
    mx.random.seed(1234)
    first = [init(a), init(a)]
    mx.random.seed(1234)
    second = [init(a), init(a)]
    for x, y in zip(first, second):
        assert mx.array_equal(x, y).item()


def test_successive_calls_differ():
    init = mfi.glorot_normal()
    a = mx.zeros((16, 16))
    x, y = init(a), init(a)
    assert not mx.array_equal(x, y).item()


def test_explicit_key_ignores_and_keeps_the_global_state():
    init = mfi.glorot_normal()
    a = mx.zeros((8, 8))
    key = mx.random.key(77)
    mx.random.seed(5)
    before = mx.random.state[0]
    x = init(a, key=key)
    assert mx.array_equal(mx.random.state[0], before).item()
    mx.random.seed(6)
    y = init(a, key=key)
    assert mx.array_equal(x, y).item()


def test_same_global_key_as_a_stock_call():
    # After seeding, our first call uses the key the stock call would have
    # used: both draw from split(seed_key)[1].
    a = mx.zeros((8, 8))
    mx.random.seed(99)
    ours = mfi.glorot_normal()(a)
    expected_key = mx.random.split(mx.random.key(99))[1]
    assert mx.array_equal(ours, mfi.glorot_normal()(a, key=expected_key)).item()


def test_threads_follow_their_own_state():
    # MLX's Python PRNG state is thread-local: seeding in a thread gives the
    # same sequence as seeding in the main thread, whatever the others do.
    a = mx.zeros((8, 8))
    results = {}

    def work(tag, seed):
        mx.random.seed(seed)
        results[tag] = np.array(mfi.glorot_normal()(a, stream=mx.cpu))

    threads = [threading.Thread(target=work, args=(i, 100 + i % 2)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    mx.random.seed(100)
    main0 = np.array(mfi.glorot_normal()(a))
    np.testing.assert_array_equal(results[0], main0)
    np.testing.assert_array_equal(results[0], results[2])
    np.testing.assert_array_equal(results[1], results[3])
    assert not np.array_equal(results[0], results[1])


def test_numpy_array_input_uses_its_shape():
    w = mfi.glorot_normal()(np.zeros((3, 4)), key=mx.random.key(0))
    assert w.shape == (3, 4)


def test_lazy_until_evaluated():
    gc.collect()  # no earlier test's arrays freed in the middle of this one
    gc.disable()
    try:
        mx.eval(mx.zeros(1))
        mx.synchronize()  # buffers of earlier ops are freed by queued tasks
        before = mx.get_active_memory()
        w = mfi.glorot_normal()(mx.zeros((2048, 2048)), key=mx.random.key(0), stream=mx.cpu)
        if mfi.backend_info()["backend"] == "portable":
            # Portable mode's CPU draws are eager (docs/portable.md).
            assert mx.get_active_memory() - before >= w.nbytes
            return
        # Building the node allocates nothing; evaluating allocates the output.
        assert mx.get_active_memory() - before < 1 << 20
        mx.eval(w)
        assert mx.get_active_memory() - before >= w.nbytes
    finally:
        gc.enable()
