"""The portable GPU kernels (python/mlx_fused_init/_gpu.py), on the CPU.

_gpu.fused_init runs against a recording stand-in of mx.fast.metal_kernel /
mx.fast.cuda_kernel (tests/portable_shim.py); the strings it hands MLX are
wrapped exactly as MLX wraps them (tests/mlx_kernel_text.py, a port of
MLX's generators), compiled as C++ through the Metal and CUDA shims, run for
every thread of the launch MLX would make, and bit-compared with the CPU
path of the portable module (_kernels.fill)."""

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor

import mlx.core as mx
import numpy as np
import pytest

import mlx_kernel_text as mkt
import portable_shim as ps
from mlx_fused_init import _gpu, _kernels
from shim_build import clangxx, gxx

BACKENDS = ["metal", "cuda"]
DTYPES = [mx.float32, mx.float16, mx.bfloat16]
CODE = {mx.float32: 0, mx.float16: 1, mx.bfloat16: 2}
KEYS = [(0, 0), (12345, 678), (0xFFFFFFFF, 0x9E3779B9)]
# One draw of each kernel variant (fused_init_math.h): the spec and the
# variant _kernels.check must pick for it.
TRANSFORMS = {
    "normal": (dict(kind=0, scale=0.5), 0),
    "uniform": (dict(kind=1, low=-0.75, high=1.5), 1),
    "shifted_normal": (dict(kind=0, scale=1.5, shift=-0.25), 2),
    "truncated_normal": (dict(kind=3, scale=0.8, shift=0.1, low=-1.0, high=1.5), 3),
}


@pytest.fixture(scope="session")
def build_dir():
    assert gxx(), "the shim tests need a C++ compiler (g++)"
    with tempfile.TemporaryDirectory(prefix="mfi_portable_shim_") as d:
        yield d


def record_draw(backend, key, shape, dtype, **spec):
    """The launch _gpu.fused_init makes for this draw (recorded), and its
    (args, n, variant) from _kernels.check."""
    args, n, variant = _kernels.check(list(shape), CODE[dtype], gpu=True, **spec)
    if not isinstance(key, mx.array):
        key = mx.array(key, dtype=mx.uint32)
    with ps.record(backend) as rec:
        out = _gpu.fused_init(key, args, n, variant, shape, dtype, stream=None)
    assert out.shape == tuple(shape) and out.dtype == dtype
    assert len(rec.launches) == 1
    return rec.launches[0], (args, n, variant)


def cpu_bits(key, shape, dtype, **spec):
    n = int(np.prod(shape, dtype=np.int64))
    out = np.zeros(n, dtype=np.uint32 if dtype == mx.float32 else np.uint16)
    _kernels.fill(out, key[0], key[1], list(shape), CODE[dtype], **spec)
    return out.reshape(shape)


def shim_bits(build_dir, backend, key, shape, dtype, **spec):
    launch, _ = record_draw(backend, key, shape, dtype, **spec)
    return ps.run(ps.build(launch, build_dir), launch)


def check(build_dir, backend, key, shape, dtype, msg="", **spec):
    np.testing.assert_array_equal(shim_bits(build_dir, backend, key, shape, dtype, **spec),
                                  cpu_bits(key, shape, dtype, **spec), err_msg=msg)


@pytest.fixture(scope="session", autouse=True)
def prebuilt(build_dir):
    """Compiles every (back-end, variant, dtype) kernel up front, in
    parallel: one text each, whatever the draw's size or window."""
    launches = [record_draw(b, KEYS[0], (5,), d, **spec)[0]
                for b in BACKENDS for d in DTYPES for spec, _ in TRANSFORMS.values()]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(lambda la: ps.build(la, build_dir), launches))


