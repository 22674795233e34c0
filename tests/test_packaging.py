"""The installed package: where it imports from, what it links, and the
error for a mismatched MLX."""

import os
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import pytest

import mlx_fused_init as mfi
from mlx_fused_init import _build_info, _ext

REPO = Path(__file__).resolve().parents[1]


def run_python(code: str, cwd) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_tests_use_the_installed_package_not_the_source_tree():
    assert REPO / "python" not in Path(mfi.__file__).parents


def test_imports_from_any_directory(tmp_path):
    r = run_python(
        "import mlx.core as mx, mlx_fused_init as m;"
        "print(m.glorot_normal()(mx.zeros((2, 2)), key=mx.random.key(0)).shape)",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "(2, 2)"


def test_built_against_the_installed_mlx():
    assert _build_info.MLX_VERSION == mx.__version__ == _ext.mlx_version_built_against


def test_libmlx_is_not_bundled():
    pkg = Path(mfi.__file__).parent
    assert not list(pkg.rglob("libmlx*"))


def test_mlx_version_mismatch_is_a_clear_import_error(tmp_path):
    code = (
        "import mlx.core as mx\n"
        "mx.__version__ = '0.0.1'\n"
        "try:\n"
        "    import mlx_fused_init\n"
        "except ImportError as e:\n"
        "    print('ImportError:', e)\n"
    )
    r = run_python(code, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "ImportError:" in r.stdout
    assert "0.0.1" in r.stdout and _build_info.MLX_VERSION in r.stdout


def test_main_job_runs_and_reports(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "mlx_fused_init"], cwd=tmp_path, capture_output=True,
        text=True, timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Philox4x32-10 known answers (Random123): ok" in r.stdout
    assert "M samples/s" in r.stdout and "ratio" in r.stdout


def test_main_job_reports_where_the_gpu_kernels_come_from(monkeypatch):
    from mlx_fused_init import selfcheck

    kind, detail = _ext.metal_kernel_origin()
    lines = selfcheck.metal_report()
    if kind == "none":
        assert not mfi.built_with_metal()
        assert lines == ["  Metal kernels: not in this build (CPU only)"]
        return
    monkeypatch.setenv("MLX_FUSED_INIT_METAL_JIT", "1")
    lines = selfcheck.metal_report()
    if kind == "metallib":
        assert lines[0] == f"  Metal kernels: metallib, loaded from {detail}"
    else:
        assert lines[0].startswith("  Metal kernels: compiled at first GPU use from the embedded source")
        assert lines[1].startswith("  metallib: ")
    assert lines[-1] == "  MLX_FUSED_INIT_METAL_JIT: 1"


def test_main_job_refuses_a_gpu_it_does_not_have(tmp_path):
    if mfi.built_with_metal():
        pytest.skip("this build has Metal kernels: --device gpu is valid here")
    r = subprocess.run([sys.executable, "-m", "mlx_fused_init", "--device", "gpu"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no Metal back-end" in r.stderr


def test_type_information_is_installed():
    pkg = Path(mfi.__file__).parent
    assert (pkg / "py.typed").exists()
    stub = (pkg / "_ext.pyi").read_text()
    public = {n for n in dir(_ext) if not n.startswith("_")}
    # Every function and attribute of the extension is declared in the stub.
    for name in public:
        assert f"def {name}(" in stub or f"{name}:" in stub, name
