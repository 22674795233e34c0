"""mfi.zo.MeZO: the SPSA step on regenerable noise (docs/zo.md): its exact
update against plain-MLX references, the keys of each step, unbiasedness on
a quadratic, θ never touched by the evaluations, memory, and a tiny mlx-lm
model that learns."""

import math

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

import mlx_fused_init as mfi
from conftest import MLX_LM_MISSING, bits, params
from mlx_fused_init import zo

KEY = mx.random.key(5)


class Small(nn.Module):
    """Two parameters (a matrix and a vector) with a simple smooth loss."""

    def __init__(self):
        super().__init__()
        self.w = mx.random.normal((8, 16), key=mx.random.key(1)) * 0.5
        self.b = mx.random.normal((16,), key=mx.random.key(2)) * 0.5

    def __call__(self, x):
        return x @ self.w + self.b


X = mx.random.normal((32, 8), key=mx.random.key(3))
Y = mx.random.normal((32, 16), key=mx.random.key(4))


# Why the run-ahead tests skip where they do.
NO_MEMORY_LIMIT = ("this MLX release has no mx.set_memory_limit, which zo.bounded_run_ahead "
                   "needs (without it MeZO leaves MLX's scheduling alone)")


def mse(model, x, y):
    # In float32, as docs/zo.md asks of a loss: a bfloat16 mean (MLX 0.26
    # reduces in bfloat16) can round L+ and L- to the same value.
    return ((model(x) - y).astype(mx.float32) ** 2).mean()


def memory_limit() -> int:
    """MLX's memory limit (MLX releases without get_memory_limit: read
    through set_memory_limit, which returns the previous one)."""
    if hasattr(mx, "get_memory_limit"):
        return mx.get_memory_limit()
    previous = mx.set_memory_limit(1 << 40)
    mx.set_memory_limit(previous)
    return previous


def snapshot(model) -> dict:
    """Copies of the parameters' bits (numpy), safe from any in-place write."""
    return {p: (bits(a).copy(), a.dtype) for p, a in params(model).items()}


def restore(saved) -> mx.array:
    """An array from a snapshot entry."""
    raw, dtype = saved
    return mx.view(mx.array(raw), dtype)


class Recorder:
    """A loss_fn that records each loss it returns and the parameters it
    saw (copied)."""

    def __init__(self, fn=mse):
        self.fn, self.losses, self.seen = fn, [], []

    def __call__(self, model, *args):
        loss = self.fn(model, *args)
        self.losses.append(loss.item())
        self.seen.append(snapshot(model))
        return loss


def z(path, like, key):
    """The noise of ``path`` under ``key``: plain mfi.normal draws."""
    return mfi.normal(0.0, 1.0)(like, key=key, subsequence=mfi.param_subsequence(path))


# -- keys ---------------------------------------------------------------------

def test_perturbation_key_is_the_documented_philox_block():
    for step, i in [(0, 0), (1, 0), (0, 1), (2**32 + 7, 3), (2**64 - 1, 2**32 - 1)]:
        block = mfi.philox4x32_10(
            mx.array([[step % 2**32, step >> 32, i, zo.KEY_TAG]], dtype=mx.uint32), KEY)
        assert zo.perturbation_key(KEY, step, i).tolist() == block[0, :2].tolist()
    keys = {tuple(zo.perturbation_key(KEY, s, i).tolist()) for s in range(20) for i in range(3)}
    assert len(keys) == 60  # all distinct
    assert zo.MeZO(0.1, key=KEY).perturbation_key(3, 1).tolist() == \
        zo.perturbation_key(KEY, 3, 1).tolist()
    assert zo.KEY_TAG == int.from_bytes(b"MeZO", "big")


# -- one step, exactly ----------------------------------------------------------

