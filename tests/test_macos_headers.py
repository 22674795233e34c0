"""The Metal host code (csrc/metal_backend.cpp: the metallib and JIT paths)
type-checks against MLX's real macOS headers, so that a renamed or re-typed
MLX API fails here and not in a user's build on a Mac.

The headers come from the mlx-metal wheel for macOS arm64 at the pinned
version (tests/macos_headers/fetch.sh; .ci/run fetches them and sets
MFI_MACOS_MLX_INCLUDE); Apple's system headers are replaced by the minimal
stubs in tests/macos_headers/stubs. clang++ is needed: metal-cpp declares
Objective-C block types (-fblocks), which g++ cannot parse. .ci/run sets
MFI_REQUIRE_MACOS_HEADERS=1, so that there a missing piece fails rather
than skips."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from shim_build import REPO

STUBS = REPO / "tests" / "macos_headers" / "stubs"
INCLUDE = os.environ.get("MFI_MACOS_MLX_INCLUDE")
REQUIRED = os.environ.get("MFI_REQUIRE_MACOS_HEADERS") == "1"


def clang_any():
    for v in range(30, 10, -1):
        if shutil.which(f"clang++-{v}"):
            return shutil.which(f"clang++-{v}")
    return shutil.which("clang++")


def missing():
    if not INCLUDE or not (Path(INCLUDE) / "mlx" / "backend" / "metal" / "device.h").is_file():
        return ("MLX's macOS headers not found: export "
                "MFI_MACOS_MLX_INCLUDE=$(tests/macos_headers/fetch.sh) (.ci/run does)")
    if not clang_any():
        return "no clang++ (metal-cpp needs -fblocks): apt-get install clang (.ci/run does)"
    return None


@pytest.fixture(scope="module")
def syntax_check():
    why = missing()
    if why:
        if REQUIRED:
            pytest.fail(why + " [MFI_REQUIRE_MACOS_HEADERS=1]")
        pytest.skip(why)
    cxx = clang_any()

    def check(source: Path, metallib=True):
        # What CMakeLists.txt defines for a build with a metallib, or for one
        # without (no Metal compiler: the JIT path only).
        defines = ["-DMFI_HAVE_METAL"] + (["-DMFI_HAVE_METALLIB"] if metallib else [])
        cmd = [cxx, "-std=c++20", "-fblocks", "-fsyntax-only", "-x", "c++",
               f"-I{STUBS}", f"-I{INCLUDE}", f"-I{Path(INCLUDE) / 'metal_cpp'}",
               f"-I{REPO / 'csrc'}", f"-I{REPO / 'metal'}", *defines, str(source)]
        return subprocess.run(cmd, capture_output=True, text=True)

    return check


@pytest.mark.parametrize("metallib", [True, False], ids=["with-metallib", "jit-only"])
def test_metal_backend_compiles_against_macos_headers(syntax_check, metallib):
    r = syntax_check(REPO / "csrc" / "metal_backend.cpp", metallib=metallib)
    assert r.returncode == 0, r.stderr[-6000:]
    assert "warning" not in r.stderr, r.stderr[-6000:]


@pytest.mark.parametrize(
    "old, new, error",
    [
        # A JIT option MLX does not have.
        ("options.math_mode = mx::MathMode::Safe;", "options.fast_math = false;",
         "no member named 'fast_math'"),
        # A library loaded by a call MLX's Device does not offer.
        ('d.get_library("mlx_fused_init", o.detail)', 'd.load_library("mlx_fused_init", o.detail)',
         "no member named 'load_library'"),
        # A wrongly typed argument to the encoder.
        ("enc.set_bytes(rows, 4);", "enc.set_bytes(rows);", "no matching member function"),
    ],
)
def test_the_check_catches_api_mistakes(syntax_check, tmp_path, old, new, error):
    # The same compile fails on a deliberately wrong use of MLX's API: the
    # check reads the real declarations, it is not vacuous.
    src = (REPO / "csrc" / "metal_backend.cpp").read_text()
    assert old in src
    broken = tmp_path / "metal_backend.cpp"
    broken.write_text(src.replace(old, new))
    r = syntax_check(broken)
    assert r.returncode != 0 and error in r.stderr, r.stderr[-3000:]


# ------------------------------------- the CPU threads' macOS calls (no MLX)
# csrc/cpu_threads_apple.cpp (core kinds from sysctl, the workers' QoS class)
# includes only C headers of the macOS SDK, stubbed in tests/macos_headers/
# stubs/{sys,pthread} as the SDK declares them. It is compiled for the real
# target, arm64-apple-macos14 (__APPLE__, arm64), with no Linux header in
# reach (-nostdlibinc keeps only clang's own, e.g. <stddef.h>). Needs clang
# only, not MLX's macOS headers.
@pytest.fixture(scope="module")
def apple_check():
    cxx = clang_any()
    if not cxx:
        why = "no clang++: apt-get install clang (.ci/run does)"
        if REQUIRED:
            pytest.fail(why + " [MFI_REQUIRE_MACOS_HEADERS=1]")
        pytest.skip(why)

    def check(source: Path):
        cmd = [cxx, "-target", "arm64-apple-macos14", "-std=c++20", "-fsyntax-only",
               "-Wall", "-Wextra", "-nostdlibinc", "-isystem", str(STUBS),
               f"-I{REPO / 'csrc'}", "-x", "c++", str(source)]
        return subprocess.run(cmd, capture_output=True, text=True)

    return check


def test_cpu_threads_apple_compiles_for_macos(apple_check):
    r = apple_check(REPO / "csrc" / "cpu_threads_apple.cpp")
    assert r.returncode == 0, r.stderr[-4000:]
    assert "warning" not in r.stderr, r.stderr[-4000:]


@pytest.mark.parametrize(
    "old, new, error",
    [
        # An int where the SDK wants a qos_class_t (a typed enum in C++).
        ("pthread_set_qos_class_self_np(wanted, 0)", "pthread_set_qos_class_self_np(qos, 0)",
         "no matching function for call to 'pthread_set_qos_class_self_np'"),
        # The size passed by value instead of by pointer.
        ("sysctlbyname(name, &value, &size, nullptr, 0)", "sysctlbyname(name, &value, size, nullptr, 0)",
         "no matching function for call to 'sysctlbyname'"),
        # A QoS call macOS does not have.
        ("pthread_set_qos_class_self_np(wanted, 0)", "pthread_set_qos_class_np(wanted, 0)",
         "use of undeclared identifier 'pthread_set_qos_class_np'"),
    ],
    ids=["int-for-qos-class", "size-by-value", "no-such-call"],
)
def test_the_apple_check_catches_mistakes(apple_check, tmp_path, old, new, error):
    src = (REPO / "csrc" / "cpu_threads_apple.cpp").read_text()
    assert old in src
    broken = tmp_path / "cpu_threads_apple.cpp"
    broken.write_text(src.replace(old, new))
    r = apple_check(broken)
    assert r.returncode != 0 and error in r.stderr, r.stderr[-3000:]
