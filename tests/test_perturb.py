"""mfi.perturb: w + scale * z in one pass (docs/spec.md §3, "Perturbation").

The reference is built from the package's own normal(0, 1) stream (mfi.normal)
and a correctly rounded fused multiply-add written here in float64 with an
exact error term, then NumPy's own rounding to the dtype: nothing of the
kernel's code is re-derived."""

import mlx.core as mx
import numpy as np
import pytest

import mlx_fused_init as mfi
from conftest import bits

DTYPES = [mx.float32, mx.float16, mx.bfloat16]
NATIVE = mfi.backend_info()["backend"] == "native"


def weights(shape, dtype, seed=0):
    """Values over 13 decades, signed zeros included."""
    k1, k2 = mx.random.split(mx.random.key(seed))
    w = mx.random.normal(shape, key=k1) * 10.0 ** mx.random.randint(-9, 4, shape, key=k2).astype(
        mx.float32)
    flat = w.reshape(-1)
    if flat.size >= 2:
        flat = mx.concatenate([mx.array([-0.0, 0.0]), flat[2:]])
    return flat.reshape(shape).astype(dtype)


# ------------------------------------------------------------- reference
def fma_f32(a, b, c):
    """float32(a * b + c) rounded once, to nearest even, for float32 arrays.
    a * b is exact in float64; s = fl64(a*b + c) and its exact error e (two
    sum) give the value s + e; rounding s to float32 is wrong only when s is
    exactly halfway between two float32 values and e != 0 (double
    rounding): there the sign of e decides."""
    p = a.astype(np.float64) * b.astype(np.float64)
    c = c.astype(np.float64)
    s = p + c
    bb = s - p
    e = (p - (s - bb)) + (c - bb)
    r = s.astype(np.float32)
    lo = np.where(r.astype(np.float64) > s, np.nextafter(r, np.float32(-np.inf)), r)
    hi = np.nextafter(lo, np.float32(np.inf))
    tie = (s - lo.astype(np.float64)) == (hi.astype(np.float64) - s)
    r = np.where(tie & (e > 0), hi, np.where(tie & (e < 0), lo, r))
    return r.astype(np.float32)


def round_to(r, dtype):
    """float32 values rounded to dtype (nearest even), as float64."""
    if dtype == mx.float32:
        return r.astype(np.float64)
    if dtype == mx.float16:
        return r.astype(np.float16).astype(np.float64)
    m, e = np.frexp(r.astype(np.float64))  # bfloat16: 8 significant bits
    return np.ldexp(np.round(np.ldexp(m, 8)), e - 8)


def reference(w, scale, key, w_scale=1.0, **window):
    z = np.array(mfi.normal(0.0, 1.0)(w, key=key, **window))
    w32 = np.array(w.astype(mx.float32))
    base = (w32 * np.float32(w_scale)).astype(np.float32)
    out = fma_f32(np.full_like(z, np.float32(scale)), z, base)
    return round_to(out, w.dtype)


def assert_bits(got, want64):
    want = mx.array(want64.astype(np.float32)).astype(got.dtype)  # exact: values of the dtype
    np.testing.assert_array_equal(bits(got), bits(want))


# ------------------------------------------------------------------ bits
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale, w_scale", [(1e-3, 1.0), (-2.5, 1.0), (0.02, 0.9995),
                                            (7.0, -3.0)])
def test_bits_match_reference(dtype, scale, w_scale):
    key = mx.random.key(11)
    w = weights((67, 129), dtype)
    got = mfi.perturb(w, scale, key=key, subsequence=5, weight_scale=w_scale)
    assert got.shape == w.shape and got.dtype == dtype
    assert_bits(got, reference(w, scale, key, w_scale, subsequence=5))