def test_one_step_is_one_perturbation_from_the_original_parameters():
    # n = 1, no decay: loss_fn sees exactly perturb(θ, ±ε) of the original
    # θ, and the new θ is perturb(θ, −η g) of the *original* θ, bit for bit:
    # the evaluations never modified θ (an implementation that perturbs in
    # place and then "unperturbs" would be off by rounding, and in
    # bfloat16 by a lot).
    model = Small()
    model.set_dtype(mx.bfloat16)
    mx.eval(model.parameters())
    theta0 = params(model)
    kept = snapshot(model)
    rec = Recorder()
    lr, eps = 0.05, 1e-2
    opt = zo.MeZO(lr, eps=eps, key=KEY)
    out = opt.step(model, rec, X.astype(mx.bfloat16), Y.astype(mx.bfloat16))
    k = opt.perturbation_key(0, 0)
    assert len(rec.losses) == 2 and opt.steps == 1
    for seen, sign in zip(rec.seen, (1, -1)):
        for path, w in theta0.items():
            want = mfi.perturb(restore(kept[path]), sign * eps, key=k,
                               subsequence=mfi.param_subsequence(path))
            assert np.array_equal(bits(want), seen[path][0]), path
    g = (rec.losses[0] - rec.losses[1]) / (2 * eps)
    assert g != 0
    for path, w in params(model).items():
        want = mfi.perturb(restore(kept[path]), -lr * g, key=k,
                           subsequence=mfi.param_subsequence(path))
        assert np.array_equal(bits(w), bits(want)), path
    assert out.item() == pytest.approx((rec.losses[0] + rec.losses[1]) / 2, rel=1e-6)


def reference_step(theta, loss_at, lr, eps, wd, n, keys):
    """Plain MLX, float32: θ' = (1 − ηλ)θ − (η/n) Σ g_i z_i with z_i from
    mfi.normal draws and g_i = (L(θ + εz_i) − L(θ − εz_i)) / (2ε)."""
    update = {p: (1 - lr * wd) * w for p, w in theta.items()}
    for k in keys:
        zs = {p: z(p, w, k) for p, w in theta.items()}
        plus = loss_at({p: theta[p] + eps * zs[p] for p in theta})
        minus = loss_at({p: theta[p] - eps * zs[p] for p in theta})
        g = (plus - minus) / (2 * eps)
        update = {p: update[p] - (lr / n) * g * zs[p] for p in theta}
    return update


@pytest.mark.parametrize("wd, n", [(0.0, 1), (0.3, 1), (0.0, 3), (0.3, 4)])
def test_weight_decay_and_n_against_plain_mlx(wd, n):
    model = Small()
    mx.eval(model.parameters())
    theta = params(model)
    lr, eps = 0.1, 1e-2

    def loss_at(values):
        m = Small()
        m.update({"w": values["w"], "b": values["b"]})
        return mse(m, X, Y).item()

    opt = zo.MeZO(lr, eps=eps, weight_decay=wd, n=n, key=KEY)
    want = reference_step(theta, loss_at, lr, eps, wd, n,
                          [opt.perturbation_key(0, i) for i in range(n)])
    opt.step(model, mse, X, Y)
    # The fused passes round once per pass, the reference once per op, and
    # its losses come from differently rounded θ ± εz: agreement to float32
    # rounding (|θ| < 3, so 1e-5 is a few ulps plus the losses' effect).
    # A decay applied n times, or not at all, moves θ by ~ηλ|θ| ≈ 1e-2; a
    # sum instead of a mean over perturbations by ~η|g z| ≈ 1e-1.
    for path, w in params(model).items():
        np.testing.assert_allclose(np.array(w), np.array(want[path]), rtol=0, atol=1e-5,
                                   err_msg=path)
        assert not np.allclose(np.array(w), np.array(theta[path]), atol=1e-3)


def test_steps_use_their_own_keys_and_state_resumes():
    a, b = Small(), Small()
    opt = zo.MeZO(0.05, key=KEY)
    for _ in range(3):
        opt.step(a, mse, X, Y)
    assert opt.steps == 3
    state = opt.state
    assert state["step"].dtype == mx.uint64 and state["step"].item() == 3
    # A fresh optimizer resumed from the state continues the same run.
    for _ in range(3):
        zo.MeZO(0.05, key=KEY).step(b, mse, X, Y)  # three times step 0: another run
    assert not np.array_equal(bits(a.w), bits(b.w))
    c = Small()
    first = zo.MeZO(0.05, key=KEY)
    for _ in range(2):
        first.step(c, mse, X, Y)
    resumed = zo.MeZO(0.05, key=mx.random.key(999))
    resumed.state = dict(first.state)
    resumed.step(c, mse, X, Y)
    assert resumed.steps == 3
    for path, w in params(a).items():
        assert np.array_equal(bits(w), bits(params(c)[path])), path


