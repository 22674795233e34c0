#!/usr/bin/env bash
# perf (software events: this VM exposes no hardware counters) on the fused
# CPU path: task-clock, page faults and context switches of 4096^2 draws,
# fresh output memory against MLX's allocator reuse, 1 and 2 threads; then
# where the time of a fresh 1-thread draw goes (perf record, cpu-clock).
#   benchmarks/profile/run_perf.sh [python]
set -euo pipefail
cd "$(dirname "$0")"
py=${1:-python}
grep -m1 "model name" /proc/cpuinfo
for threads in 1 2; do
  for memory in fresh reused; do
    echo "== $threads thread(s), $memory output, load $(cut -d' ' -f1 /proc/loadavg)"
    perf stat -e task-clock,page-faults,context-switches,cpu-migrations -x, \
      "$py" fill_loop.py "$threads" auto float32 "$memory" 20 2>&1 |
      awk -F, '/M\/s/ {print; next} NF > 2 {printf "  %-18s %s %s\n", $3, $1, $2}'
  done
done
echo "== perf record: 1 thread, fresh output"
perf record -q -e cpu-clock -F 2000 -o "${TMPDIR:-/tmp}/mfi.perf" \
  "$py" fill_loop.py 1 auto float32 fresh 20 >/dev/null 2>&1
perf report -i "${TMPDIR:-/tmp}/mfi.perf" --sort dso --stdio 2>/dev/null |
  grep -E '^ +[0-9]' | head -6
perf report -i "${TMPDIR:-/tmp}/mfi.perf" --sort sym --stdio 2>/dev/null |
  grep -E '^ +[0-9].*\[k\]' | head -6
