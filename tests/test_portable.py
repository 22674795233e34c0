"""Portable mode (docs/portable.md) against the native op, in one process:
the same bits and the same errors for every transform, dtype, window,
subsequence and key layout; the portable module links no MLX; init_model's
peak in portable mode is the model itself. (The old-MLX step of .ci/run
runs the portable path under other MLX releases and compares its bits with
the native run's.)"""

import os
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

import mlx_fused_init as mfi
from mlx_fused_init import _build_info, _kernels, _portable
from conftest import bits

NATIVE_LOADS = mx.__version__ == _build_info.MLX_VERSION
needs_native = pytest.mark.skipif(
    not NATIVE_LOADS,
    reason=f"the native module was built against MLX {_build_info.MLX_VERSION}, and MLX "
           f"{mx.__version__} is running: it cannot be loaded here (the old-MLX step of "
           ".ci/run compares these bits with the native run's digest instead)")
if NATIVE_LOADS:
    from mlx_fused_init import _ext as native

TRANSFORMS = {
    "normal": dict(kind=0, scale=0.37),
    "shifted": dict(kind=0, scale=1.5, shift=-0.25),
    "uniform": dict(kind=1, low=-0.75, high=0.5),
    "truncated": dict(kind=3, scale=0.02, shift=0.0, low=-0.04, high=0.04),
    "truncated_tail": dict(kind=3, scale=1.0, shift=0.0, low=2.5, high=float("inf")),
}
DTYPES = [mx.float32, mx.float16, mx.bfloat16]
WINDOWS = [
    dict(shape=[]),
    dict(shape=[1]),
    dict(shape=[7]),
    dict(shape=[33, 70]),
    dict(shape=[5, 3, 11]),
    dict(shape=[30, 990], full_shape=[37, 1001], start=[3, 5]),
    dict(shape=[2, 3, 3, 4], full_shape=[8, 3, 5, 7], start=[1, 0, 2, 3]),
    # The top of the 2^64-element counter space (stream index ~ 2^62).
    dict(shape=[1000], full_shape=[2**62], start=[2**62 - 1000]),
]
KEYS = {
    "key0": lambda: mx.random.key(0),
    "high": lambda: mx.array([0xFFFFFFFF, 0x9E3779B9], dtype=mx.uint32),
    "reversed_view": lambda: mx.random.key(12345)[::-1],
    "strided_view": lambda: mx.array([7, 0, 8, 0], dtype=mx.uint32)[::2],
    "lazy_split": lambda: mx.random.split(mx.random.key(3))[1],
}


def both(key, window, dtype, transform, subsequence=0):
    args = dict(transform, subsequence=subsequence, name="t", **{
        k: v for k, v in window.items() if k != "shape"})
    a = native.fused_init(key, window["shape"], dtype, stream=mx.cpu, **args)
    b = _portable.fused_init(key, window["shape"], dtype, stream=mx.cpu, **args)
    return a, b


@needs_native
@pytest.mark.parametrize("transform", TRANSFORMS.values(), ids=TRANSFORMS.keys())
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).split(".")[-1])
@pytest.mark.parametrize("w", range(len(WINDOWS)))
def test_portable_cpu_gives_the_native_bits(transform, dtype, w):
    for name, make in KEYS.items():
        for q in (0, 2**40 + 5):
            a, b = both(make(), WINDOWS[w], dtype, transform, q)
            assert b.dtype == a.dtype and b.shape == a.shape
            np.testing.assert_array_equal(bits(b), bits(a), err_msg=f"key {name}, q {q}")


@needs_native
@pytest.mark.parametrize("kernel", mfi.available_cpu_kernels().split(", "))
@pytest.mark.parametrize("threads", [1, 2])
def test_every_kernel_and_thread_count_agree(kernel, threads):
    # The two modules keep their own settings: set both the same way.
    saved = [(m.cpu_kernel(), m.num_threads()) for m in (native, _kernels)]
    try:
        for m in (native, _kernels):
            m.set_cpu_kernel(kernel)
            m.set_num_threads(threads)
        for transform in TRANSFORMS.values():
            a, b = both(mx.random.key(9), dict(shape=[257, 1031]), mx.bfloat16, transform, 3)
            np.testing.assert_array_equal(bits(b), bits(a))
    finally:
        for m, (k, t) in zip((native, _kernels), saved):
            m.set_cpu_kernel(k)
            m.set_num_threads(t)


BAD = [
    dict(shape=[-1]),
    dict(shape=[4], full_shape=[3]),
    dict(shape=[2, 2], full_shape=[4, 4], start=[3, 0]),
    dict(shape=[4], kind=1, low=1.0, high=0.0),
    dict(shape=[4], kind=1, low=0.0, high=1e6, dtype=mx.float16),
    dict(shape=[4], kind=3, scale=1.0, low=1.0, high=1.0),
    dict(shape=[4], kind=3, scale=1.0, low=20.0, high=30.0),
    dict(shape=[4], kind=0, scale=1e5, dtype=mx.float16),
    dict(shape=[4], kind=7),
    dict(shape=[4], full_shape=[2**62 + 1]),
    dict(shape=[4], dtype=mx.int32),
    dict(shape=[3], key=mx.array([1, 2, 3], dtype=mx.uint32)),
    dict(shape=[3], key=mx.array([1, 2], dtype=mx.int32)),
]