def test_schedule_and_deterministic_default_key():
    # A schedule is called with the step (as mlx.optimizers does).
    seen = []

    def schedule(step):
        seen.append(int(step.item()))
        return 0.05 / (1 + step)

    model = Small()
    opt = zo.MeZO(schedule, key=KEY)
    opt.step(model, mse, X, Y)
    opt.step(model, mse, X, Y)
    assert seen == [0, 1]
    # Without a key: the next key of MLX's global state, so a seed fixes it.
    mx.random.seed(3)
    k1 = zo.MeZO(0.1).key
    mx.random.seed(3)
    assert zo.MeZO(0.1).key.tolist() == k1.tolist()
    assert zo.MeZO(0.1).key.tolist() != k1.tolist()


def test_only_trainable_floating_parameters_move():
    model = Small()
    model.extra = nn.Linear(32, 32)
    nn.quantize(model, group_size=32, bits=4)  # extra becomes a QuantizedLinear
    model.steps_seen = mx.array([1, 2, 3])  # integer
    model.frozen = nn.Linear(4, 4)
    model.frozen.freeze()
    before = params(model)
    zo.MeZO(0.05, key=KEY).step(model, mse, X, Y)
    after = params(model)

    def raw(a):
        return bits(a) if mx.issubdtype(a.dtype, mx.floating) else np.array(a)

    moved = {p for p in before if not np.array_equal(raw(before[p]), raw(after[p]))}
    assert moved == {"w", "b"}  # not extra.* (quantized, its bias trainable), frozen.*, steps_seen


# -- the estimate ---------------------------------------------------------------

def test_gradient_estimate_is_unbiased_on_a_quadratic():
    # L(θ) = ½ Σ a_j (θ_j − c_j)², so L(θ + εz) − L(θ − εz) = 2ε ∇L·z
    # exactly, and g z = (∇L·z) z with E[g z] = ∇L (E[z zᵀ] = I). One step
    # with η = 1 and n = N perturbations moves θ by −(1/N) Σ g_i z_i: the
    # mean of N estimates. For Gaussian z, Cov[(∇L·z) z] = |∇L|² I + ∇L ∇Lᵀ,
    # so component j of the mean has standard deviation
    # σ_j = sqrt((|∇L|² + ∇L_j²) / N). With a fixed key the test is
    # deterministic; the bound, 4.5 σ_j on each of the 16 components, would
    # be exceeded by chance with probability 16 · 7e-6 ≈ 1e-4 for a random
    # key. float32 rounding (losses ~10, ε = 1e-2: relative 1e-5 on g; 2N
    # roundings of θ ~ 1e-5 absolute) is far below σ_j ≈ 0.1.
    d, N = 16, 1500
    a = mx.linspace(0.5, 2.0, d)
    c = mx.random.normal((d,), key=mx.random.key(7))

    class Quad(nn.Module):
        def __init__(self):
            super().__init__()
            self.theta = mx.random.normal((d,), key=mx.random.key(8)) * 2

    def loss(model):
        return 0.5 * (a * (model.theta - c) ** 2).sum()

    model = Quad()
    theta0 = np.array(model.theta)
    grad = np.array(a) * (theta0 - np.array(c))
    opt = zo.MeZO(1.0, eps=1e-2, n=N, key=KEY)
    opt.step(model, loss)
    estimate = theta0 - np.array(model.theta)
    sigma = np.sqrt((grad @ grad + grad ** 2) / N)
    assert np.linalg.norm(grad) > 20 * sigma.max()  # a gradient well above the noise
    assert np.all(np.abs(estimate - grad) <= 4.5 * sigma), (estimate, grad, sigma)
    # And the estimate is a real estimate, not the gradient itself: its
    # error is of the order of σ (a mean of N, not an exact formula).
    assert np.abs(estimate - grad).max() > 0.1 * sigma.max()


# -- θ is never modified by the evaluations --------------------------------------

