// Persistent worker threads for the CPU kernel's parallel fills.
//
// Starting a thread costs tens of microseconds, as much as filling ~2^15
// elements; a model has hundreds of weights of 2^17-2^22 elements, each
// split across threads. Workers are started on first use, grow to the
// largest split asked for, then sleep between fills.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace mfi::cpu {

// Test hooks: uneven progress on purpose (tests/test_work_split.py).
struct ClaimDelay {
  int stall = -1;   // this participant claims nothing until every item is taken
  int slow = -1;    // this participant sleeps slow_us before each claim
  int slow_us = 0;
  int hold = -1;    // (redoable fills) this worker sleeps hold_us before publishing each item
  int hold_us = 0;
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

// A fill whose items a worker does aside and then publishes, so that the
// caller never waits for a worker descheduled in the middle of an item: once
// nothing is left to claim, the caller redoes, in place, every item that no
// worker has begun to publish, and the worker's copy is thrown away. Waiting
// is then bounded by a publish (a copy of one item), not by a time slice.
// Items are pure functions of their index, so a redone item has the bits
// the worker's would have had.
struct Redoable {
  int64_t items = 0;
  int64_t group = 1;         // consecutive items claimed at once
  size_t scratch_bytes = 0;  // a worker's buffer for one item
  // Does item i into `scratch` (a worker), or in place (scratch == nullptr).
  std::function<void(int64_t, void*)> run;
  // Copies item i, done into `scratch`, into place.
  std::function<void(int64_t, const void*)> publish;
  // Optional: called by whoever claims group g (who as for parallel_for).
  std::function<void(int64_t, int)> claimed;
};

// Runs fill.run for every item, as parallel_for does, and returns when each
// item is in place. A worker may still be inside fill.run after the return
// (it was descheduled there, and the caller redid its item), so the
// functions own what they use (they are kept alive by the job, not by the
// caller's stack). A worker never writes in place after the return: it
// publishes only an item the caller has not taken over, and the caller waits
// for every publish begun. An item must be redoable: it cannot read what
// run or publish wrote (no in-place update).
void parallel_for_redoable(std::shared_ptr<const Redoable> fill, int threads,
                           const ForOptions& options = {});

// Workers the pool holds now (for tests).
int pool_size();

} // namespace mfi::cpu
