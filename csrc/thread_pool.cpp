#include "thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "cpu_placement.h"
#include "cpu_threads.h"

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#define MFI_HAVE_GETPID 1
#endif

namespace mfi::cpu {

namespace {

using Clock = std::chrono::steady_clock;

int64_t process_id() {
#if defined(MFI_HAVE_GETPID)
  return static_cast<int64_t>(getpid());
#else
  return 0;
#endif
}

// A worker's CPU restriction as it last set it: a CPU, or this (every CPU
// the fill's caller may use; also how a worker starts).
constexpr int kAllowed = -1;

// One parallel_for: shared by the caller and the workers it was posted to,
// which may still hold it (finding nothing to claim) after the caller left.
struct Job {
  Job(int64_t n_, const std::function<void(int64_t, int)>& body_, const ForOptions& options_)
      : n(n_), groups(n_), body(&body_), options(options_) {}
  Job(std::shared_ptr<const Redoable> redo_, const ForOptions& options_)
      : n(redo_->items),
        groups((redo_->items + redo_->group - 1) / redo_->group),
        body(nullptr),
        options(options_),
        redo(std::move(redo_)),
        state(new std::atomic<uint8_t>[n]) {
    for (int64_t i = 0; i < n; ++i) {
      state[i].store(kFree, std::memory_order_relaxed);
    }
  }

  // A redoable item's state. A worker moves it kFree -> kClaimed ->
  // kPublishing; the caller moves kFree or kClaimed -> kStolen and redoes it,
  // and marks its own items kDone. Exactly one of them wins each item.
  static constexpr uint8_t kFree = 0, kClaimed = 1, kPublishing = 2, kStolen = 3, kDone = 4;

  const int64_t n;       // items
  const int64_t groups;  // what `next` hands out: items, or groups of them
  // Called only for a claimed item: the caller is still waiting for it.
  const std::function<void(int64_t, int)>* const body;
  const ForOptions options;
  const std::shared_ptr<const Redoable> redo;  // or a plain parallel_for
  const std::unique_ptr<std::atomic<uint8_t>[]> state;  // redo: per item
  std::vector<int> cpus;     // placement: participant -> CPU (empty: none)
  std::vector<int> allowed;  // the caller's CPUs, to undo a placement
  int workers = 0;           // pool workers asked to take part

  std::atomic<int64_t> next{0};  // items (or groups) handed out
  std::atomic<int64_t> done{0};  // items finished
  // Redo: the caller's items in place so far, and the time they took.
  int64_t caller_items = 0;
  Clock::duration caller_time{0};

  std::mutex mutex;
  std::condition_variable all_done;
  bool finished = false;
  std::exception_ptr error;

