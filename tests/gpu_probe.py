"""Is a usable Apple GPU here? Decided by running, in a subprocess, a stock
MLX op and then this package's kernel on mx.gpu.

mx.metal.is_available() is always true in MLX 0.32.4 builds with Metal, and
GitHub's hosted macOS runners have no Metal device, or a paravirtual one
without Metal 3: MLX may abort the process there. So:
  * "none":     this build has no Metal back-end (Linux): GPU streams are
                an error, which the tests check;
  * "unusable": a stock MLX GPU op does not run (no device, no Metal 3):
                GPU tests are skipped, with the subprocess's own words;
  * "usable":   stock MLX and this package's kernel both ran;
  * "broken":   stock MLX runs but this package's kernel does not: the GPU
                tests run and fail (never skipped: that is our bug).
MFI_REQUIRE_GPU=1 (the self-hosted Apple-silicon CI job) turns "unusable"
into a failure, so a runner without a GPU cannot pass by skipping.
"""

import functools
import os
import subprocess
import sys

import mlx_fused_init as mfi

PROBE = r"""
import mlx.core as mx
mx.eval(mx.arange(8, stream=mx.gpu) * 2)
print("stock-ok", flush=True)
from mlx_fused_init._backend import ext as _ext
out = _ext.fused_init(mx.random.key(0), [7], mx.float32, kind=0, scale=1.0, stream=mx.gpu)
mx.eval(out)
print("fused-ok", flush=True)
"""


@functools.lru_cache(maxsize=None)
def gpu_status():
    """(status, detail); see the module's docstring."""
    if not mfi.built_with_metal():
        return "none", "this build has no Metal back-end"
    try:
        r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                           timeout=300)
        out, err, rc = r.stdout, r.stderr, r.returncode
    except subprocess.TimeoutExpired:
        out, err, rc = "", "the GPU probe timed out after 300 s", -1
    tail = (err.strip().splitlines() or [f"exit status {rc}"])[-1]
    if "stock-ok" not in out:
        return "unusable", f"no usable Metal GPU (a stock MLX op failed: {tail})"
    if "fused-ok" not in out or rc != 0:
        return "broken", f"stock MLX runs on the GPU but this package's kernel failed: {tail}"
    return "usable", "stock MLX and this package's kernel ran on the GPU"


def require_gpu() -> bool:
    return os.environ.get("MFI_REQUIRE_GPU") == "1"


def gpu_tests_run() -> bool:
    """Whether GPU tests should run: a usable GPU, or a broken kernel (so
    that they fail), or a runner that must have one."""
    return gpu_status()[0] in ("usable", "broken") or require_gpu()
