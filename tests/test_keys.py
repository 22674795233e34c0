"""The key drawn from MLX's global state is the key a stock call would use."""

import mlx.core as mx
import numpy as np

import mlx_fused_init as mfi


def test_next_key_is_the_key_of_the_next_stock_call():
    mx.random.seed(2024)
    key = mfi.next_key()
    after_ours = mx.random.normal((16,))  # the state moved on by one call
    mx.random.seed(2024)
    stock_first = mx.random.normal((16,))
    stock_second = mx.random.normal((16,))
    # The key reproduces the stock call it replaced...
    assert mx.array_equal(mx.random.normal((16,), key=key), stock_first).item()
    # ...and the state advanced exactly once.
    assert mx.array_equal(after_ours, stock_second).item()


def test_next_key_matches_split_of_seed_key():
    mx.random.seed(7)
    key = mfi.next_key()
    expected = mx.random.split(mx.random.key(7))[1]
    np.testing.assert_array_equal(np.array(key), np.array(expected))


def test_next_key_under_compile_with_random_state():
    state = mx.random.state

    @mx.compile
    def fn():
        return mfi.next_key()

    compiled = mx.compile(lambda: mfi.next_key(), inputs=state, outputs=state)
    mx.random.seed(3)
    eager = [np.array(mfi.next_key()) for _ in range(3)]
    mx.random.seed(3)
    traced = [np.array(compiled()) for _ in range(3)]
    for e, t in zip(eager, traced):
        np.testing.assert_array_equal(e, t)
    assert not np.array_equal(traced[0], traced[1])