  void finish_item() {
    // acq_rel: the item's writes happen before the caller sees `finished`.
    if (done.fetch_add(1, std::memory_order_acq_rel) + 1 == n) {
      std::lock_guard<std::mutex> lock(mutex);
      finished = true;
      all_done.notify_all();
    }
  }
};

// Keeps the first exception thrown by an item (called in a catch block).
void record_error(Job& job) {
  std::lock_guard<std::mutex> lock(job.mutex);
  if (!job.error) {
    job.error = std::current_exception();
  }
}

// The stalled participant of a test: back once every item has been claimed
// (or after 10 s, should the others never come: then it does the rest).
void wait_until_all_claimed(const Job& job) {
  const auto give_up = Clock::now() + std::chrono::seconds(10);
  while (job.next.load() < job.groups && Clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

// The next index the counter hands `who` (an item, or a group of a
// redoable fill), or -1 once every one is taken; with the test delays.
int64_t next_claim(Job& job, int who, bool first) {
  const ClaimDelay& delay = job.options.delay;
  if (first && who == delay.stall) {
    wait_until_all_claimed(job);
  }
  if (who == delay.slow) {
    std::this_thread::sleep_for(std::chrono::microseconds(delay.slow_us));
  }
  // Relaxed: the counter only hands out indices; the items' bytes reach
  // the caller through finish_item.
  const int64_t i = job.next.fetch_add(1, std::memory_order_relaxed);
  return i < job.groups ? i : -1;
}

// Claims and runs items until none is left.
void claim_loop(Job& job, int who) {
  for (int64_t i = next_claim(job, who, true); i >= 0; i = next_claim(job, who, false)) {
    try {
      (*job.body)(i, who);
    } catch (...) {
      record_error(job);
    }
    job.finish_item();
  }
}

// A worker's buffer for one redoable item, kept between fills.
void* scratch(size_t bytes) {
  constexpr size_t kLine = 64;  // whole cache lines, as in place
  static thread_local std::vector<unsigned char> buffer;
  if (buffer.size() < bytes + kLine) {
    buffer.assign(bytes + kLine, 0);
  }
  const auto at = reinterpret_cast<uintptr_t>(buffer.data());
  return buffer.data() + (kLine - at % kLine) % kLine;
}

// A worker's item of a redoable fill: done aside, then published unless
// the caller has taken it over meanwhile.
void do_aside(Job& job, int64_t i, int who) {
  const Redoable& fill = *job.redo;
  uint8_t s = Job::kFree;
  if (!job.state[i].compare_exchange_strong(s, Job::kClaimed, std::memory_order_acq_rel)) {
    return;  // taken over before it began
  }
  void* buffer = scratch(fill.scratch_bytes);
  try {
    fill.run(i, buffer);
  } catch (...) {
    record_error(job);
    return;  // left claimed: the caller redoes it (and sees the error again)
  }
  if (who == job.options.delay.hold) {
    std::this_thread::sleep_for(std::chrono::microseconds(job.options.delay.hold_us));
  }
  s = Job::kClaimed;
  if (!job.state[i].compare_exchange_strong(s, Job::kPublishing, std::memory_order_acq_rel)) {
    return;  // the caller redid it in place: this copy is not needed
  }
  fill.publish(i, buffer);
  job.finish_item();
}

// The caller's item: in place, and never taken over.
void do_in_place(Job& job, int64_t i) {
  const auto t0 = Clock::now();
  try {
    job.redo->run(i, nullptr);
  } catch (...) {
    record_error(job);
  }
  job.caller_time += Clock::now() - t0;
  job.caller_items += 1;
  job.finish_item();
}

// Claims groups of a redoable fill until none is left.
void claim_groups(Job& job, int who) {
  const Redoable& fill = *job.redo;
  for (int64_t g = next_claim(job, who, true); g >= 0; g = next_claim(job, who, false)) {
    if (fill.claimed) {
      fill.claimed(g, who);
    }
    const int64_t end = std::min(job.n, (g + 1) * fill.group);
    for (int64_t i = g * fill.group; i < end; ++i) {
      if (who == 0) {
        job.state[i].store(Job::kDone, std::memory_order_relaxed);
        do_in_place(job, i);
      } else {
        do_aside(job, i, who);
      }
    }
  }
}

// Takes item i over from the workers (if none has begun to publish it) and
// does it in place.
void take_over(Job& job, int64_t i, uint8_t s) {
  while (s == Job::kFree || s == Job::kClaimed) {
    if (job.state[i].compare_exchange_weak(s, Job::kStolen, std::memory_order_acq_rel)) {
      do_in_place(job, i);
      return;
    }
  }
}

// The caller, once nothing is left to claim: first takes over the items
// no worker has begun, then each item a worker is still doing, after
// about two of its own items' time (a running worker is done by then; one
// descheduled mid-item may be away for a whole time slice, which is what
// the caller no longer waits for). Then only publishes are waited for.
void take_over_the_rest(Job& job) {
  const Clock::duration wait =
      job.caller_items > 0 ? 2 * job.caller_time / job.caller_items : Clock::duration(0);
  for (int64_t i = 0; i < job.n; ++i) {
    const uint8_t s = job.state[i].load(std::memory_order_acquire);
    if (s == Job::kFree) {
      take_over(job, i, s);
    }
  }
  for (int64_t i = 0; i < job.n; ++i) {
    uint8_t s = job.state[i].load(std::memory_order_acquire);
    if (s != Job::kClaimed) {
      continue;
    }
    const auto patience = Clock::now() + wait;
    while (s == Job::kClaimed && Clock::now() < patience) {
      std::this_thread::yield();
      s = job.state[i].load(std::memory_order_acquire);
    }
    take_over(job, i, s);
  }
}

class Pool {
 public:
  const int64_t pid = process_id();

  // Hands `job` to up to `want` workers (starting them if needed) and
  // returns at once; sets job->workers.
  void post(const std::shared_ptr<Job>& job, int want) {
    const int have = grow(want);
    std::lock_guard<std::mutex> lock(mutex_);
    job->workers = std::min(want, have);
    job_ = job;
    ++generation_;
    wake_.notify_all();
  }

  // The caller is done with `job`: a worker waking later finds no job.
  void retire(const std::shared_ptr<Job>& job) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (job_ == job) {
      job_.reset();
    }
  }

  int size() {
    std::lock_guard<std::mutex> lock(mutex_);
    return workers_;
  }

 private:
  // Restricts the calling worker, now at `restricted`, to `cpu` for `job`.
  static void restrict_self(int& restricted, int cpu, const Job& job) {
    if (cpu >= 0) {
      placement::pin_self(cpu);
    } else if (!job.allowed.empty()) {
      placement::allow_self(job.allowed);
    } else {
      return;  // nothing known to go back to: leave it
    }
    restricted = cpu;
  }

  // Starts workers until there are `want` of them (or starting fails);
  // returns how many there are. Workers are detached: the pool lives until
  // the process ends, and joining at exit could wait on a sleeping thread.
  int grow(int want) {
    std::lock_guard<std::mutex> lock(mutex_);
    while (workers_ < want) {
      const int index = workers_;
      try {
        std::thread t([this, index] { work(index); });
        t.detach();
        ++workers_;
      } catch (...) {
        break;
      }
    }
    return workers_;
  }

  void work(int index) {
    int restricted = kAllowed;  // started with the creating caller's CPUs
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return generation_ != seen; });
      seen = generation_;
      std::shared_ptr<Job> job = job_;
      if (!job || index >= job->workers) {
        continue;
      }
      lock.unlock();
      const int cpu = job->cpus.empty() ? kAllowed : job->cpus[index + 1];
      if (restricted != cpu) {
        restrict_self(restricted, cpu, *job);
      }
      adopt_fill_qos(job->options.qos);
      if (job->redo) {
        claim_groups(*job, index + 1);
      } else {
        claim_loop(*job, index + 1);
      }
      job.reset();
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  int workers_ = 0;                          // started
  std::shared_ptr<Job> job_;                 // the latest fill, until retired
  uint64_t generation_ = 0;                  // one per post
};

// The pool of this process. Never destroyed: detached workers sleep in it
// until the process ends. After fork() the child finds the parent's pool
// (its workers do not exist there) and starts one of its own; the old one
// is leaked, untouched, since its mutex may have been held at the fork.
std::atomic<Pool*> g_pool{nullptr};

Pool* this_process_pool() {
  Pool* p = g_pool.load(std::memory_order_acquire);
  const int64_t pid = process_id();
  while (p == nullptr || p->pid != pid) {
    Pool* fresh = new Pool();
    if (g_pool.compare_exchange_strong(p, fresh, std::memory_order_acq_rel)) {
      return fresh;
    }
    delete fresh;  // another thread installed one first: use that (p)
  }
  return p;
}

// Runs `job` on the caller and up to threads - 1 workers.
void run_job(const std::shared_ptr<Job>& job, int threads) {
  const ForOptions& options = job->options;
  threads = static_cast<int>(std::clamp<int64_t>(threads, 1, job->groups));
  Pool* pool = nullptr;
  if (threads > 1) {
    // Read for every split (one system call, ~0.3 us): also what a worker
    // pinned by an earlier fill is given back.
    job->allowed = placement::allowed_cpus();
    if (options.place) {
      job->cpus = placement::spread(job->allowed, placement::current_cpu(), threads);
    }
    pool = this_process_pool();
    pool->post(job, threads - 1);
  }
  if (job->redo) {
    claim_groups(*job, 0);
    if (pool != nullptr) {
      take_over_the_rest(*job);
    }
  } else {
    claim_loop(*job, 0);
  }
  if (pool != nullptr) {
    // Only items still running are waited for (a worker that never came
    // is not): the items' writes are visible once `finished` is.
    std::unique_lock<std::mutex> lock(job->mutex);
    job->all_done.wait(lock, [&] { return job->finished; });
    lock.unlock();
    pool->retire(job);
  }
  if (job->error) {
    std::rethrow_exception(job->error);
  }
}

} // namespace

void parallel_for(int64_t n, int threads, const std::function<void(int64_t, int)>& body,
                  const ForOptions& options) {
  if (n > 0) {
    run_job(std::make_shared<Job>(n, body, options), threads);
  }
}

void parallel_for_redoable(std::shared_ptr<const Redoable> fill, int threads,
                           const ForOptions& options) {
  if (fill && fill->items > 0 && fill->group > 0) {
    run_job(std::make_shared<Job>(std::move(fill), options), threads);
  }
}

int pool_size() {
  return this_process_pool()->size();
}

} // namespace mfi::cpu
