// Which CPU each thread of a fill runs on. Linux only: elsewhere every
// function is a no-op and placement is off (macOS has no affinity API; its
// scheduler is steered by the QoS class instead, cpu_threads.h).
//
// Why pin at all (docs/performance.md, "A busy core"): with one core busy,
// Linux wakes a fill's worker onto the caller's core - three runnable
// threads on two cores look balanced whichever core holds two - so the fill
// gets one core instead of the free one plus a share of the busy one.
#pragma once

#include <vector>

namespace mfi::cpu::placement {

// The CPUs the calling thread may run on, in increasing order (empty where
// unknown: then nothing is pinned).
std::vector<int> allowed_cpus();

// The CPU the calling thread runs on now, or -1.
int current_cpu();

// Restricts the calling thread to one CPU, or to `cpus`. Best effort: a
// failure (a CPU taken offline, a cgroup change) leaves the thread where it
// is, which only costs speed.
void pin_self(int cpu);
void allow_self(const std::vector<int>& cpus);

// One CPU per participant of a fill on all `cpus`, the caller (who = 0)
// keeping the one it runs on: participant `who` gets the who-th CPU after
// `caller_cpu` in `cpus`, cyclically. Empty when the caller's CPU is not
// in `cpus` or `threads` differs from cpus.size(). Plain logic, tested on
// any machine (tests/test_work_split.py).
std::vector<int> spread(const std::vector<int>& cpus, int caller_cpu, int threads);

} // namespace mfi::cpu::placement
