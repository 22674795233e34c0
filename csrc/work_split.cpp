#include "work_split.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "cpu_threads.h"
#include "thread_pool.h"

namespace mfi::cpu {

namespace {

// Below this many elements per thread, handing work to another thread
// costs more than it saves: a pool worker wakes in ~5-10 us (a new thread
// took ~20 us; benchmarks/results/profile.md), and the kernels fill 2^15
// elements in 35 (avx512) to 50 (avx2) us.
constexpr int64_t kMinElementsPerThread = int64_t(1) << 15;

// Chunk sizes. Claiming a chunk is one atomic add (~0.1 us even when the
// cache line moves between cores), nothing next to filling 2^13 elements
// (~10 us). The cap bounds the wait at the end: when the counter runs out,
// the others wait at most for one chunk on the slowest thread, 2^17
// elements ~0.25 ms on one Zen 4 core (a 4096^2 fill takes ~20 ms on two).
// Measured in docs/performance.md ("Threads": 2^16, 2^17 and 2^18 alike
// idle; 2^17 kept for a short tail on an efficiency core).
constexpr int64_t kMinChunk = int64_t(1) << 13;
constexpr int64_t kMaxChunk = int64_t(1) << 17;
// Mid-sized fills get at least this many chunks per thread, so that one
// stalled thread leaves work the others can take.
constexpr int64_t kChunksPerThread = 8;
// Multiples of 64 elements: chunk boundaries fall on cache-line boundaries
// for every output dtype (>= 2 bytes), so no two threads write one line.
constexpr int64_t kAlign = 64;

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

int64_t round_up(int64_t a, int64_t m) {
  return ceil_div(a, m) * m;
}

std::mutex g_hook_mutex;
SplitTestHook g_hook;
SplitPlan g_trace_plan;
std::vector<std::pair<int, int64_t>> g_trace;

SplitTestHook current_hook() {
  std::lock_guard<std::mutex> lock(g_hook_mutex);
  return g_hook;
}

// The stalled task of a test: back once every chunk has been claimed (or
// after 10 s, should the others never run: then it does the rest itself).
void wait_until_all_claimed(const std::atomic<int64_t>& next, int64_t chunks) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (next.load() < chunks && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

} // namespace

SplitPlan plan_split(int64_t total, int max_threads) {
  SplitPlan p;
  if (total <= 0) {
    return p;
  }
  const int64_t nt = std::min<int64_t>(std::max(max_threads, 1),
                                       ceil_div(total, kMinElementsPerThread));
  if (nt <= 1) {
    p.chunk = total;
    p.chunks = 1;
    return p;
  }
  p.chunk = std::clamp(round_up(ceil_div(total, nt * kChunksPerThread), kAlign),
                       kMinChunk, kMaxChunk);
  p.chunks = ceil_div(total, p.chunk);
  p.threads = static_cast<int>(std::min<int64_t>(nt, p.chunks));
  return p;
}

void run_split(const SplitPlan& planned, int64_t total, int qos,
               const std::function<void(int64_t, int64_t)>& fill) {
  const SplitTestHook hook = current_hook();
  SplitPlan plan = planned;
  if (hook.chunk > 0 && plan.threads > 1) {
    plan.chunk = round_up(hook.chunk, kAlign);
    plan.chunks = ceil_div(total, plan.chunk);
    plan.threads = static_cast<int>(std::min<int64_t>(plan.threads, plan.chunks));
  }
  std::atomic<int64_t> next{0};
  std::mutex trace_mutex;
  std::vector<std::pair<int, int64_t>> trace;
  const std::thread::id caller = std::this_thread::get_id();
  parallel_for(plan.threads, [&](int task) {
    if (std::this_thread::get_id() != caller) {
      adopt_fill_qos(qos);
    }
    if (task == hook.stall_task) {
      wait_until_all_claimed(next, plan.chunks);
    }
    for (;;) {
      if (task == hook.slow_task) {
        std::this_thread::sleep_for(std::chrono::microseconds(hook.slow_us));
      }
      // Relaxed: the counter only hands out indices; the chunks' bytes
      // reach the caller through parallel_for's join.
      const int64_t c = next.fetch_add(1, std::memory_order_relaxed);
      if (c >= plan.chunks) {
        return;
      }
      if (hook.trace) {
        std::lock_guard<std::mutex> lock(trace_mutex);
        trace.emplace_back(task, c);
      }
      const int64_t e0 = c * plan.chunk;
      fill(e0, std::min(total, e0 + plan.chunk));
    }
  });
  if (hook.trace) {
    std::lock_guard<std::mutex> lock(g_hook_mutex);
    g_trace_plan = plan;
    g_trace = std::move(trace);
  }
}

void set_split_test_hook(const SplitTestHook& hook) {
  std::lock_guard<std::mutex> lock(g_hook_mutex);
  g_hook = hook;
  g_trace_plan = SplitPlan{};
  g_trace.clear();
}

std::pair<SplitPlan, std::vector<std::pair<int, int64_t>>> last_split_trace() {
  std::lock_guard<std::mutex> lock(g_hook_mutex);
  return {g_trace_plan, g_trace};
}

} // namespace mfi::cpu