def test_evaluations_leave_theta_alone_even_when_loss_fn_fails():
    model = Small()
    mx.eval(model.parameters())
    before = params(model)

    def bad(model, *args):
        raise RuntimeError("boom")

    opt = zo.MeZO(0.1, key=KEY)
    with pytest.raises(RuntimeError, match="boom"):
        opt.step(model, bad)
    after = params(model)
    assert all(after[p] is before[p] for p in before) and opt.steps == 0

    calls = []

    def nan_on_minus(model, x, y):
        calls.append(1)
        loss = mse(model, x, y)
        return loss if len(calls) == 1 else loss * float("nan")

    with pytest.raises(ValueError, match=r"\[MeZO\] step 0: a loss is not finite"):
        opt.step(model, nan_on_minus, X, Y)
    after = params(model)
    assert all(np.array_equal(bits(after[p]), bits(before[p])) for p in before)
    assert opt.steps == 0


# -- memory -------------------------------------------------------------------

def peak_above(fn) -> int:
    mx.synchronize()
    mx.clear_cache()
    base = mx.get_active_memory()
    mx.reset_peak_memory()
    fn()
    return mx.get_peak_memory() - base


@pytest.mark.skipif(not hasattr(mx, "set_memory_limit"), reason=NO_MEMORY_LIMIT)
def test_step_peak_is_a_few_layers_above_inference():
    # 48 layers of 256x256 float32 (256 KiB each, 12 MiB in all), one op
    # each. Holding the perturbed model costs 12 MiB and more above
    # inference, and so does MLX's default scheduling nearly (it encodes,
    # hence allocates, ~100 ops ahead of the one running: measured 23.5
    # layers); MeZO holds MLX back past HEADROOM_PARAMETERS = 4 layers
    # above the memory in use (measured: 7.4 layers, with the stand-in
    # perturb's two buffers per weight): at most 12 layers (3 MiB).
    layers, dim = 48, 256
    model = nn.Sequential(*[nn.Linear(dim, dim, bias=False) for _ in range(layers)])
    mfi.init_model(model, mfi.normal(0.0, 0.05), key=KEY)
    mx.eval(model.parameters())
    x = mx.random.normal((4, dim), key=mx.random.key(1))

    def loss(m, x):
        return (m(x) ** 2).mean()

    layer_bytes = dim * dim * 4
    inference = peak_above(lambda: mx.eval(loss(model, x)))
    step = peak_above(lambda: zo.MeZO(1e-3, key=KEY).step(model, loss, x))
    portable = mfi.backend_info()["backend"] == "portable"
    if portable:
        # Portable mode draws on the CPU eagerly (docs/portable.md): the
        # noise of every layer exists once the perturbed graph is built.
        assert step - inference <= (layers + 8) * layer_bytes
        return
    assert step - inference <= 12 * layer_bytes, (step, inference)
    # MLX's default scheduling is worse: the bound is MeZO's doing. Unless
    # the process is already over MLX's memory limit, where MLX holds back
    # after every op by itself: MLX's CPU allocator counts an allocation
    # that failed (test_resources.py asks for 2^42 bytes) as active memory
    # for good, so later in the suite the counter exceeds any limit.
    if mx.get_active_memory() < memory_limit():
        unbounded = peak_above(
            lambda: zo.MeZO(1e-3, key=KEY, low_memory=False).step(model, loss, x))
        assert unbounded - inference > 16 * layer_bytes, (unbounded, inference)


@pytest.mark.skipif(not hasattr(mx, "set_memory_limit"), reason=NO_MEMORY_LIMIT)
def test_bounded_run_ahead_sets_and_restores_the_limit():
    limit = memory_limit()
    with zo.bounded_run_ahead(headroom=12345):
        assert memory_limit() == mx.get_active_memory() + 12345
    with zo.bounded_run_ahead(False):
        assert memory_limit() == limit
    with pytest.raises(RuntimeError):
        with zo.bounded_run_ahead():
            raise RuntimeError("inside")
    assert memory_limit() == limit


# -- a tiny mlx-lm model learns -----------------------------------------------------

