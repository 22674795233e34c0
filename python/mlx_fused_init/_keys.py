"""Keys: drawing one from MLX's global PRNG state, and checking given ones."""

import mlx.core as mx


def peek_key() -> mx.array:
    """The key the next stock ``mx.random.*`` call would use, without
    advancing MLX's state (see ``next_key``)."""
    return mx.random.split(mx.random.state[0])[1]


def advance_state() -> None:
    """Advance MLX's global PRNG state exactly as one stock call does: a
    stock call that draws nothing."""
    mx.random.uniform(shape=(0,))


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
    key = peek_key()
    advance_state()
    return key


def with_key(key, name: str, build):
    """``build(k)`` with ``k = key``, or, without a key, with the next key of
    MLX's global state, which then advances only if ``build`` succeeded: a
    call that raises leaves the state as it was."""
    if key is None:
        out = build(peek_key())
        advance_state()
        return out
    if not isinstance(key, mx.array):
        raise TypeError(
            f"[{name}] key must be an mx.array of dtype uint32 and shape (2,) "
            f"(e.g. mx.random.key(0)), but got {type(key).__name__}."
        )
    return build(key)
