"""A deterministic subset of benchmarks/quality.py (c): the shared transform
against float64 on every 65537th 32-bit word (65,537 words)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    cxx = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    assert cxx, "needs a C++ compiler"
    exe = tmp_path_factory.mktemp("scan") / "transform_scan"
    subprocess.run([cxx, "-std=c++20", "-O2", "-ffp-contract=off", "-pthread",
                    f"-I{REPO / 'metal'}", str(REPO / "benchmarks" / "quality" / "transform_scan.cpp"),
                    "-o", str(exe)], check=True)
    out = subprocess.run([str(exe), "65537", "2"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def test_scan_covers_the_words(scan):
    assert scan["words"] == -(-2**32 // 65537)  # words 0, 65537, 2 * 65537, ... < 2^32


def test_radius_within_two_ulps(scan):
    # A degree-9 fit of log1p (rel. error ~6e-8) plus float rounding of a
    # few operations and a correctly rounded sqrt: about 1 ulp; 2 is the
    # bound (the full scan in docs/quality.md measures the exact maximum).
    assert scan["radius_max_ulp"] < 2.0


def test_angle_within_two_ulps(scan):
    # Fits of sinpi/cospi on |y| <= 1/4 with error below 6e-8 absolute,
    # relative through the exact reduction y = t - n/2.
    assert scan["cospi_max_ulp"] < 2.0 and scan["sinpi_max_ulp"] < 2.0
    assert scan["angle_max_abs_error"] < 2e-7


def test_no_nan_or_inf_and_the_largest_radius(scan):
    assert scan["nonfinite"] == 0
    # Word 0 is in the scan: u = 2^-33, r = sqrt(66 ln 2) = 6.76370...
    assert 6.7637 < scan["radius_max"] <= 6.7638
