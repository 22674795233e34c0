#!/usr/bin/env bash
# Fetches MLX's macOS headers (the mlx-metal wheel for macOS arm64 carries
# mlx/include, with metal-cpp; the mlx wheel itself carries none) at the
# version pyproject.toml pins, and prints the include directory. Cached.
#   export MFI_MACOS_MLX_INCLUDE=$(tests/macos_headers/fetch.sh)
# tests/test_macos_headers.py then compiles csrc/metal_backend.cpp against
# them with -fsyntax-only, with the stub Apple headers in stubs/.
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${PYTHON:-python3}
version=$(sed -n 's/^ *"mlx==\([0-9.]*\)",$/\1/p' pyproject.toml | head -n 1)
[ -n "$version" ] || { echo "no mlx pin found in pyproject.toml's [build-system]" >&2; exit 1; }
cache=${MFI_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mlx-fused-init}/mlx-metal-$version
if [ ! -f "$cache/mlx/include/mlx/backend/metal/device.h" ]; then
  rm -rf "$cache" && mkdir -p "$cache"
  "$python" -m pip download -q --no-deps --only-binary=:all: \
    --platform macosx_14_0_arm64 --python-version 3.12 \
    "mlx-metal==$version" -d "$cache/wheel" >&2
  "$python" -m zipfile -e "$cache"/wheel/mlx_metal-*.whl "$cache/unpacked" >&2
  mkdir -p "$cache/mlx"
  mv "$cache/unpacked/mlx/include" "$cache/mlx/include"
  rm -rf "$cache/wheel" "$cache/unpacked"
fi
echo "$cache/mlx/include"
