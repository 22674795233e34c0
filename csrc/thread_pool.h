// Persistent worker threads for the CPU kernel's parallel fills.
//
// Starting a thread costs tens of microseconds, as much as filling ~2^15
// elements; a model has hundreds of weights of 2^17-2^22 elements, each
// split across threads. Workers are started on first use, grow to the
// largest split asked for, then sleep between fills.
#pragma once

#include <cstdint>
#include <functional>

namespace mfi::cpu {

// Test hooks: uneven progress on purpose (tests/test_work_split.py).
struct ClaimDelay {
  int stall = -1;   // this participant claims nothing until every item is taken
  int slow = -1;    // this participant sleeps slow_us before each claim
  int slow_us = 0;
};

struct ForOptions {
  int qos = 0;          // the caller's fill_qos(), adopted by the workers (cpu_threads.h)
  bool place = false;   // Linux: one participant per allowed CPU (cpu_placement.h)
  ClaimDelay delay;
};

// Runs body(i, who) once for every item i in [0, n) and returns when all
// have run. Participants claim items from a shared counter: the calling
// thread (who = 0) and up to threads - 1 pool workers (who = 1, 2, ...).
//
// The caller waits only for items that are running, never for a worker
// as such: a worker that wakes late, or is preempted between items, finds
// the items gone to the others, and one that wakes after the end finds
// nothing (body is never called once every item is claimed, so it may
// refer to the caller's stack). With options.place, on Linux, when the
// fill has one participant per CPU the caller may use, each worker is
// pinned to one of the CPUs the caller is not on (cpu_placement.h).
//
// If body throws, the first exception is rethrown here once every item
// has run. Concurrent callers (other MLX streams) share the workers: each
// caller can finish its items alone, so none waits for another. A forked
// child starts a pool of its own (the parent's workers do not exist there).
void parallel_for(int64_t n, int threads, const std::function<void(int64_t, int)>& body,
                  const ForOptions& options = {});

// Workers the pool holds now (for tests).
int pool_size();

} // namespace mfi::cpu