# ------------------------------------------------------------- the calls
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("transform", list(TRANSFORMS))
def test_launch_uses_exactly_kernel_text(backend, transform):
    spec, variant = TRANSFORMS[transform]
    for dtype in DTYPES:
        launch, (args, n, v) = record_draw(backend, KEYS[1], (7, 9), dtype, **spec)
        assert v == variant
        header, source = _gpu.kernel_text(backend, variant, dtype)
        assert (launch.make["header"], launch.make["source"]) == (header, source)
        assert launch.make["input_names"] == ["key", "args"]
        assert launch.make["output_names"] == ["out"]
        assert launch.make["ensure_row_contiguous"] is True
        assert launch.call["template"] == [("V", variant)]
        assert launch.call["output_dtypes"] == [dtype]
        assert tuple(launch.call["output_shapes"][0]) == (7, 9)
        np.testing.assert_array_equal(launch.inputs[1], np.array(args, dtype=np.uint32))
        assert launch.inputs[1].size == 84 and n == 63  # 20 + 2 * 16 + 2 * 16 words
    # The header is the build's inlined metal/fused_init_kernel.h: no
    # project include left, ASCII (MLX hands Metal ASCII).
    assert header.isascii() and '#include "' not in header
    assert "fill_group" in header and "philox4x32_10" in header


def test_kernel_objects_are_built_once_per_dtype():
    with ps.record("metal") as rec:
        made = []
        real = mx.fast.metal_kernel
        mx.fast.metal_kernel = lambda **kw: made.append(kw["name"]) or real(**kw)
        try:
            for dtype in DTYPES + DTYPES:
                for spec, _ in TRANSFORMS.values():
                    args, n, v = _kernels.check([9], CODE[dtype], gpu=True, **spec)
                    _gpu.fused_init(mx.array(KEYS[1], dtype=mx.uint32), args, n, v, (9,), dtype)
        finally:
            mx.fast.metal_kernel = real
    assert made == ["mfi_fused_init_float32", "mfi_fused_init_float16",
                    "mfi_fused_init_bfloat16"]
    assert len(rec.launches) == 24


def test_empty_draw_launches_nothing():
    with ps.record("cuda") as rec:
        args, n, v = _kernels.check([0, 5], 2, gpu=True, kind=0)
        out = _gpu.fused_init(mx.array([1, 2], dtype=mx.uint32), args, n, v, (0, 5), mx.bfloat16)
    assert n == 0 and out.shape == (0, 5) and out.dtype == mx.bfloat16
    assert rec.launches == []


# ----------------------------------------------------------------- bits
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("transform", list(TRANSFORMS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 3, 4, 1023, (1 << 20) + 3])
def test_sizes_match_cpu(build_dir, backend, transform, dtype, n):
    spec, _ = TRANSFORMS[transform]
    for key in KEYS if n < 4096 else KEYS[2:]:
        check(build_dir, backend, key, (n,), dtype, msg=f"key {key}", **spec)


# The truncated normal's other mappings (docs/spec.md §3) run the same
# kernel variant as TRANSFORMS' row (the inverse CDF): the tail mapping
# (upper and lower side) and the narrow one.
TRUNCATED_MAPPINGS = {
    "tail_upper": dict(kind=3, scale=0.8, shift=0.1, low=2.0, high=float("inf")),
    "tail_lower": dict(kind=3, scale=1.5, shift=-0.5, low=-float("inf"), high=-0.6),
    "narrow": dict(kind=3, scale=0.8, shift=0.1, low=1.0, high=1.001),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mapping", list(TRUNCATED_MAPPINGS))
def test_truncated_mappings_match_cpu(build_dir, backend, mapping):
    spec = TRUNCATED_MAPPINGS[mapping]
    for dtype in DTYPES:
        check(build_dir, backend, KEYS[2], (4099,), dtype, msg=mapping, **spec)
        check(build_dir, backend, KEYS[1], (30, 99), dtype, msg=mapping,
              full_shape=[37, 101], start=[3, 1], **spec)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "full_shape, start, shape",
    [
        ((37, 1001), (3, 5), (30, 990)),  # rows start and end inside blocks
        ((16, 16), (4, 0), (8, 16)),  # whole rows: one run
        ((6, 7, 9), (1, 2, 3), (4, 3, 5)),  # two cut outer dimensions
        ((4, 5, 6, 7), (1, 0, 2, 1), (2, 5, 3, 6)),
        ((2**62,), (2**62 - 1000,), (1000,)),  # the top of the stream
        ((2**31 - 1, 2**31 - 1), (2**31 - 3, 2**31 - 1000), (2, 999)),  # near it, 2-D
    ],
)
def test_windows_match_cpu(build_dir, backend, full_shape, start, shape):
    for dtype in DTYPES:
        for transform, (spec, _) in TRANSFORMS.items():
            check(build_dir, backend, KEYS[2], shape, dtype, msg=transform,
                  full_shape=list(full_shape), start=list(start), **spec)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("q", [1, 2**32, 2**40 + 17, 2**64 - 1])