def test_the_noise_is_the_normal_stream():
    # Perturbing zeros by 1 gives z itself: the normal(0, 1) draw, bit for bit.
    key = mx.random.key(3)
    z = mfi.perturb(mx.zeros((1000,)), 1.0, key=key, subsequence=9)
    np.testing.assert_array_equal(bits(z), bits(mfi.normal()(z, key=key, subsequence=9)))
    # and another subsequence or key is other noise
    assert not mx.array_equal(z, mfi.perturb(mx.zeros((1000,)), 1.0, key=key))
    assert not mx.array_equal(z, mfi.perturb(mx.zeros((1000,)), 1.0, key=mx.random.key(4),
                                             subsequence=9))


def test_windows_tile_the_unsharded_perturbation():
    key = mx.random.key(8)
    w = weights((37, 1001), mx.float32)
    full = mfi.perturb(w, 0.1, key=key, subsequence=2)
    for (r0, r1), (c0, c1) in [((0, 37), (0, 500)), ((0, 37), (500, 1001)), ((3, 30), (5, 995)),
                               ((36, 37), (1000, 1001))]:
        part = mfi.perturb(w[r0:r1, c0:c1], 0.1, key=key, subsequence=2, full_shape=(37, 1001),
                           start=(r0, c0))
        np.testing.assert_array_equal(bits(part), bits(full[r0:r1, c0:c1]))


