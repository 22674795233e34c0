"""Raw Philox4x32-10: known answers, and agreement with randomgen."""

import mlx.core as mx
import numpy as np
import pytest
from randomgen import Philox

import mlx_fused_init as mfi
from reference import philox4x32_10 as ref_philox


def test_known_answer_vectors(philox_kat):
    assert len(philox_kat) == 3
    for counter, key, expected, name in philox_kat:
        out = mfi.philox4x32_10(
            mx.array([counter], dtype=mx.uint32), mx.array(key, dtype=mx.uint32)
        )
        assert out.dtype == mx.uint32 and out.shape == (1, 4)
        assert out.tolist()[0] == expected, name


def test_reference_implementation_matches_known_answers(philox_kat):
    # The NumPy reference is used by the stream tests; pin it too.
    for counter, key, expected, name in philox_kat:
        assert ref_philox([counter], key)[0].tolist() == expected, name


def randomgen_blocks(first_counter: int, n: int, key) -> np.ndarray:
    """n consecutive Philox4x32-10 blocks from randomgen, starting at the
    128-bit counter first_counter. randomgen increments its counter before
    producing the first block, hence the - 1."""
    gen = Philox(
        counter=(first_counter - 1) % 2**128,
        key=int(key[0]) | int(key[1]) << 32,
        number=4,
        width=32,
    )
    return gen.random_raw(4 * n).astype(np.uint32).reshape(n, 4)


@pytest.mark.parametrize(
    "first_counter, key",
    [
        (0, (0, 0)),
        (12345, (0xDEADBEEF, 0x01234567)),
        (2**32 - 3, (7, 11)),  # carries from word 0 into word 1
        (2**64 - 2, (0xFFFFFFFF, 0)),  # carries into word 2
        (2**128 - 2, (1, 2)),  # wraps around
    ],
)
def test_agrees_with_randomgen(first_counter, key):
    n = 64
    expected = randomgen_blocks(first_counter, n, key)
    ctrs = [(first_counter + j) % 2**128 for j in range(n)]
    counters = np.array(
        [[(c >> (32 * w)) & 0xFFFFFFFF for w in range(4)] for c in ctrs], dtype=np.uint32
    )
    out = mfi.philox4x32_10(mx.array(counters), mx.array(key, dtype=mx.uint32))
    np.testing.assert_array_equal(np.array(out), expected)


def test_random_counters_and_keys_against_randomgen():
    rng = np.random.default_rng(1234)
    for _ in range(20):
        counter = int(rng.integers(0, 2**63)) << 65 | int(rng.integers(0, 2**63))
        key = rng.integers(0, 2**32, size=2, dtype=np.uint64)
        expected = randomgen_blocks(counter, 1, key)
        words = [(counter >> (32 * w)) & 0xFFFFFFFF for w in range(4)]
        out = mfi.philox4x32_10(
            mx.array([words], dtype=mx.uint32), mx.array(key.astype(np.uint32))
        )
        np.testing.assert_array_equal(np.array(out), expected)


def test_non_contiguous_inputs():
    rng = np.random.default_rng(5)
    counters = rng.integers(0, 2**32, size=(8, 4), dtype=np.uint32)
    key = np.array([3, 0, 9, 0], dtype=np.uint32)
    # A transposed counter table and a strided key.
    out = mfi.philox4x32_10(mx.array(counters.T.copy()).T, mx.array(key)[::2])
    np.testing.assert_array_equal(np.array(out), ref_philox(counters, (3, 9)))


def test_empty_counters():
    out = mfi.philox4x32_10(mx.zeros((0, 4), dtype=mx.uint32), mx.random.key(0))
    assert out.shape == (0, 4)
    mx.eval(out)