def test_subsequences_match_cpu(build_dir, backend, q):
    for dtype in DTYPES:
        for transform, (spec, _) in TRANSFORMS.items():
            check(build_dir, backend, KEYS[1], (3, 43), dtype, msg=transform, subsequence=q,
                  full_shape=[5, 50], start=[1, 6], **spec)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("view", ["reversed", "strided", "broadcast"])
def test_key_views(build_dir, backend, view):
    # Keys of any stride reach the kernel row contiguous
    # (ensure_row_contiguous=True, which the recorder asserts).
    k = mx.array([0x9E3779B9, 0x9E3779B9, 0xFFFFFFFF, 5], dtype=mx.uint32)
    key = {"reversed": k[1:3][::-1], "strided": k[1::2],
           "broadcast": mx.broadcast_to(k[0], (2,))}[view]
    words = tuple(int(w) for w in np.array(key))
    spec, _ = TRANSFORMS["shifted_normal"]
    launch, _ = record_draw(backend, key, (515,), mx.float16, **spec)
    assert launch.inputs[0].flags["C_CONTIGUOUS"] and tuple(launch.inputs[0]) == words
    np.testing.assert_array_equal(
        ps.run(ps.build(launch, build_dir), launch),
        cpu_bits(words, (515,), mx.float16, **spec))


# ----------------------------------------------------------------- grid
def test_launch_dims():
    x_max = _gpu.GRID_X_MAX
    assert _gpu.launch_dims(1) == ((1, 1, 1), (256, 1, 1))
    assert _gpu.launch_dims(x_max) == ((x_max, 1, 1), (256, 1, 1))
    assert _gpu.launch_dims(x_max + 1) == ((x_max // 2 + 1, 2, 1), (256, 1, 1))
    top = 2**32 - 1  # (2^34 - 4) / 4 threads
    (gx, gy, gz), tg = _gpu.launch_dims(top)
    assert gx <= x_max and gx * gy >= top and gx * (gy - 1) < top and (gx, gy) == (x_max, 4096)
    # Within MLX's int grid and CUDA's launch limits (y: 65535 blocks).
    blocks, block = mkt.cuda_launch((gx, gy, gz), tg)
    assert blocks == (4096, 4096, 1) and block == (256, 1, 1)
    for bad in (0, top + 1):
        with pytest.raises(ValueError):
            _gpu.launch_dims(bad)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n", [4 * _gpu.GRID_X_MAX, 4 * _gpu.GRID_X_MAX + 1,
                               4 * _gpu.GRID_X_MAX + 7])
def test_grid_switches_to_two_rows(build_dir, backend, n):
    # The last one-row launch, and the first two-row ones (a tail thread
    # in the second row; idle threads at its end).
    launch, _ = record_draw(backend, KEYS[2], (n,), mx.float16, kind=0, scale=0.5)
    assert launch.call["grid"][1] == (1 if n == 4 * _gpu.GRID_X_MAX else 2)
    np.testing.assert_array_equal(ps.run(ps.build(launch, build_dir),
                                         launch),
                                  cpu_bits(KEYS[2], (n,), mx.float16, kind=0, scale=0.5))


