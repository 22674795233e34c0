"""Compiles the installed extension's embedded Metal source
(_ext.metal_kernel_source(), what the GPU path compiles at run time when it
has no metallib) with Apple's offline Metal compiler, for each Metal
language version MLX may pick at run time (3.1 on macOS 14, 3.2 on macOS 15,
4.0 on macOS 26) that this compiler knows, fast math off as MLX's runtime
compile has it. A Mac without a GPU (a hosted CI runner) can run this.

    python tests/check_metal_source.py

Exits non-zero when the compiler rejects the source, or when no Metal
compiler runs (xcodebuild -downloadComponent MetalToolchain installs it).
"""

import subprocess
import sys
import tempfile
from pathlib import Path

from mlx_fused_init._backend import ext as _ext

VERSIONS = ["metal3.1", "metal3.2", "metal4.0"]


def main() -> int:
    probe = subprocess.run(["xcrun", "-sdk", "macosx", "metal", "--version"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        print("no working Metal compiler (xcrun -sdk macosx metal):", probe.stderr.strip())
        return 2
    print(probe.stdout.strip().splitlines()[0])
    compiled = 0
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "fused_init_embedded.metal"
        src.write_text(_ext.metal_kernel_source())
        for std in VERSIONS:
            r = subprocess.run(
                ["xcrun", "-sdk", "macosx", "metal", f"-std={std}", "-fno-fast-math", "-Wall",
                 "-Wextra", "-c", str(src), "-o", str(Path(tmp) / f"{std}.air")],
                capture_output=True, text=True)
            unknown = "invalid value" in r.stderr and f"-std={std}" in r.stderr
            if unknown:
                print(f"{std}: not supported by this compiler, skipped")
                continue
            print(f"{std}: {'ok' if r.returncode == 0 else 'FAILED'}")
            if r.stderr.strip():
                print(r.stderr.strip())
            if r.returncode != 0:
                return 1
            compiled += 1
    if compiled == 0:
        print("no Metal language version could be tried")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
