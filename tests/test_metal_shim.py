"""The Metal kernel source, compiled as C++ through tests/metal_shim and run
on the CPU for every thread of the dispatch the host code plans, gives the
bits of the CPU path. Every test runs twice: on metal/fused_init.metal as
the files are, and on the extension's embedded source
(_ext.metal_kernel_source(), what the GPU compiles at run time without a
metallib, and the text the metallib is built from)."""

import ctypes
import subprocess
import sys

import mlx.core as mx
import numpy as np
import pytest

from mlx_fused_init._backend import ext as _ext
from shim_build import (REPO, DTYPES, build_shim, clangxx, gxx, run_cpu, run_cpu_perturb,
                        run_philox, run_shim, run_shim_perturb)


@pytest.fixture(scope="session", params=["files", "embedded"])
def shim(request, tmp_path_factory):
    assert gxx(), "the shim test needs a C++ compiler (g++)"
    source = _ext.metal_kernel_source() if request.param == "embedded" else None
    return build_shim(tmp_path_factory.mktemp("shim"), source=source, tag=request.param)


@pytest.fixture(scope="session")
def shim_faithful_sqrt(tmp_path_factory):
    return build_shim(tmp_path_factory.mktemp("shim_fsqrt"), defines=["MFI_SHIM_FAITHFUL_SQRT"])


KEYS = [(0, 0), (12345, 678), (0xFFFFFFFF, 0x9E3779B9)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 3, 4, 1023, (1 << 20) + 3])
def test_sizes_match_cpu(shim, n, dtype):
    for key in KEYS:
        np.testing.assert_array_equal(
            run_shim(shim, key, (n,), dtype, scale=0.5),
            run_cpu(key, (n,), dtype, scale=0.5),
            err_msg=f"key {key}",
        )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7, 13), (5, 3, 11), (8, 3, 3, 5), (1, 1)])
@pytest.mark.parametrize("kind, shift", [(0, 0.0), (0, -1.5), (1, -0.75)])
def test_shapes_dtypes_transforms_match_cpu(shim, shape, dtype, kind, shift):
    key = KEYS[1]
    got = run_shim(shim, key, shape, dtype, kind=kind, scale=1.5, shift=shift)
    np.testing.assert_array_equal(got, run_cpu(key, shape, dtype, kind=kind, scale=1.5, shift=shift))


@pytest.mark.parametrize(
    "full_shape, start, shape",
    [
        ((37, 1001), (3, 5), (30, 990)),  # rows start and end inside blocks
        ((16, 16), (4, 0), (8, 16)),  # whole rows: one run
        ((6, 7, 9), (1, 2, 3), (4, 3, 5)),  # two outer dimensions
        ((4, 5, 6, 7), (1, 0, 2, 1), (2, 5, 3, 6)),
    ],
)
def test_windows_match_cpu(shim, full_shape, start, shape):
    for dtype in DTYPES:
        got = run_shim(shim, KEYS[2], shape, dtype, full_shape=full_shape, start=start)
        want = run_cpu(KEYS[2], shape, dtype, full_shape=list(full_shape), start=list(start))
        np.testing.assert_array_equal(got, want)


def test_64_bit_stream_indexes(shim):
    # A window at the end of a virtual tensor of 2^34 + 12 elements: block
    # indexes above 2^32 use the counter's high word.
    full, start, shape = (2**17 + 3, 2**17), (2**17, 2**17 - 40), (3, 40)
    for dtype in DTYPES:
        got = run_shim(shim, KEYS[0], shape, dtype, full_shape=full, start=start)
        np.testing.assert_array_equal(
            got, run_cpu(KEYS[0], shape, dtype, full_shape=list(full), start=list(start))
        )


def test_subsequence(shim):
    q = 2**40 + 17
    np.testing.assert_array_equal(
        run_shim(shim, KEYS[1], (33,), mx.float32, subsequence=q),
        run_cpu(KEYS[1], (33,), mx.float32, subsequence=q),
    )


@pytest.mark.parametrize("max_group", [1, 7, 32, 1024])
def test_threadgroup_sizes(shim, max_group):
    n = 4 * 97 + 2
    np.testing.assert_array_equal(
        run_shim(shim, KEYS[1], (n,), mx.float16, max_group=max_group),
        run_cpu(KEYS[1], (n,), mx.float16),
    )


