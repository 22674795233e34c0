"""Which implementation runs: the native extension or portable mode
(docs/portable.md). Decided once, at import.

* native: the C++ custom op (``_ext``), which links MLX's C++ ABI. It is
  used only when it was built against the MLX release that is running: the
  version is compared *before* the module is loaded (a later release may
  keep the symbols and change their layouts), and a first call then checks
  that nanobind's ABI matches mlx.core's.
* portable: ``_portable`` (the MLX-free ``_kernels`` module on the CPU, MLX's
  runtime-kernel APIs on GPUs). Same bits, any supported MLX.

``MLX_FUSED_INIT_BACKEND`` = ``auto`` (default), ``native`` (raise the
reason native cannot load instead of falling back) or ``portable``.
"""

import os
import sys
import warnings

import mlx.core as mx

from . import _build_info

BUILT_AGAINST = _build_info.MLX_VERSION
_MODES = ("auto", "native", "portable")


class PortableModeWarning(UserWarning):
    """Issued once, at import, when the native extension cannot be used."""


def native_command() -> str:
    """The command that builds the native extension against the running MLX."""
    src = getattr(_build_info, "SOURCE_DIR", "")
    if not src or not os.path.isfile(os.path.join(src, "pyproject.toml")):
        src = "<your mlx-fused-init checkout>"
    return (f'{sys.executable} -m pip install scikit-build-core "nanobind>=3.0.1,<3.2" && '
            f"{sys.executable} -m pip install --no-build-isolation --no-deps "
            f"--force-reinstall {src}")


def _load_native():
    """(module, None) or (None, why not)."""
    if mx.__version__ != BUILT_AGAINST:
        return None, (f"the native extension was built against MLX {BUILT_AGAINST}, "
                      f"but MLX {mx.__version__} is running")
    try:
        from . import _ext
    except ImportError as e:
        return None, f"the native extension does not load ({e})"
    try:  # builds a node (not evaluated): fails if nanobind's ABI differs
        _ext.fused_init(mx.array([0, 0], dtype=mx.uint32), [1], mx.float32, kind=0,
                        stream=mx.cpu)
    except TypeError as e:
        return None, f"the native extension cannot exchange arrays with mlx.core ({e})"
    return _ext, None


def _choose():
    mode = os.environ.get("MLX_FUSED_INIT_BACKEND", "auto").strip().lower() or "auto"
    if mode not in _MODES:
        raise ImportError(
            f"MLX_FUSED_INIT_BACKEND must be one of {', '.join(_MODES)}, but it is {mode!r}.")
    if mode == "portable":
        return None, "MLX_FUSED_INIT_BACKEND=portable"
    native, why = _load_native()
    if native is not None:
        return native, f"built against MLX {BUILT_AGAINST}, which is running"
    if mode == "native":
        raise ImportError(
            f"mlx-fused-init: MLX_FUSED_INIT_BACKEND=native, but {why}. "
            f"Build it for this MLX: {native_command()}")
    warnings.warn(
        f"mlx-fused-init: {why}; using portable mode (same bits; CPU draws are eager, "
        "computed when the call returns, written once into the output; GPU draws use "
        "mx.fast.metal_kernel / mx.fast.cuda_kernel). For the native path: "
        f"{native_command()}",
        PortableModeWarning, stacklevel=4)
    return None, why


_native, REASON = _choose()
BACKEND = "native" if _native is not None else "portable"


class _Native:
    """The native module, with GPU draws handed to the portable kernels where
    the native build has none (MLX's CUDA back-end: the native GPU kernels
    are Metal only)."""

    def __getattr__(self, attr):
        return getattr(_native, attr)

    def _gpu_is_portable(self, stream) -> bool:
        from . import _portable
        return not _native.built_with_metal() and _portable._on_gpu(stream)

    def fused_init(self, key, shape, dtype, **kw):
        if self._gpu_is_portable(kw.get("stream")):
            from . import _portable
            return _portable.fused_init(key, shape, dtype, **kw)
        return _native.fused_init(key, shape, dtype, **kw)

    def fused_perturb(self, key, w, **kw):
        if self._gpu_is_portable(kw.get("stream")):
            from . import _portable
            return _portable.fused_perturb(key, w, **kw)
        return _native.fused_perturb(key, w, **kw)

    def philox4x32_10(self, counters, key, *, stream=None):
        if self._gpu_is_portable(stream):
            from . import _portable
            return _portable.philox4x32_10(counters, key, stream=stream)
        return _native.philox4x32_10(counters, key, stream=stream)

    def gpu_kernels(self) -> str:
        if _native.built_with_metal():
            return "metal"
        from . import _gpu
        return _gpu.gpu_backend() or ""


if _native is not None:
    ext = _Native()
else:
    from . import _portable as ext  # noqa: E402


def gpu_path() -> str:
    """Where GPU draws go: 'native metal', 'portable metal_kernel',
    'portable cuda_kernel' or 'none'."""
    kind = ext.gpu_kernels()
    if not kind:
        return "none"
    if BACKEND == "native" and kind == "metal":
        return "native metal"
    return f"portable {kind}_kernel"


def backend_info() -> dict:
    """Which implementation runs and why (docs/portable.md)."""
    return {
        "backend": BACKEND,
        "reason": REASON,
        "mlx": mx.__version__,
        "built_against": BUILT_AGAINST,
        "gpu": gpu_path(),
        "cpu_kernel": ext.cpu_kernel(),
        "native_command": native_command(),
    }
