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
      : n(n_), body(&body_), options(options_) {}

  const int64_t n;
  // Called only for a claimed item: the caller is still waiting for it.
  const std::function<void(int64_t, int)>* const body;
  const ForOptions options;
  std::vector<int> cpus;     // placement: participant -> CPU (empty: none)
  std::vector<int> allowed;  // the caller's CPUs, to undo a placement
  int workers = 0;           // pool workers asked to take part

  std::atomic<int64_t> next{0};  // items handed out
  std::atomic<int64_t> done{0};  // items finished

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

// The stalled participant of a test: back once every item has been claimed
// (or after 10 s, should the others never come: then it does the rest).
void wait_until_all_claimed(const Job& job) {
  const auto give_up = Clock::now() + std::chrono::seconds(10);
  while (job.next.load() < job.n && Clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

// Claims and runs items until none is left.
void claim_loop(Job& job, int who) {
  const ClaimDelay& delay = job.options.delay;
  if (who == delay.stall) {
    wait_until_all_claimed(job);
  }
  for (;;) {
    if (who == delay.slow) {
      std::this_thread::sleep_for(std::chrono::microseconds(delay.slow_us));
    }
    // Relaxed: the counter only hands out indices; the items' bytes reach
    // the caller through finish_item.
    const int64_t i = job.next.fetch_add(1, std::memory_order_relaxed);
    if (i >= job.n) {
      return;
    }
    try {
      (*job.body)(i, who);
    } catch (...) {
      std::lock_guard<std::mutex> lock(job.mutex);
      if (!job.error) {
        job.error = std::current_exception();
      }
    }
    job.finish_item();
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
      claim_loop(*job, index + 1);
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

} // namespace

void parallel_for(int64_t n, int threads, const std::function<void(int64_t, int)>& body,
                  const ForOptions& options) {
  if (n <= 0) {
    return;
  }
  threads = static_cast<int>(std::clamp<int64_t>(threads, 1, n));
  auto job = std::make_shared<Job>(n, body, options);
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
  claim_loop(*job, 0);
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

int pool_size() {
  return this_process_pool()->size();
}

} // namespace mfi::cpu