def test_faithful_sqrt_device_gives_the_same_bits(shim_faithful_sqrt):
    # A GPU whose sqrt is only faithful still yields the correctly rounded
    # radius (fused_init_math.h, sqrt_rn), hence the same bits.
    for dtype in DTYPES:
        np.testing.assert_array_equal(
            run_shim(shim_faithful_sqrt, KEYS[1], (4099,), dtype),
            run_cpu(KEYS[1], (4099,), dtype),
        )


def host_names(shim, out_type):
    """The kernel names the host asks for, variant 0, 1, ... until the host
    refuses or repeats a name: whatever variants the host knows."""
    buf = ctypes.create_string_buffer(4096)
    names = []
    for variant in range(64):
        shim.mfi_shim_host_name(out_type, variant, buf, len(buf))
        name = buf.value.decode()
        if not name or name in names:
            break
        names.append(name)
    return names


def test_instantiated_names_are_exactly_the_host_names(shim):
    # Every kernel the source instantiates is one the host can ask for
    # (metal_kernel_name), and the other way round, for every dtype and
    # transform variant there is (at least normal, uniform, shifted normal).
    buf = ctypes.create_string_buffer(4096)
    shim.mfi_shim_registered_names(buf, len(buf))
    registered = set(buf.value.decode().split())
    host = [host_names(shim, out_type) for out_type in range(3)]
    # normal, uniform, shifted and truncated normal, and the perturbation
    assert len({len(h) for h in host}) == 1 and len(host[0]) == 5
    assert registered == {n for h in host for n in h}


def test_philox_kernel_matches_known_answers(shim, philox_kat):
    for counter, key, expected, name in philox_kat:
        out = run_philox(shim, np.array([counter], dtype=np.uint32), tuple(key))
        assert out[0].tolist() == expected, name


def test_philox_kernel_matches_cpu(shim):
    rng = np.random.default_rng(0)
    c = rng.integers(0, 2**32, size=(1000, 4), dtype=np.uint32)
    out = run_philox(shim, c, (5, 9), max_group=64)
    want = _ext.philox4x32_10(mx.array(c), mx.array([5, 9], dtype=mx.uint32), stream=mx.cpu)
    np.testing.assert_array_equal(out, np.array(want))


def key_views(k0, k1):
    """The same key (k0, k1) as views the GPU may be handed: reversed
    (stride -1), every other word of a longer array (stride 2), and for
    k0 == k1 a broadcast scalar (stride 0)."""
    views = {
        "reversed": np.array([k1, k0], dtype=np.uint32)[::-1],
        "strided": np.array([k0, 0xDEAD, k1, 0xBEEF, 7], dtype=np.uint32)[::2][:2],
    }
    if k0 == k1:
        views["broadcast"] = np.broadcast_to(np.uint32(k0), (2,))
    return views


@pytest.mark.parametrize("key", [(12345, 678), (0x9E3779B9, 0x9E3779B9)])
def test_key_views_fused_init(shim, key):
    views = key_views(*key)
    assert {v.strides[0] for v in views.values()} >= {-4, 8}
    for dtype in DTYPES:
        want = run_cpu(key, (1027,), dtype, scale=0.5, shift=0.25)
        for name, view in views.items():
            got = run_shim(shim, view, (1027,), dtype, scale=0.5, shift=0.25)
            np.testing.assert_array_equal(got, want, err_msg=name)


@pytest.mark.parametrize("key", [(12345, 678), (0x9E3779B9, 0x9E3779B9)])
def test_key_views_philox(shim, key):
    rng = np.random.default_rng(1)
    c = rng.integers(0, 2**32, size=(257, 4), dtype=np.uint32)
    want = np.array(_ext.philox4x32_10(mx.array(c), mx.array(key, dtype=mx.uint32), stream=mx.cpu))
    for name, view in key_views(*key).items():
        np.testing.assert_array_equal(run_philox(shim, c, view, max_group=64), want, err_msg=name)


