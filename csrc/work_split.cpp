#include "work_split.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include "thread_pool.h"

namespace mfi::cpu {

namespace {

// Below this many elements per thread, handing work to another thread
// costs more than it saves: a pool worker wakes in ~5-20 us (a new thread
// took ~20 us; benchmarks/results/profile.md), and the kernels fill 2^15
// elements in 35 (avx512) to 50 (avx2) us.
constexpr int64_t kMinElementsPerThread = int64_t(1) << 15;

// Chunk sizes. Claiming a chunk is one atomic add (~0.1 us even when the
// cache line moves between cores), nothing next to filling 2^13 elements
// (~10 us). The cap bounds the wait at the end of a perturbation (other
// fills redo what a worker holds: run_split_redoable): when the counter
// runs out, the others wait at most for one chunk on the slowest thread, 2^17
// elements ~0.25 ms on one Zen 4 core (a 4096^2 fill takes ~20 ms on two).
// Measured in docs/performance.md ("Threads": 2^16, 2^17 and 2^18 alike
// idle; 2^17 kept for a short tail on an efficiency core).
constexpr int64_t kMinChunk = int64_t(1) << 13;
constexpr int64_t kMaxChunk = int64_t(1) << 17;
// Mid-sized fills get at least this many chunks per thread, so that one
// stalled thread leaves work the others can take.
constexpr int64_t kChunksPerThread = 8;
// Whole huge pages as chunks only with at least this many per thread:
// fewer would leave a long wait at the end for the last page.
constexpr int64_t kPagesPerThread = 4;
// Multiples of 64 elements: chunk boundaries fall on cache-line boundaries
// for every output dtype (>= 2 bytes), so no two threads write one line.
constexpr int64_t kAlign = 64;
// Fills from this size place one thread per CPU (thread_pool.h): ~1 ms of
// one core's work, against a few system calls (~1 us each) of placing.
constexpr int64_t kPlaceMin = int64_t(1) << 20;

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

} // namespace

SplitPlan plan_split(int64_t total, int max_threads, int64_t page, int64_t first_page) {
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
  p.place = total >= kPlaceMin;
  // Huge pages: each is faulted, and zeroed by the kernel (2 MiB in one
  // fault), by one thread. With smaller chunks two threads fault one page,
  // and one waits for, or repeats, the other's zeroing - for a time slice
  // when the other is descheduled on a busy core. Measured in
  // docs/performance.md ("A busy core").
  if (page > 0 && page % kAlign == 0 && first_page >= 0 && first_page < page &&
      total / page >= kPagesPerThread * nt) {
    p.chunk = page;
    p.shift = (page - first_page) % page;
  } else {
    p.chunk = std::clamp(round_up(ceil_div(total, nt * kChunksPerThread), kAlign),
                         kMinChunk, kMaxChunk);
  }
  p.chunks = ceil_div(total + p.shift, p.chunk);
  p.threads = static_cast<int>(std::min<int64_t>(nt, p.chunks));
  return p;
}

std::pair<int64_t, int64_t> chunk_range(const SplitPlan& plan, int64_t total, int64_t c) {
  return {std::max<int64_t>(0, c * plan.chunk - plan.shift),
          std::min(total, (c + 1) * plan.chunk - plan.shift)};
}

namespace {

// `planned`, with the test hook's chunk size if it sets one.
SplitPlan hooked_plan(const SplitPlan& planned, int64_t total, const SplitTestHook& hook) {
  SplitPlan plan = planned;
  if (hook.chunk > 0 && plan.threads > 1) {
    plan.chunk = round_up(hook.chunk, kAlign);
    plan.shift = 0;
    plan.chunks = ceil_div(total, plan.chunk);
    plan.threads = static_cast<int>(std::min<int64_t>(plan.threads, plan.chunks));
  }
  return plan;
}

ForOptions for_options(const SplitPlan& plan, int qos, const SplitTestHook& hook) {
  ForOptions options;
  options.qos = qos;
  options.place = plan.place && !hook.no_place;
  options.delay = hook.delay;
  return options;
}

// Who claimed which chunk, shared with workers that may outlive the fill.
struct Trace {
  std::mutex mutex;
  std::vector<std::pair<int, int64_t>> claims;
  void add(int who, int64_t c) {
    std::lock_guard<std::mutex> lock(mutex);
    claims.emplace_back(who, c);
  }
  void wait_for(int64_t count) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (static_cast<int64_t>(claims.size()) >= count) {
          return;
        }
      }
      if (std::chrono::steady_clock::now() > give_up) {
        return;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  void save(const SplitPlan& plan) {
    std::lock_guard<std::mutex> lock(mutex);
    std::lock_guard<std::mutex> hook_lock(g_hook_mutex);
    g_trace_plan = plan;
    g_trace = claims;
  }
};

} // namespace

void run_split(const SplitPlan& planned, int64_t total, int qos,
               const std::function<void(int64_t, int64_t)>& fill) {
  const SplitTestHook hook = current_hook();
  const SplitPlan plan = hooked_plan(planned, total, hook);
  Trace trace;
  parallel_for(plan.chunks, plan.threads, [&](int64_t c, int who) {
    if (hook.trace) {
      trace.add(who, c);
    }
    const auto [e0, e1] = chunk_range(plan, total, c);
    fill(e0, e1);
  }, for_options(plan, qos, hook));
  if (hook.trace) {
    trace.save(plan);
  }
}

void run_split_redoable(const SplitPlan& planned, int64_t total, int qos, void* out,
                        size_t item_bytes, std::function<void(int64_t, int64_t, void*)> fill) {
  const SplitTestHook hook = current_hook();
  auto base = static_cast<unsigned char*>(out);
  if (hook.no_redo) {
    run_split(planned, total, qos, [&](int64_t e0, int64_t e1) {
      fill(e0, e1, base + e0 * item_bytes);
    });
    return;
  }
  const SplitPlan plan = hooked_plan(planned, total, hook);
  // Item k of chunk c: elements [e0 + k * kRedoItem, ...) of the chunk's
  // [e0, e1), empty past e1 (only the first and last chunk are short).
  const int64_t per_chunk = ceil_div(plan.chunk, kRedoItem);
  auto range = [plan, total, per_chunk](int64_t i) {
    const auto [c0, c1] = chunk_range(plan, total, i / per_chunk);
    const int64_t e0 = std::min(c1, c0 + (i % per_chunk) * kRedoItem);
    return std::make_pair(e0, std::min(c1, e0 + kRedoItem));
  };
  auto redo = std::make_shared<Redoable>();
  redo->items = plan.chunks * per_chunk;
  redo->group = per_chunk;
  redo->scratch_bytes = static_cast<size_t>(kRedoItem) * item_bytes;
  redo->run = [range, fill = std::move(fill), base, item_bytes](int64_t i, void* scratch) {
    const auto [e0, e1] = range(i);
    if (e0 < e1) {
      fill(e0, e1, scratch != nullptr ? scratch : base + e0 * item_bytes);
    }
  };
  redo->publish = [range, base, item_bytes](int64_t i, const void* scratch) {
    const auto [e0, e1] = range(i);
    if (e0 < e1) {
      std::memcpy(base + e0 * item_bytes, scratch, static_cast<size_t>(e1 - e0) * item_bytes);
    }
  };
  std::shared_ptr<Trace> trace;
  if (hook.trace) {
    trace = std::make_shared<Trace>();
    redo->claimed = [trace](int64_t c, int who) { trace->add(who, c); };
  }
  parallel_for_redoable(std::move(redo), plan.threads, for_options(plan, qos, hook));
  if (trace) {
    // A worker records its claim just after making it: one preempted in
    // between may record it after the fill has returned.
    trace->wait_for(plan.chunks);
    trace->save(plan);
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
