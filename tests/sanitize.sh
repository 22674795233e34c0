#!/usr/bin/env bash
# Builds the extension with AddressSanitizer + UndefinedBehaviorSanitizer
# (CMake option MFI_SANITIZE) in a fresh venv and runs the tests under them.
#   tests/sanitize.sh                     # the whole suite
#   tests/sanitize.sh tests/test_stream.py -q   # pytest arguments
# Python itself is not instrumented, so the runtimes are preloaded; leak
# checking is off (CPython keeps objects alive at exit on purpose), and
# huge allocations return null (as glibc's malloc does) instead of aborting.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
venv=${SANITIZE_VENV:-$(mktemp -d)/venv}
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
# Its own build directory: the plain one (pyproject.toml) stays incremental.
"$venv/bin/python" -m pip install -q ".[cpu,test]" \
  -Ccmake.define.MFI_SANITIZE=ON -Ccmake.build-type=RelWithDebInfo \
  -Cbuild-dir="build/sanitize-{wheel_tag}"
cxx=${CXX:-g++}
preload="$("$cxx" -print-file-name=libasan.so):$("$cxx" -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# The tests' own C++ builds (the Metal shim, the scalar kernel driver) are
# instrumented too: tests/shim_build.py reads this.
export MFI_SHIM_SANITIZE=1
if [ $# -eq 0 ]; then set -- tests; fi
LD_PRELOAD="$preload" "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