@needs_native
@pytest.mark.parametrize("case", range(len(BAD)))
def test_the_same_arguments_are_refused_in_the_same_words(case):
    kw = dict(BAD[case])
    shape, dtype = kw.pop("shape"), kw.pop("dtype", mx.float32)
    key = kw.pop("key", mx.random.key(0))
    kw.setdefault("kind", 0)
    errors = []
    for fn in (native.fused_init, _portable.fused_init):
        with pytest.raises(ValueError) as e:
            fn(key, shape, dtype, name="bad", stream=mx.cpu, **kw)
        errors.append(str(e.value))
    assert errors[0] == errors[1]
    assert errors[0].startswith("[bad] ")


def test_the_output_buffer_is_checked():
    # A buffer of the wrong size, or a read-only one, is refused, not written.
    with pytest.raises(ValueError, match=r"\[t\] the output buffer must be C-contiguous and "
                                         r"hold 16 bytes, but it holds 12"):
        _kernels.fill(bytearray(12), 0, 0, [4], 0, kind=0, name="t")
    with pytest.raises(BufferError):
        _kernels.fill(bytes(16), 0, 0, [4], 0, kind=0, name="t")
    out = bytearray(16)
    _kernels.fill(out, 0, 0, [4], 0, kind=0, name="t")
    assert out != bytearray(16)


def test_the_portable_module_links_no_mlx():
    so = Path(_kernels.__file__)
    assert so.exists()
    if sys.platform.startswith("linux"):
        needed = subprocess.run(["readelf", "-d", str(so)], capture_output=True, text=True,
                                check=True).stdout
        assert "libmlx" not in needed
        undefined = subprocess.run(["nm", "-D", "--undefined-only", "-C", str(so)],
                                   capture_output=True, text=True, check=True).stdout
        assert "mlx::" not in undefined
        # The check itself bites: the native module does need libmlx.
        native_so = next(so.parent.glob("_ext*.so"))
        assert "libmlx" in subprocess.run(["readelf", "-d", str(native_so)],
                                          capture_output=True, text=True).stdout
    elif sys.platform == "darwin":
        libs = subprocess.run(["otool", "-L", str(so)], capture_output=True, text=True,
                              check=True).stdout
        assert "libmlx" not in libs


def test_portable_cpu_draws_are_evaluated_when_returned():
    w = _portable.fused_init(mx.random.key(0), [64, 64], mx.float32, kind=0, stream=mx.cpu)
    assert w.dtype == mx.float32 and w.shape == (64, 64)
    # Reading the buffer triggers no computation: it is already there.
    assert bytes(memoryview(w)) != bytes(64 * 64 * 4)


def run_portable(code: str, tmp_path) -> str:
    env = {**os.environ, "MLX_FUSED_INIT_BACKEND": "portable"}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


MODEL = """
import mlx.core as mx, mlx.nn as nn, mlx_fused_init as m
from mlx.utils import tree_flatten
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = [nn.Linear(512, 512) for _ in range(6)]
        self.head = nn.Linear(512, 1000, bias=False)
model = Net()
mx.eval(model.parameters())
nbytes = sum(v.nbytes for _, v in tree_flatten(model.parameters()))
"""


def test_portable_init_model_peak_is_the_model(tmp_path):
    out = run_portable(MODEL + """
mx.synchronize()
before = mx.get_active_memory()
mx.reset_peak_memory()
m.init_model(model, m.recipes.llama(), key=mx.random.key(0))
mx.eval(model.parameters())
print(m.backend_info()['backend'], nbytes, before, mx.get_peak_memory())
""", tmp_path)
    backend, nbytes, before, peak = out.split()
    assert backend == "portable"
    nbytes, before, peak = int(nbytes), int(before), int(peak)
    assert before >= nbytes
    # Each parameter leaves the model before its new value is drawn: the
    # peak is what was there before, plus at most MLX's scalar for zeros.
    assert peak <= before + 64, (peak - before, nbytes)


def test_portable_init_model_is_all_or_nothing(tmp_path):
    # A rule that fails on the last parameter (He on a 1-D bias) leaves
    # every parameter as it was, and MLX's global random state unadvanced.
    out = run_portable(MODEL + """
import hashlib
def digest():
    return hashlib.sha256(b''.join(bytes(memoryview(v)) for _, v in
                                   tree_flatten(model.parameters()))).hexdigest()
mx.random.seed(3)
d0 = digest()
try:
    m.init_model(model, [("*.weight", m.normal(0.0, 0.02)), ("head.*", None),
                         ("layers.5.bias", m.he_normal())])
except ValueError as e:
    print('refused', 'at least 2 dimensional' in str(e))
print(d0 == digest(), mx.array_equal(mx.random.uniform(shape=(4,)),
                                     (mx.random.seed(3), mx.random.uniform(shape=(4,)))[1]).item())
""", tmp_path)
    assert out.split() == ["refused", "True", "True", "True"]
