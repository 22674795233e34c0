#!/usr/bin/env bash
# Builds benchmarks/profile/stages.cpp with each x86 kernel build's flags
# (those of CMakeLists.txt) and runs it on one thread; then
# thread_start.cpp (a new thread against the pool's worker).
#   benchmarks/profile/run_stages.sh [reps]
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${TMPDIR:-/tmp}/mfi_stages
mkdir -p "$out"
common=(-std=c++20 -O3 -DNDEBUG -ffp-contract=off -fno-math-errno -Icsrc -Imetal)
declare -A isa=(
  [avx2]="-mavx2 -mfma"
  [avx512]="-mavx512f -mavx512vl -mavx512bw -mavx512dq -mfma -mprefer-vector-width=512"
)
grep -m1 "model name" /proc/cpuinfo
for k in avx2 avx512; do
  # shellcheck disable=SC2086
  ${CXX:-g++} "${common[@]}" ${isa[$k]} benchmarks/profile/stages.cpp -o "$out/stages_$k"
  echo "== $k (load $(cut -d' ' -f1 /proc/loadavg))"
  "$out/stages_$k" "${1:-7}"
done
${CXX:-g++} -std=c++20 -O2 -Icsrc benchmarks/profile/thread_start.cpp csrc/thread_pool.cpp csrc/cpu_placement.cpp csrc/cpu_threads.cpp \
  -o "$out/thread_start" -pthread
echo "== thread start (load $(cut -d' ' -f1 /proc/loadavg))"
"$out/thread_start"