def test_strided_and_broadcast_inputs():
    key = mx.random.key(1)
    w = weights((64, 48), mx.float32)
    for view in (w.T, w[::3, 1::2], mx.broadcast_to(w[:1], (64, 48))):
        dense = mx.array(np.array(view))
        np.testing.assert_array_equal(bits(mfi.perturb(view, 0.5, key=key)),
                                      bits(mfi.perturb(dense, 0.5, key=key)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_cpu_kernel_and_thread_count_agree(dtype, restore_cpu_settings):
    key = mx.random.key(21)
    w = weights(((1 << 18) + 3,), dtype)
    mfi.set_cpu_kernel("scalar")
    mfi.set_num_threads(1)
    want = bits(mfi.perturb(w, 0.3, key=key, weight_scale=0.75))
    for kernel in mfi.available_cpu_kernels().split(", "):
        mfi.set_cpu_kernel(kernel)
        for threads in (1, 2, 3):
            mfi.set_num_threads(threads)
            np.testing.assert_array_equal(
                bits(mfi.perturb(w, 0.3, key=key, weight_scale=0.75)), want,
                err_msg=f"{kernel} x{threads}")


def test_empty_and_zero_dimensional():
    key = mx.random.key(0)
    assert mfi.perturb(mx.zeros((0, 5)), 1.0, key=key).shape == (0, 5)
    s = mfi.perturb(mx.array(2.0), 0.5, key=key)
    assert s.shape == () and s.item() != 2.0


# -------------------------------------------------------- buffers, memory
def test_an_input_referenced_elsewhere_is_left_alone():
    key = mx.random.key(2)
    w = weights((300, 7), mx.float16)
    before = np.array(bits(w))
    out = mfi.perturb(w, 1.0, key=key)
    mx.eval(out)
    np.testing.assert_array_equal(bits(w), before)
    assert not np.array_equal(bits(out), before)


def test_donated_input_gives_the_same_result():
    key = mx.random.key(4)
    base = weights((513, 33), mx.bfloat16)
    kept = mx.array(base)
    want = bits(mfi.perturb(kept, 0.25, key=key))  # kept is referenced: no donation
    w = mx.array(np.array(bits(base))).view(mx.bfloat16)  # a fresh array, referenced once
    out = mfi.perturb(w, 0.25, key=key)
    del w
    np.testing.assert_array_equal(bits(out), want)


@pytest.mark.skipif(not NATIVE, reason="portable mode writes each result into a new array "
                    "(MLX does not let Python code reuse a buffer); docs/portable.md")
def test_perturbing_in_a_loop_does_not_allocate():
    # w = perturb(w) donates w's buffer: after the first array, no step
    # allocates (the peak stays at what was allocated before the loop).
    key = mx.random.key(5)
    w = mx.zeros((1024, 1024))
    mx.eval(w)
    mx.reset_peak_memory()
    for step in range(4):
        w = mfi.perturb(w, 1e-2, key=key, subsequence=step)
        mx.eval(w)
    assert mx.get_peak_memory() < w.nbytes  # a second buffer would reach 4 MiB
    z = sum(mfi.normal()(w, key=key, subsequence=s) for s in range(4))
    np.testing.assert_allclose(np.array(w), 1e-2 * np.array(z), rtol=0, atol=1e-6)


# ----------------------------------------------------------- transforms
def test_gradient_flows_to_w_with_its_factor():
    key = mx.random.key(6)
    w = weights((5, 4), mx.float32)

    def loss(w):
        return (mfi.perturb(w, 0.1, key=key, weight_scale=0.5) ** 2).sum()

    g = mx.grad(loss)(w)
    expected = 2 * mfi.perturb(w, 0.1, key=key, weight_scale=0.5) * 0.5
    np.testing.assert_allclose(np.array(g), np.array(expected), rtol=1e-6)
    _, jvp = mx.jvp(lambda w: mfi.perturb(w, 0.1, key=key, weight_scale=0.5), [w],
                    [mx.ones_like(w)])
    np.testing.assert_array_equal(np.array(jvp[0]), np.full((5, 4), 0.5, np.float32))


def test_under_compile_with_the_key_as_input():
    if not NATIVE:
        pytest.skip("portable mode computes CPU draws eagerly: no mx.compile tracing "
                    "(docs/portable.md)")
    w = weights((40,), mx.float32)
    f = mx.compile(lambda w, k: mfi.perturb(w, 0.5, key=k))
    for seed in (1, 2):
        k = mx.random.key(seed)
        np.testing.assert_array_equal(bits(f(w, k)), bits(mfi.perturb(w, 0.5, key=k)))


# --------------------------------------------------------------- errors
@pytest.mark.parametrize("call, exc, words", [
    (lambda: mfi.perturb([1.0], 1.0, key=mx.random.key(0)), TypeError, "w must be an mx.array"),
    (lambda: mfi.perturb(mx.zeros((3,), mx.int32), 1.0, key=mx.random.key(0)), ValueError,
     "w must be float32"),
    (lambda: mfi.perturb(mx.zeros((3,)), float("nan"), key=mx.random.key(0)), ValueError,
     "scale must be finite"),
    (lambda: mfi.perturb(mx.zeros((3,)), 1e39, key=mx.random.key(0)), ValueError,
     "scale must fit in float32"),
    (lambda: mfi.perturb(mx.zeros((3,)), "a", key=mx.random.key(0)), TypeError,
     "scale must be a real number"),
    (lambda: mfi.perturb(mx.zeros((3,)), 1.0, key=mx.random.key(0), weight_scale=float("inf")),
     ValueError, "weight_scale must be finite"),
    (lambda: mfi.perturb(mx.zeros((3,)), 1.0, key=None), TypeError, "key is required"),
    (lambda: mfi.perturb(mx.zeros((3,)), 1.0, key=mx.zeros((2,))), ValueError, "key must be"),
    (lambda: mfi.perturb(mx.zeros((3,)), 1.0, key=mx.random.key(0), subsequence=-1),
     ValueError, "subsequence"),
    (lambda: mfi.perturb(mx.zeros((3,)), 1.0, key=mx.random.key(0), full_shape=(2,)),
     ValueError, "does not lie inside"),
    (lambda: mfi.perturb(mx.zeros((3,)), 1.0, key=mx.random.key(0), stream="cpu"), TypeError,
     "stream must be"),
])
def test_bad_arguments(call, exc, words):
    with pytest.raises(exc, match=r"\[perturb\].*" + words):
        call()


def test_missing_key_is_a_type_error():
    with pytest.raises(TypeError):
        mfi.perturb(mx.zeros((3,)), 1.0)  # noqa: the key is required
