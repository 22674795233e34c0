"""An independent NumPy implementation of docs/spec.md §3, for the tests.

Written from the spec, not from the C++/Metal source: Philox in vectorized
uint64 arithmetic, the Box-Muller transform in float64 with NumPy's own log,
sqrt, sin and cos. Only the inputs u and t are float32, as the spec defines
them.
"""

import numpy as np

M0, M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
W0, W1 = np.uint64(0x9E3779B9), np.uint64(0xBB67AE85)
MASK = np.uint64(0xFFFFFFFF)


def philox4x32_10(counters, key):
    """counters: (n, 4) integers; key: (k0, k1). Returns (n, 4) uint32."""
    c = [np.asarray(counters, dtype=np.uint64)[:, j].copy() for j in range(4)]
    k0, k1 = np.uint64(int(key[0])), np.uint64(int(key[1]))
    for r in range(10):
        if r:
            k0 = (k0 + W0) & MASK
            k1 = (k1 + W1) & MASK
        p0 = M0 * c[0]
        p1 = M1 * c[2]
        c = [
            ((p1 >> np.uint64(32)) ^ c[1] ^ k0) & MASK,
            p1 & MASK,
            ((p0 >> np.uint64(32)) ^ c[3] ^ k1) & MASK,
            p0 & MASK,
        ]
    return np.stack(c, axis=1).astype(np.uint32)


def stream_words(indices, key, subsequence=0):
    """The Philox word used by each flat stream index: (x_l of block i >> 2)
    and the pair partner needed for Box-Muller. Returns (a, c, lane) where
    (a, c) is the lane's pair."""
    i = np.asarray(indices, dtype=np.uint64).ravel()
    b = i >> np.uint64(2)
    q = int(subsequence)
    counters = np.stack(
        [
            b & MASK,
            b >> np.uint64(32),
            np.full_like(b, q & 0xFFFFFFFF),
            np.full_like(b, q >> 32),
        ],
        axis=1,
    )
    x = philox4x32_10(counters, key)
    lane = (i & np.uint64(3)).astype(np.int64)
    pair = lane >> 1
    a = np.where(pair == 0, x[:, 0], x[:, 2])
    c = np.where(pair == 0, x[:, 1], x[:, 3])
    return a, c, lane, x


def normal_z(indices, key, subsequence=0):
    """z_exact of docs/spec.md §3 in float64, from the float32 u and t."""
    a, c, lane, _ = stream_words(indices, key, subsequence)
    u = a.astype(np.float32) * np.float32(2.0**-32) + np.float32(2.0**-33)
    t = c.astype(np.float32) * np.float32(2.0**-31)
    r = np.sqrt(-2.0 * np.log(u.astype(np.float64)))
    t64 = t.astype(np.float64)
    return np.where(lane % 2 == 0, r * np.cos(np.pi * t64), r * np.sin(np.pi * t64))


def flat_indices(full_shape, start=None, shape=None):
    """Flat row-major indices in the full tensor of the window's elements."""
    full_shape = tuple(full_shape)
    start = tuple(start) if start is not None else (0,) * len(full_shape)
    shape = tuple(shape) if shape is not None else full_shape
    grids = np.meshgrid(
        *[np.arange(s, s + n, dtype=np.uint64) for s, n in zip(start, shape)],
        indexing="ij",
    )
    idx = np.zeros(shape, dtype=np.uint64)
    stride = 1
    for d in range(len(full_shape) - 1, -1, -1):
        idx += grids[d] * np.uint64(stride)
        stride *= full_shape[d]
    return idx.reshape(shape)


def round_to(x32: np.ndarray, dtype_name: str) -> np.ndarray:
    """float32 values rounded to nearest even in dtype_name, back as float32
    (exact). bfloat16 by integer arithmetic on the float32 bits."""
    x32 = np.asarray(x32, dtype=np.float32)
    if dtype_name == "float32":
        return x32
    if dtype_name == "float16":
        return x32.astype(np.float16).astype(np.float32)
    u = x32.view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return r.astype(np.uint32).view(np.float32)


