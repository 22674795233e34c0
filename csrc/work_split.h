// Splits one fill of `total` elements across threads: the threads (the
// caller included) claim fixed-size chunks from a shared counter until none
// are left, so a thread on a slow or busy core simply takes fewer chunks.
// MLX-free; the values cannot depend on the split, since each element is a
// pure function of its own index (docs/spec.md, section 3).
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace mfi::cpu {

struct SplitPlan {
  int threads = 1;     // threads taking part, caller included
  int64_t chunk = 0;   // elements per chunk (the last may be shorter)
  int64_t chunks = 0;  // ceil(total / chunk)
};

// The plan for `total` elements and at most `max_threads` threads.
SplitPlan plan_split(int64_t total, int max_threads);

// Runs fill(e0, e1) over the chunks of `plan`, on the thread pool. `qos` is
// the caller's fill_qos(), adopted by the workers (cpu_threads.h).
void run_split(const SplitPlan& plan, int64_t total, int qos,
               const std::function<void(int64_t, int64_t)>& fill);

// ---- test hooks (tests/test_cpu_paths.py, benchmarks/bench_init.py)
struct SplitTestHook {
  int stall_task = -1;  // this task claims nothing until every chunk is taken
  int slow_task = -1;   // this task sleeps slow_us before each claim
  int slow_us = 0;
  int64_t chunk = 0;    // > 0: chunk size to use instead of the planned one
  bool trace = false;   // record who took which chunk
};
void set_split_test_hook(const SplitTestHook& hook);
// (task, chunk) claims of the last traced fill, in claim order, and its plan.
std::pair<SplitPlan, std::vector<std::pair<int, int64_t>>> last_split_trace();

} // namespace mfi::cpu
