"""The reference's own building blocks against exact rational arithmetic."""

from fractions import Fraction

import numpy as np

from reference import fma32


def exact_rn32(a, b, c) -> np.float32:
    """RN32(a * b + c) from the exact rational value: the nearest of three
    float32 candidates around float(x), ties to the even significand."""
    x = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    r = np.float32(float(x))
    cands = [np.nextafter(r, np.float32(-np.inf)), r, np.nextafter(r, np.float32(np.inf))]
    cands = [f for f in cands if np.isfinite(f)]
    best = min(abs(Fraction(float(f)) - x) for f in cands)
    near = [f for f in cands if abs(Fraction(float(f)) - x) == best]
    if len(near) > 1:
        near = [f for f in near if int(np.array(f).view(np.uint32)) % 2 == 0]
    return near[0]


def test_fma32_is_correctly_rounded():
    rng = np.random.default_rng(2026)
    n = 3000
    a = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    c = (rng.standard_normal(n) * 4.0 ** rng.integers(-12, 12, n)).astype(np.float32)
    # Double-rounding traps: a * b = 2^-24 - 2^-60 and c = 1 + 2^-23, so
    # a * b + c lies just below a float32 tie; float64 rounds it onto the
    # tie and float32 then rounds the tie up (to even), one ulp too high.
    # Signs flipped for the mirror case; plus an exact cancellation.
    a_x = np.float32(2.0**-24 * (1 + 2.0**-18))
    b_x = np.float32(1 - 2.0**-18)
    c_x = np.float32(1 + 2.0**-23)
    extra_a = np.array([a_x, -a_x, np.float32(3.0)], np.float32)
    extra_b = np.array([b_x, b_x, np.float32(0.5)], np.float32)
    extra_c = np.array([c_x, -c_x, np.float32(-1.5)], np.float32)
    a, b, c = np.concatenate([a, extra_a]), np.concatenate([b, extra_b]), np.concatenate([c, extra_c])
    got = fma32(a, b, c)
    want = np.array([exact_rn32(x, y, z) for x, y, z in zip(a, b, c)], dtype=np.float32)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    # The naive float64 route fails on at least one of the crafted cases,
    # so the cases do exercise double rounding.
    naive = (a.astype(np.float64) * b + c).astype(np.float32)
    assert np.any(naive.view(np.uint32) != want.view(np.uint32))