@pytest.mark.parametrize("view", ["reversed", "strided", "broadcast"])
def test_key_views_through_the_op(view):
    # The op's own handling of MLX views (on the CPU here; on a GPU stream
    # it adds a Contiguous node, tests/test_gpu.py).
    k = mx.array([77, 77, 5, 6], dtype=mx.uint32)
    key = {"reversed": k[2:][::-1], "strided": k[1::2],
           "broadcast": mx.broadcast_to(k[0], (2,))}[view]
    plain = mx.array(np.array(key), dtype=mx.uint32)
    for args in (dict(kind=0, scale=0.5), dict(kind=1, low=-1.0, high=2.0)):
        got = _ext.fused_init(key, [515], mx.float32, stream=mx.cpu, **args)
        want = _ext.fused_init(plain, [515], mx.float32, stream=mx.cpu, **args)
        np.testing.assert_array_equal(np.array(got), np.array(want))


def test_dispatch_limit_is_2_pow_34_minus_4(shim):
    # One thread per four elements, 32-bit thread positions: the op refuses
    # more when the graph is built (tests/test_gpu.py on a Mac); the plan
    # refuses again.
    threads, group = ctypes.c_uint64(), ctypes.c_uint64()
    assert shim.mfi_shim_plan(2**34 - 4, 1024, ctypes.byref(threads), ctypes.byref(group)) == 0
    assert (threads.value, group.value) == (2**32 - 1, 1024)
    assert shim.mfi_shim_plan(2**34 - 3, 1024, ctypes.byref(threads), ctypes.byref(group)) == -1
    assert shim.mfi_shim_plan(5, 1024, ctypes.byref(threads), ctypes.byref(group)) == 0
    assert (threads.value, group.value) == (2, 2)


def test_clang_build_matches_cpu(tmp_path):
    # Apple's Metal compiler is clang-based: the shim built with clang++
    # (the embedded source, the real builds' flags) gives the same bits.
    # tests/test_contraction.py builds it with contraction on, too.
    cxx = clangxx()
    if not cxx:
        pytest.skip("no clang++ >= 15 installed (.ci/run installs one)")
    dll = build_shim(tmp_path, cxx=cxx, source=_ext.metal_kernel_source(), tag="clang")
    for dtype in DTYPES:
        for kind, shift in [(0, 0.0), (0, -1.5), (1, -0.75)]:
            np.testing.assert_array_equal(
                run_shim(dll, KEYS[2], (5, 3, 11), dtype, kind=kind, scale=1.5, shift=shift),
                run_cpu(KEYS[2], (5, 3, 11), dtype, kind=kind, scale=1.5, shift=shift))
    np.testing.assert_array_equal(
        run_philox(dll, np.arange(40, dtype=np.uint32).reshape(10, 4), (5, 9)),
        np.array(_ext.philox4x32_10(mx.array(np.arange(40, dtype=np.uint32).reshape(10, 4)),
                                    mx.array([5, 9], dtype=mx.uint32), stream=mx.cpu)))


# ------------------------------------------------------- embedded source
def test_embedded_source_is_the_metal_folder_inlined():
    # One self-contained, ASCII text (MLX passes it to Metal as ASCII) that
    # includes nothing of the project's and holds every line of the kernel
    # file and of each header, in order, as the build found them.
    src = _ext.metal_kernel_source()
    assert src.isascii()
    includes = [ln.strip() for ln in src.splitlines() if ln.strip().startswith("#include")]
    assert all(inc.startswith("#include <") for inc in includes), includes
    lines = src.splitlines()
    for path in sorted((REPO / "metal").glob("*")):
        text = path.read_text().splitlines()
        body = [ln for ln in text if not ln.strip().startswith('#include "')]
        # Find the file's lines as one ordered subsequence of the source.
        pos = 0
        for ln in body:
            pos = lines.index(ln, pos) + 1 if ln in lines[pos:] else -1
            assert pos > 0, f"{path.name}: line not in the embedded source: {ln!r}"


