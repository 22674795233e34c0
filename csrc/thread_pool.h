// Persistent worker threads for the CPU kernel's parallel fills.
//
// Starting a thread costs tens of microseconds, as much as filling ~2^15
// elements; a model has hundreds of weights of 2^17-2^22 elements, each
// split across threads. Workers are started on first use, grow to the
// largest split asked for, then sleep between fills.
#pragma once

#include <functional>

namespace mfi::cpu {

// Runs task(0) .. task(n - 1) and returns when all have finished: task(0)
// on the calling thread, the others on pool workers. If a task throws, the
// first exception is rethrown here once every task has finished (tasks
// share the caller's data, so none may still run when this returns).
//
// One fill uses the pool at a time; a concurrent caller (another MLX
// stream) gets threads of its own instead, as does a forked child (the
// parent's workers do not exist there), so no caller ever waits for
// another. If no thread can be started at all, the caller runs every task.
void parallel_for(int n, const std::function<void(int)>& task);

// Workers the pool holds now (for tests).
int pool_size();

} // namespace mfi::cpu
