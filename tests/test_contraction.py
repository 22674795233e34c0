"""The bits cannot depend on floating-point contraction (docs/spec.md §3): the Metal
kernel source (through the CPU shim) and the scalar CPU kernel source, built
with -ffp-contract=fast and FMA instructions enabled, give exactly the bits
of the real build (-ffp-contract=off), for every transform and dtype, with
g++ and, where installed, clang++ (Apple's Metal compiler is clang-based).
Before the math wrote every product-plus-sum as an explicit fma, these
builds changed the uniform and shifted-normal bits."""

import subprocess

import numpy as np
import pytest

from mlx_fused_init._backend import ext as _ext
from shim_build import (CONTRACT_FLAGS, DTYPES, build_fill_main, build_shim, clangxx, gxx,
                        run_cpu, run_fill_main, run_shim)

KEY = (12345, 678)
# (kind, scale, shift): normal, shifted normal, uniform on [-0.75, 1.5).
TRANSFORMS = {"normal": (0, 0.75, 0.0), "shifted_normal": (0, 0.75, 0.25),
              "uniform": (1, 1.5, -0.75)}
# A whole-block run with a tail, and a window whose rows start and end
# inside blocks (the per-element path of both kernels).
CASES = [((4099,), None, None), ((30, 99), (37, 101), (3, 1))]

COMPILERS = ["g++", "clang++"]


def compiler(name):
    path = gxx() if name == "g++" else clangxx()
    if not path:
        pytest.skip(f"no {name} that can build the shim is installed "
                    "(.ci/run installs clang; _Float16 on x86-64 needs clang >= 15)")
    return path


@pytest.fixture(scope="module", params=COMPILERS)
def contracted(request, tmp_path_factory):
    cxx = compiler(request.param)
    tmp = tmp_path_factory.mktemp("contract")
    return (build_shim(tmp, cxx=cxx, flags=CONTRACT_FLAGS, tag="_fast"),
            build_fill_main(tmp, cxx=cxx, flags=CONTRACT_FLAGS, tag="_fast"))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("transform", list(TRANSFORMS))
def test_contracted_builds_give_the_same_bits(contracted, transform, dtype):
    shim, fill_main = contracted
    kind, scale, shift = TRANSFORMS[transform]
    for shape, full, start in CASES:
        full = full or shape
        start = start or (0,) * len(shape)
        want = run_cpu(KEY, shape, dtype, kind=kind, scale=scale, shift=shift,
                       full_shape=list(full), start=list(start))
        got = run_shim(shim, KEY, shape, dtype, kind=kind, scale=scale, shift=shift,
                       full_shape=full, start=start)
        np.testing.assert_array_equal(got, want, err_msg=f"shim {shape}")
        if kind == 1:
            f_shift, f_scale, upper = _ext.uniform_bounds(shift, scale, dtype)
        else:
            f_shift, f_scale, upper = shift, scale, 0.0
        got = run_fill_main(fill_main, dtype, kind, KEY, f_scale, f_shift, upper, full, start,
                            shape)
        np.testing.assert_array_equal(got, want, err_msg=f"scalar CPU kernel {shape}")


def test_the_flags_do_contract(tmp_path):
    # Guard against a test that cannot fail: with these flags the compiler
    # really fuses a plain a*b + c (the old uniform transform), which
    # changes some results.
    src = tmp_path / "c.cpp"
    src.write_text(
        "#include <cstdio>\n#include <cstdint>\n"
        "__attribute__((noinline)) float f(float a, float b, float c) { return c + a * b; }\n"
        "int main() { uint32_t n = 0; float a = 1.0f + 0x1p-12f;\n"
        "  for (int i = 0; i < 4096; ++i) { float x = a + i * 0x1p-23f;\n"
        "    n += f(x, x, -1.0f) != (float)((double)x * x - 1.0); }\n"
        "  std::printf(\"%u\", n); }\n")
    exe = tmp_path / "c"
    subprocess.run([gxx(), "-O2", *CONTRACT_FLAGS, str(src), "-o", str(exe)], check=True)
    fused_mismatches = int(subprocess.run([str(exe)], capture_output=True, text=True).stdout)
    # x*x - 1 with one rounding equals the float64 route exactly (the
    # product is exact in float64); two roundings would differ often.
    assert fused_mismatches == 0