def test_tiny_llama_loss_goes_down():
    llama = pytest.importorskip("mlx_lm.models.llama", reason=MLX_LM_MISSING)
    args = llama.ModelArgs(
        model_type="llama", hidden_size=32, num_hidden_layers=2, intermediate_size=64,
        num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, vocab_size=16,
        tie_word_embeddings=False)
    model = llama.Model(args)
    mfi.init_model(model, mfi.recipes.llama(), key=mx.random.key(0))
    # A fixed synthetic task: count upwards by 1, mod 16, from 4 starts.
    tokens = (mx.arange(4)[:, None] * 3 + mx.arange(17)[None]) % 16

    def loss_fn(m, tokens):
        logits = m(tokens[:, :-1]).astype(mx.float32)
        return nn.losses.cross_entropy(logits, tokens[:, 1:]).mean()

    start = loss_fn(model, tokens).item()
    opt = zo.MeZO(3e-3, eps=1e-3, key=mx.random.key(1))
    history = [opt.step(model, loss_fn, tokens).item() for _ in range(60)]
    end = loss_fn(model, tokens).item()
    # Measured (fixed keys, deterministic): 2.77 -> 2.47. log(16) = 2.77 is
    # chance; a step of the wrong sign, or an update whose z differs from
    # the evaluations', does not go down (it drifts up or random-walks).
    assert math.isclose(start, math.log(16), abs_tol=0.05)
    assert end < start - 0.15, (start, end)
    assert np.mean(history[-10:]) < np.mean(history[:10]) - 0.1


# -- bad arguments -------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, message", [
    (dict(learning_rate="0.1"), TypeError, r"\[MeZO\] learning_rate must be a real number"),
    (dict(learning_rate=math.nan), ValueError, r"\[MeZO\] learning_rate must be finite"),
    (dict(eps=0.0), ValueError, r"\[MeZO\] eps must be positive, but got 0.0"),
    (dict(eps=-1e-3), ValueError, r"\[MeZO\] eps must be positive"),
    (dict(eps=math.inf), ValueError, r"\[MeZO\] eps must be finite"),
    (dict(weight_decay=-0.1), ValueError, r"\[MeZO\] weight_decay must be non-negative"),
    (dict(n=0), ValueError, r"\[MeZO\] n must be at least 1, but got 0"),
    (dict(n=2.0), TypeError, r"\[MeZO\] n must be an int, but got float"),
    (dict(key=mx.array([1, 2])), ValueError, r"\[MeZO\] key must be an mx.array of dtype uint32"),
    (dict(key=3), TypeError, r"\[MeZO\] key must be an mx.array"),
])
def test_bad_constructor_arguments(kwargs, error, message):
    kwargs = {"learning_rate": 0.1, **kwargs}
    with pytest.raises(error, match=message):
        zo.MeZO(**kwargs)


def test_bad_step_arguments():
    opt = zo.MeZO(0.1, key=KEY)
    with pytest.raises(TypeError, match=r"\[MeZO\] model must be an mlx.nn.Module, but got dict"):
        opt.step({"w": mx.zeros(2)}, mse)
    with pytest.raises(TypeError, match=r"\[MeZO\] loss_fn must be callable"):
        opt.step(Small(), 3.0)
    with pytest.raises(ValueError, match=r"\[MeZO\] loss_fn must return a scalar mx.array, but "
                                         r"got shape \(32, 16\)"):
        opt.step(Small(), lambda m, x: m(x), X)
    with pytest.raises(ValueError, match=r"\[MeZO\] loss_fn must return a scalar mx.array, but "
                                         r"got float"):
        opt.step(Small(), lambda m: 1.0)
    frozen = Small()
    frozen.freeze()
    with pytest.raises(ValueError, match=r"\[MeZO\] the model has no trainable floating"):
        opt.step(frozen, mse, X, Y)
    with pytest.raises(ValueError, match=r"\[MeZO\] learning_rate must be finite"):
        zo.MeZO(lambda step: math.inf, key=KEY).step(Small(), mse, X, Y)
    with pytest.raises(ValueError, match=r"\[MeZO\] step must be an int"):
        zo.perturbation_key(KEY, -1)
    with pytest.raises(ValueError, match=r"\[MeZO\] i must be an int in \[0, 2\^32\)"):
        zo.perturbation_key(KEY, 0, 2**32)
    with pytest.raises(ValueError, match=r"\[MeZO\] state must be a dict"):
        opt.state = {"step": 1}
    with pytest.raises(ValueError, match=r"\[MeZO\] state\['step'\] must be a non-negative int"):
        opt.state = {"step": -1, "key": KEY}
    assert opt.steps == 0
