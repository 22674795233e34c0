"""Keys: drawing one from MLX's global PRNG state, and checking given ones."""

import mlx.core as mx


def next_key() -> mx.array:
    """Return the key the next stock ``mx.random.*`` call would use.

    MLX's Python-level state (``mx.random.seed``, ``mx.random.state``) is
    thread-local and read-only from Python. A stock call without a key does
    ``state, key = split(state)`` and uses ``key``; this computes that same
    key, then advances the state exactly once by making a stock call that
    draws nothing. It works eagerly and under
    ``mx.compile(..., inputs=mx.random.state, outputs=mx.random.state)``.

    This leans on MLX internals (``mlx/python/src/random.cpp``, 0.32.x);
    tests/test_keys.py checks it against a stock draw.
    """
    key = mx.random.split(mx.random.state[0])[1]
    mx.random.uniform(shape=(0,))
    return key


def resolve_key(key, name: str) -> mx.array:
    """``key`` if given (its dtype and shape are checked in C++), else the next
    key of MLX's global state."""
    if key is None:
        return next_key()
    if not isinstance(key, mx.array):
        raise TypeError(
            f"[{name}] key must be an mx.array of dtype uint32 and shape (2,) "
            f"(e.g. mx.random.key(0)), but got {type(key).__name__}."
        )
    return key
