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

#include "thread_pool.h"

namespace mfi::cpu {

struct SplitPlan {
  int threads = 1;     // threads taking part, caller included
  int64_t chunk = 0;   // elements per chunk
  int64_t chunks = 0;  // chunks covering the fill
  // Chunk c covers elements [c * chunk - shift, (c + 1) * chunk - shift),
  // cut to [0, total): 0 <= shift < chunk, so only the first and the last
  // chunk can be shorter.
  int64_t shift = 0;
  bool place = false;  // one thread per CPU where possible (thread_pool.h)
};

// The plan for `total` elements and at most `max_threads` threads. `page`:
// 0, or the elements per huge page of the output, whose first page boundary
// is element `first_page` (0 <= first_page < page); a large enough output
// is then cut at its page boundaries (docs/performance.md, "A busy core").
SplitPlan plan_split(int64_t total, int max_threads, int64_t page = 0, int64_t first_page = 0);

// Elements [e0, e1) of chunk c of `plan` (e0 == e1 never happens).
std::pair<int64_t, int64_t> chunk_range(const SplitPlan& plan, int64_t total, int64_t c);

// Runs fill(e0, e1) over the chunks of `plan`, on the thread pool. `qos` is
// the caller's fill_qos(), adopted by the workers (cpu_threads.h).
void run_split(const SplitPlan& plan, int64_t total, int qos,
               const std::function<void(int64_t, int64_t)>& fill);

// As run_split, for a fill that reads nothing it writes: fill(e0, e1, dst)
// writes elements [e0, e1) to dst (element e0 first), and out + e *
// item_bytes is element e's place. Chunks are claimed as by run_split; the
// workers fill theirs in items of kRedoItem elements, aside, and publish
// them, and the caller redoes the items of a worker descheduled at the end
// (parallel_for_redoable in thread_pool.h). `fill` owns what it refers to:
// a worker may still run it after the return (into its own buffer).
// Items of 2^14 elements: a worker's buffer (64 KiB of float32) stays in
// its L2 cache, and a redone item costs the caller ~15-30 us; claiming and
// publishing one (two atomic exchanges and a copy) are small next to it.
constexpr int64_t kRedoItem = int64_t(1) << 14;
void run_split_redoable(const SplitPlan& plan, int64_t total, int qos, void* out,
                        size_t item_bytes, std::function<void(int64_t, int64_t, void*)> fill);

// ---- test hooks (tests/test_work_split.py, benchmarks/bench_init.py)
struct SplitTestHook {
  ClaimDelay delay;     // uneven progress of the tasks (thread_pool.h)
  int64_t chunk = 0;    // > 0: chunk size to use instead of the planned one
  bool no_place = false;  // never pin the threads to CPUs
  bool no_redo = false;   // workers fill in place; the caller redoes nothing
  bool trace = false;   // record who took which chunk
};
void set_split_test_hook(const SplitTestHook& hook);
// (task, chunk) claims of the last traced fill, in claim order, and its plan.
std::pair<SplitPlan, std::vector<std::pair<int, int64_t>>> last_split_trace();

} // namespace mfi::cpu