def below(v: float, dtype_name: str) -> np.float32:
    """The largest dtype_name value below v (v a value of that dtype)."""
    if dtype_name == "float32":
        return np.nextafter(np.float32(v), np.float32(-np.inf))
    if dtype_name == "float16":
        return np.float32(np.nextafter(np.float16(v), np.float16(-np.inf)))
    # bfloat16: the float32 just below, rounded down to bfloat16's grid
    f = np.float32(v)
    if f > 0:
        bits = (np.array(f).view(np.uint32) >> 16) - 1
    elif f < 0:
        bits = (np.array(f).view(np.uint32) >> 16) + 1
    else:
        bits = np.uint32(0x8001)
    return np.array(np.uint32(bits) << 16, dtype=np.uint32).view(np.float32)[()]


def fma32(a, b, c) -> np.ndarray:
    """Correctly rounded float32 fma(a, b, c) (one rounding), elementwise.

    a * b of two float32 is exact in float64 (48 significant bits), but
    p + c rounded to float64 and then to float32 can round twice wrongly.
    So p + c is rounded to *odd* in float64 instead: s = RN64(p + c) with
    its exact error from TwoSum (Knuth; exact in float64, no overflow for
    float32 inputs); when the sum is inexact and s's last bit is even, the
    other float64 neighbour of the exact sum (one step towards the error)
    is the odd one. Rounding a round-to-odd value with 53 bits to 24 (or
    fewer, for subnormals) bits is correct (Boldo & Melquiond, "Emulation
    of FMA and correctly rounded sums: proved algorithms using rounding to
    odd", 2008), so the final astype gives RN32(a * b + c).
    tests/test_reference.py checks this against exact rational arithmetic.
    """
    a, b, c = (np.asarray(x, dtype=np.float32).astype(np.float64) for x in (a, b, c))
    p = a * b  # exact
    s = p + c
    bb = s - p
    err = (p - (s - bb)) + (c - bb)  # TwoSum: p + c == s + err exactly
    even = (s.view(np.uint64) & np.uint64(1)) == 0
    fix = (err != 0) & even
    s = np.where(fix, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
    return s.astype(np.float32)


def floor_to(x32: np.ndarray, dtype_name: str) -> np.ndarray:
    """float32 values rounded down (toward -inf) to dtype_name's grid, back
    as float32 (exact): the nearest value, one step down where that lies
    above. float32: unchanged."""
    x32 = np.asarray(x32, dtype=np.float32)
    if dtype_name == "float32":
        return x32
    r = round_to(x32, dtype_name)
    above = r > x32
    if dtype_name == "float16":
        down = np.nextafter(r.astype(np.float16), np.float16(-np.inf)).astype(np.float32)
    else:
        down = np.array([below(v, "bfloat16") for v in r[above]], dtype=np.float32)
        full = r.copy()
        full[above] = down
        return full
    return np.where(above, down, r).astype(np.float32)


def uniform_values(indices, key, low, high, dtype_name, subsequence=0):
    """The uniform stream, exactly: bounds rounded to the dtype (float32
    first, as MLX's astype does), v = (x_l >> 8) * 2^-24, then
    min(fma(w, v, low), largest value below high) in float32 (docs/spec.md §3: one
    rounding), then, for 16-bit dtypes, rounded down to the dtype's grid."""
    i = np.asarray(indices, dtype=np.uint64).ravel()
    _, _, lane, x = stream_words(i, key, subsequence)
    word = x[np.arange(i.size), lane]
    v = (word >> 8).astype(np.float32) * np.float32(2.0**-24)
    lo = round_to(np.float32(low), dtype_name)[()]
    hi = round_to(np.float32(high), dtype_name)[()]
    w = np.float32(np.float64(hi) - np.float64(lo))
    out = fma32(w, v, lo)
    upper = below(hi, dtype_name) if hi > lo else hi
    out = np.minimum(out, np.float32(upper))
    return floor_to(out, dtype_name)


def shifted_normal_values(z32, sigma, mean, dtype_name):
    """docs/spec.md §3, step 7: RNE_dtype(fma(float32(sigma), z, float32(mean))) for
    float32 draws z of the unit normal stream."""
    out = fma32(np.float32(sigma), np.asarray(z32, dtype=np.float32), np.float32(mean))
    return round_to(out, dtype_name)


def truncated_normal_z(indices, key, p_lo, c_hi, width, subsequence=0):
    """The truncated normal stream before scaling and clamping (docs/spec.md §3): the
    exact Phi^-1 (scipy's ndtri, float64) of the float32 tail probability
    each element selects. p_lo, c_hi, width: the float32 per-call constants.
    One lane per element: u = ((x_l >> 9) + 1/2) 2^-23; p = RN32(u w + p_lo),
    c = RN32((1 - u) w + c_hi) (the float64 sum is exact or rounds once
    before the float32 rounding); z = ndtri(p) if p <= c else -ndtri(c)."""
    from scipy.special import ndtri

    i = np.asarray(indices, dtype=np.uint64).ravel()
    _, _, lane, x = stream_words(i, key, subsequence)
    word = x[np.arange(i.size), lane]
    u = ((word >> 9).astype(np.float64) + 0.5) * 2.0**-23
    w, lo, hi = (np.float32(v) for v in (width, p_lo, c_hi))
    p = fma32(u.astype(np.float32), w, lo).astype(np.float64)
    c = fma32((1.0 - u).astype(np.float32), w, hi).astype(np.float64)
    return np.where(p <= c, ndtri(p), -ndtri(c))


# The mapping words of truncation_constants (docs/spec.md §3).
INVERSE_CDF, NARROW, TAIL_UPPER, TAIL_LOWER = 0, 0xFFFFFFFF, 1, 2


def truncated_tail_z(indices, key, n, k, mapping, subsequence=0):
    """The tail mapping's exact standardized value (docs/spec.md §3): n >= 0
    the bound nearer the mean in standard units (float64, exact), k the
    float32 per-call constant. The element's mass fraction from that bound
    is v = u (upper) or 1 - u (lower), u = ((x_l >> 9) + 1/2) 2^-23; its
    tail probability Phi(-|z|) = Phi(-n) (1 - v k), exactly (float64:
    1 - v k rounds once, relative 2^-53), inverted by scipy's ndtri. Returns
    z with its sign (negative for a lower interval)."""
    from scipy.special import ndtr, ndtri

    i = np.asarray(indices, dtype=np.uint64).ravel()
    _, _, lane, x = stream_words(i, key, subsequence)
    word = x[np.arange(i.size), lane]
    u = ((word >> 9).astype(np.float64) + 0.5) * 2.0**-23
    v = u if mapping == TAIL_UPPER else 1.0 - u
    z = -ndtri(ndtr(-n) * (1.0 - v * float(np.float32(k))))
    return z if mapping == TAIL_UPPER else -z


def truncated_narrow_values(indices, key, consts, dtype_name, subsequence=0):
    """The truncated normal's narrow mapping (docs/spec.md §3), exactly, from
    the per-call float32 constants (scale, shift, lower, upper, p_lo, c_hi,
    width, c4, c5, mapping) = (e1, X0, lower, upper, e2, e3, e0, e4, e5, NARROW):
    y = ((x_l >> 8) + 1/2) 2^-23 - 1 (exact), Horner's rule in fma,
    t = fma(q, y, e0), out = RNE_dtype(clamp(t + X0))."""
    e1, x0, lower, upper, e2, e3, e0, e4, e5, mapping = consts
    assert mapping == NARROW
    i = np.asarray(indices, dtype=np.uint64).ravel()
    _, _, lane, x = stream_words(i, key, subsequence)
    word = x[np.arange(i.size), lane]
    y = ((word >> 8).astype(np.float64) + 0.5) * 2.0**-23 - 1.0
    return narrow_values_of_y(y.astype(np.float32), consts, dtype_name)


def narrow_values_of_y(y32, consts, dtype_name):
    """The narrow mapping's output for float32 y (see truncated_narrow_values)."""
    e1, x0, lower, upper, e2, e3, e0, e4, e5, _ = consts
    q = fma32(e5, y32, e4)
    for e in (e3, e2, e1):
        q = fma32(q, y32, e)
    t = fma32(q, y32, e0)
    out = (t + np.float32(x0)).astype(np.float32)  # float32 addition: one rounding
    out = np.maximum(np.minimum(out, np.float32(upper)), np.float32(lower))
    return round_to(out, dtype_name)