def test_dispatch_limit_is_a_value_error():
    # 2^34 - 4 elements: one thread per four, at most 2^32 - 1 threads.
    args, n, _ = _kernels.check([262140, 65537], 0, gpu=True, kind=0)
    assert n == 2**34 - 4
    assert _gpu.launch_dims((n + 3) // 4)[0][:2] == (2**20, 4096)
    with pytest.raises(ValueError, match="2\\^34 - 4"):
        _kernels.check([5113, 3360037], 0, gpu=True, kind=0)  # 2^34 - 3
    _kernels.check([5113, 3360037], 0, gpu=False, kind=0)  # the CPU has no such limit


# --------------------------------------------------------------- Philox
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rows", [1, 5, 1000])
def test_philox_kernel_matches_cpu(build_dir, backend, rows):
    rng = np.random.default_rng(rows)
    c = rng.integers(0, 2**32, size=(rows, 4), dtype=np.uint32)
    for key in KEYS:
        with ps.record(backend) as rec:
            out = _gpu.philox4x32_10(mx.array(c), mx.array(key, dtype=mx.uint32))
        assert out.shape == (rows, 4) and out.dtype == mx.uint32
        (launch,) = rec.launches
        assert (launch.make["header"], launch.make["source"]) == _gpu.philox_kernel_text(backend)
        want = np.zeros((rows, 4), dtype=np.uint32)
        _kernels.philox(want, c, key[0], key[1], rows)
        np.testing.assert_array_equal(ps.run(ps.build(launch, build_dir), launch), want)


# ---------------------------------------------- the port and compilers
def _print_mlx_metal_source(launch, path):
    """Has the running MLX print its own generated Metal source for this
    launch; False where it cannot here. mx.fast.metal_kernel prints the
    source (verbose=True) when called, and a call inside export_function
    needs no Metal device in the MLX releases that can export GPU kernels
    without Metal (0.32.4 can)."""
    m, c = launch.make, launch.call
    try:  # older MLX releases refuse to build the kernel object without Metal
        kernel = mx.fast.metal_kernel(**m)
    except (RuntimeError, ValueError):
        return False
    inputs = [mx.array(x) for x in launch.inputs]

    def f(*xs):
        return kernel(inputs=list(xs), output_shapes=c["output_shapes"],
                      output_dtypes=c["output_dtypes"], grid=c["grid"],
                      threadgroup=c["threadgroup"], template=c.get("template"),
                      verbose=True)[0]

    try:
        mx.export_function(str(path / "probe.mlxfn"), f, *inputs)
    except (RuntimeError, ValueError):
        return False
    return True


@pytest.mark.parametrize("transform", ["normal", "truncated_normal"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_port_matches_the_running_mlx_metal_generator(capfd, tmp_path, transform, dtype):
    spec, _ = TRANSFORMS[transform]
    launch, _ = record_draw("metal", KEYS[1], (9, 7), dtype, **spec)
    capfd.readouterr()
    if not _print_mlx_metal_source(launch, tmp_path):
        pytest.skip(f"MLX {mx.__version__} cannot export a Metal kernel without Metal, "
                    "so it cannot print its generated source here")
    printed = capfd.readouterr().out
    name, text = launch.text()
    # MLX prints "```", newline, the source, newline (std::endl), "```".
    assert printed.count("```") == 2
    generated = printed[printed.index("```\n") + 4:printed.rindex("\n```")]
    assert generated == text, "tests/mlx_kernel_text.py no longer matches MLX's generator"
    assert f'[[host_name("{name}")]]' in generated and len(generated) > 30000


def test_cuda_shim_with_clang(build_dir):
    # NVRTC is clang-like in what it accepts; the shim built with clang++
    # gives the same bits. (The Metal text's explicit instantiation,
    # `template [[host_name(...)]] ...`, is Metal syntax that clang's C++
    # front-end refuses, so only g++ builds the Metal shim.)
    cxx = clangxx()
    if not cxx:
        pytest.skip("no clang++ >= 15 installed (.ci/run installs one)")
    specs = [(t, spec) for t, (spec, _) in TRANSFORMS.items()] + list(TRUNCATED_MAPPINGS.items())
    for transform, spec in specs:
        for dtype in DTYPES:
            launch, _ = record_draw("cuda", KEYS[2], (3, 339), dtype, **spec)
            dll = ps.build(launch, build_dir, cxx=cxx)
            np.testing.assert_array_equal(ps.run(dll, launch),
                                          cpu_bits(KEYS[2], (3, 339), dtype, **spec),
                                          err_msg=transform)


def test_cuda_text_compiles_under_mlx_0_31_header(build_dir):
    # MLX 0.31's cuda_kernel header also defines a macro `inf`: the kernel
    # header must not use that identifier.
    spec, _ = TRANSFORMS["truncated_normal"]
    launch, _ = record_draw("cuda", KEYS[1], (1027,), mx.bfloat16, **spec)
    dll = ps.build(launch, build_dir, legacy_inf_macro=True)
    np.testing.assert_array_equal(ps.run(dll, launch),
                                  cpu_bits(KEYS[1], (1027,), mx.bfloat16, **spec))


# ------------------------------------------------------------- canaries
def test_a_wrong_output_index_is_caught(build_dir, monkeypatch):
    # The harness catches a body that indexes wrong: with every thread one
    # group too far, nothing writes elements 0-3 (they keep the canary
    # bytes MLX's uninitialized output stands for here).
    monkeypatch.setitem(_gpu._SOURCES, "cuda", _gpu._CUDA_SOURCE.replace(
        "+ threadIdx.x)", "+ threadIdx.x + 1)"))
    launch, _ = record_draw("cuda", KEYS[1], (1023,), mx.float32, kind=0, scale=0.5)
    got = ps.run(ps.build(launch, build_dir), launch)
    want = cpu_bits(KEYS[1], (1023,), mx.float32, kind=0, scale=0.5)
    assert (got[:4] != want[:4]).all() and (got[4:] == want[4:]).all()


# ------------------------------------------------------------ perturbation
PERTURB = 4  # the perturbation's kind and kernel variant (fused_init_math.h)


def _weights(shape, dtype, seed=0):
    w = mx.random.normal(shape, key=mx.random.key(seed)) * 10.0 ** mx.random.randint(
        -9, 4, shape, key=mx.random.key(seed + 1)).astype(mx.float32)
    return w.astype(dtype)


def record_perturb(backend, key, w, **spec):
    args, n, variant = _kernels.check(list(w.shape), CODE[w.dtype], gpu=True, kind=PERTURB,
                                      **spec)
    assert variant == PERTURB
    with ps.record(backend) as rec:
        out = _gpu.fused_perturb(mx.array(key, dtype=mx.uint32), w, args, n)
    assert out.shape == w.shape and out.dtype == w.dtype
    assert len(rec.launches) == 1
    return rec.launches[0]


def cpu_perturb_bits(key, w, **spec):
    src = np.ascontiguousarray(ps._host_values(w)).reshape(-1)
    if src.dtype == np.float32:
        src = src.view(np.uint32)
    out = np.zeros_like(src)
    _kernels.fill(out, key[0], key[1], list(w.shape), CODE[w.dtype], kind=PERTURB, w=src,
                  **spec)
    return out.reshape(w.shape)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_perturbation_kernel_matches_cpu(build_dir, backend, dtype):
    # Shapes: 0-d and tiny (MLX passes inputs of fewer than 8 elements in
    # constant memory), a partial last group, a window of a larger tensor.
    cases = [((), {}), ((3,), {}), ((7, 13), {}),
             ((30, 99), dict(full_shape=[37, 101], start=[3, 1]))]
    for shape, window in cases:
        w = _weights(shape, dtype)
        spec = dict(scale=-0.37, shift=0.995, subsequence=2**35 + 9, **window)
        launch = record_perturb(backend, KEYS[1], w, **spec)
        assert launch.make["input_names"] == ["key", "args", "w"]
        assert launch.call["template"] == [("V", PERTURB)]
        got = ps.run(ps.build(launch, build_dir), launch)
        np.testing.assert_array_equal(got.reshape(shape), cpu_perturb_bits(KEYS[1], w, **spec),
                                      err_msg=f"shape {shape}")