# ------------------------------------------------------------- canaries
def test_out_of_bounds_writes_are_caught(tmp_path):
    # The guard regions really do catch a kernel that writes one element
    # past the end: the tail loop's condition off by one, compiled from a
    # deliberately broken copy of the kernel source.
    src = _ext.metal_kernel_source()
    broken = src.replace("j < 4 && e0 + j < p->size", "j < 4 && e0 + j <= p->size")
    assert broken != src
    dll = build_shim(tmp_path, source=broken, tag="broken")
    with pytest.raises(AssertionError, match="out-of-bounds write: byte 0 after the end"):
        run_shim(dll, KEYS[1], (1023,), mx.float32)
    for dtype in DTYPES:  # whole blocks only: the broken tail is never reached
        run_shim(dll, KEYS[1], (1024,), dtype)


def test_philox_out_of_bounds_writes_are_caught(tmp_path):
    # The Philox kernel's output row shifted by one word: the last row
    # spills one word past the end.
    src = _ext.metal_kernel_source()
    broken = src.replace("device uint32_t* o = out + 4 * uint64_t(gid);",
                         "device uint32_t* o = out + 4 * uint64_t(gid) + 1;")
    assert broken != src
    dll = build_shim(tmp_path, source=broken, tag="broken_philox")
    with pytest.raises(AssertionError, match="out-of-bounds write: byte 0 after the end"):
        run_philox(dll, np.zeros((5, 4), dtype=np.uint32), (1, 2))


def test_embedding_refuses_what_metal_would_garble(tmp_path):
    # MLX hands the source to Metal as ASCII: a non-ASCII character in
    # metal/ must fail the build, not reach a Mac. Missing headers too.
    script = REPO / "cmake" / "embed_metal_source.py"
    (tmp_path / "k.metal").write_text('#include "h.h"\nkernel\n')
    (tmp_path / "h.h").write_text("// Box\u2013Muller\n")
    r = subprocess.run([sys.executable, str(script), str(tmp_path / "k.metal"),
                        str(tmp_path / "o.metal"), str(tmp_path / "o.cpp")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "non-ASCII" in r.stderr
    (tmp_path / "h.h").unlink()
    r = subprocess.run([sys.executable, str(script), str(tmp_path / "k.metal"),
                        str(tmp_path / "o.metal"), str(tmp_path / "o.cpp")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "h.h not found" in r.stderr


# ------------------------------------------------------------ perturbation
def _weights(shape, dtype, seed=0):
    # Values of every magnitude the kernel must carry through exactly,
    # including float16 subnormals, signed zeros and large values.
    w = mx.random.normal(shape, key=mx.random.key(seed)) * 10.0 ** mx.random.randint(
        -9, 4, shape, key=mx.random.key(seed + 1)).astype(mx.float32)
    flat = w.reshape(-1)
    if flat.size >= 3:
        flat = mx.concatenate([mx.array([-0.0, 0.0, 6e-8]), flat[3:]])
    return flat.reshape(shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (5,), (7, 13), (4, 3, 11), (1 << 12) + 3])
@pytest.mark.parametrize("in_place", [False, True])
def test_perturbation_matches_cpu(shim, dtype, shape, in_place):
    shape = shape if isinstance(shape, tuple) else (shape,)
    w = _weights(shape, dtype)
    for key, scale, w_scale in [(KEYS[1], 0.01, 1.0), (KEYS[2], -3.5, 0.999), (KEYS[0], 1e-3, -2.0)]:
        np.testing.assert_array_equal(
            run_shim_perturb(shim, key, w, scale, w_scale, in_place=in_place),
            run_cpu_perturb(key, w, scale, w_scale), err_msg=f"key {key}")


@pytest.mark.parametrize(
    "full_shape, start, shape",
    [((37, 1001), (3, 5), (30, 990)), ((6, 7, 9), (1, 2, 3), (4, 3, 5))],
)
def test_perturbation_windows_match_cpu(shim, full_shape, start, shape):
    for dtype in DTYPES:
        w = _weights(shape, dtype, seed=3)
        got = run_shim_perturb(shim, KEYS[2], w, 0.5, subsequence=2**33 + 5,
                               full_shape=full_shape, start=start, max_group=7)
        want = run_cpu_perturb(KEYS[2], w, 0.5, subsequence=2**33 + 5,
                               full_shape=list(full_shape), start=list(start))
        np.testing.assert_array_equal(got, want)
