"""The installed package: where it imports from, what it links, and which
implementation runs (native or portable) for the running MLX."""

import os
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import pytest

import mlx_fused_init as mfi
from mlx_fused_init import _build_info
from mlx_fused_init._backend import ext as _ext

REPO = Path(__file__).resolve().parents[1]


def run_python(code: str, cwd, env=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in (os.environ if env is None else env).items() if k != "PYTHONPATH"}
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


def test_native_runs_exactly_when_built_against_the_running_mlx():
    info = mfi.backend_info()
    assert info["built_against"] == _build_info.MLX_VERSION
    assert info["mlx"] == mx.__version__
    if os.environ.get("MLX_FUSED_INIT_BACKEND") == "portable":
        assert info["backend"] == "portable"
    else:
        assert (info["backend"] == "native") == (mx.__version__ == _build_info.MLX_VERSION)
    if info["backend"] == "native":
        assert _ext.mlx_version_built_against == mx.__version__


def test_libmlx_is_not_bundled():
    pkg = Path(mfi.__file__).parent
    assert not list(pkg.rglob("libmlx*"))


# What the subprocesses below print: the backend, and the bits of one draw
# of each transform (compared with this process's).
DRAWS = (
    "import mlx.core as mx, hashlib\n"
    "def digest(m):\n"
    "    k = mx.random.key(5)\n"
    "    a = [m.glorot_normal()(mx.zeros((33, 70)), key=k),\n"
    "         m.uniform(-1, 2, mx.bfloat16)(mx.zeros((5, 9)), key=k),\n"
    "         m.truncated_normal(0, 1, -1, 2)(mx.zeros((101,)), key=k, subsequence=7)]\n"
    "    return hashlib.sha256(b''.join(bytes(memoryview(x)) for x in a)).hexdigest()\n"
)


def digest_here() -> str:
    scope = {}
    exec(DRAWS, scope)
    return scope["digest"](mfi)


def test_mlx_version_mismatch_falls_back_to_portable_with_one_warning(tmp_path):
    code = (
        DRAWS + "import warnings\n"
        "mx.__version__ = '0.0.1'\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    import mlx_fused_init as m\n"
        "print('WARNINGS', len(w))\n"
        "print('MESSAGE', str(w[0].message))\n"
        "print('BACKEND', m.backend_info()['backend'])\n"
        "print('DIGEST', digest(m))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLX_FUSED_INIT_BACKEND"}
    r = run_python(code, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    out = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert out["WARNINGS"] == "1" and out["BACKEND"] == "portable"
    msg = out["MESSAGE"]
    assert "\n" not in msg
    assert "0.0.1" in msg and _build_info.MLX_VERSION in msg
    assert "eager" in msg and "--no-build-isolation" in msg
    assert out["DIGEST"] == digest_here()


def test_backend_native_refuses_a_mismatched_mlx(tmp_path):
    code = (
        "import mlx.core as mx\n"
        "mx.__version__ = '0.0.1'\n"
        "try:\n"
        "    import mlx_fused_init\n"
        "except ImportError as e:\n"
        "    print('ImportError:', e)\n"
    )
    r = run_python(code, cwd=tmp_path, env={**os.environ, "MLX_FUSED_INIT_BACKEND": "native"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ImportError:")
    assert "0.0.1" in r.stdout and _build_info.MLX_VERSION in r.stdout
    assert "--no-build-isolation" in r.stdout


@pytest.mark.parametrize("value", ["portable", "PORTABLE", "bogus"])
def test_backend_variable(tmp_path, value):
    code = (DRAWS + "import mlx_fused_init as m\n"
            "print(m.backend_info()['backend'], m.backend_info()['reason'], digest(m))\n")
    r = run_python(code, cwd=tmp_path, env={**os.environ, "MLX_FUSED_INIT_BACKEND": value})
    if value == "bogus":
        assert r.returncode != 0
        assert "MLX_FUSED_INIT_BACKEND must be one of auto, native, portable" in r.stderr
        return
    assert r.returncode == 0, r.stderr
    backend, reason, digest = r.stdout.split()[0], r.stdout.split()[1], r.stdout.split()[-1]
    assert backend == "portable" and reason == "MLX_FUSED_INIT_BACKEND=portable"
    assert digest == digest_here()


def test_backend_info_and_version_flag(tmp_path):
    info = mfi.backend_info()
    assert set(info) >= {"backend", "reason", "mlx", "built_against", "gpu"}
    r = subprocess.run([sys.executable, "-m", "mlx_fused_init", "--version"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"mlx-fused-init {mfi.__version__}: {info['backend']} ")
    assert f"MLX {mx.__version__}" in r.stdout


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
        assert lines == [f"  GPU kernels: none ({detail})"]
        return
    if kind == "portable":
        assert lines == [f"  GPU kernels: portable, {detail}"]
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
    if mfi.backend_info()["gpu"] != "none":
        pytest.skip("a GPU kernel can run here: --device gpu is valid")
    r = subprocess.run([sys.executable, "-m", "mlx_fused_init", "--device", "gpu"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no GPU kernel can run here" in r.stderr


def test_type_information_is_installed():
    pkg = Path(mfi.__file__).parent
    assert (pkg / "py.typed").exists()
    if mfi.backend_info()["backend"] != "native":
        pytest.skip("portable mode: the native module _ext is not loaded in this process")
    import mlx_fused_init._ext as native

    stub = (pkg / "_ext.pyi").read_text()
    public = {n for n in dir(native) if not n.startswith("_")}
    # Every function and attribute of the extension is declared in the stub.
    for name in public:
        assert f"def {name}(" in stub or f"{name}:" in stub, name
