#include "thread_pool.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#define MFI_HAVE_GETPID 1
#endif

namespace mfi::cpu {

namespace {

int64_t process_id() {
#if defined(MFI_HAVE_GETPID)
  return static_cast<int64_t>(getpid());
#else
  return 0;
#endif
}

// Collects the first exception of a set of tasks.
struct FirstError {
  std::mutex mutex;
  std::exception_ptr error;
  void run(const std::function<void(int)>& task, int i) noexcept {
    try {
      task(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      if (!error) {
        error = std::current_exception();
      }
    }
  }
};

// Without the pool: a thread per task, joined before returning.
void spawn_and_join(int n, const std::function<void(int)>& task, FirstError& err) {
  std::vector<std::thread> threads;
  int started = 1;
  try {
    for (; started < n; ++started) {
      threads.emplace_back([&task, &err, started] { err.run(task, started); });
    }
  } catch (...) {  // cannot start more threads: the caller does the rest
  }
  err.run(task, 0);
  for (int i = started; i < n; ++i) {
    err.run(task, i);
  }
  for (auto& t : threads) {
    t.join();
  }
}

class Pool {
 public:
  const int64_t pid = process_id();

  // Holds the pool for one fill; false when another fill has it.
  bool try_acquire() {
    return !busy_.exchange(true, std::memory_order_acquire);
  }
  void release() {
    busy_.store(false, std::memory_order_release);
  }

  // With the pool acquired: tasks 1 .. n-1 on workers, task 0 here.
  void run(int n, const std::function<void(int)>& task, FirstError& err) {
    const int workers = grow(n - 1);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      task_ = &task;
      err_ = &err;
      parts_ = std::min(n - 1, workers);
      pending_ = parts_;
      ++generation_;
    }
    wake_.notify_all();
    err.run(task, 0);
    // Tasks no worker could take (threads failed to start) run here.
    for (int i = 1 + workers; i < n; ++i) {
      err.run(task, i);
    }
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
    task_ = nullptr;
    err_ = nullptr;
  }

  int size() {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<int>(threads_.size());
  }

 private:
  // Starts workers until there are `want` of them (or starting fails);
  // returns how many there are. Workers are detached: the pool lives until
  // the process ends, and joining at exit could wait on a sleeping thread.
  int grow(int want) {
    std::lock_guard<std::mutex> lock(mutex_);
    while (static_cast<int>(threads_.size()) < want) {
      const int index = static_cast<int>(threads_.size());
      try {
        std::thread t([this, index] { work(index); });
        t.detach();
        threads_.push_back(index);
      } catch (...) {
        break;
      }
    }
    return static_cast<int>(threads_.size());
  }

  void work(int index) {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return generation_ != seen; });
      seen = generation_;
      // Worker `index` takes task index + 1 if this fill has that many.
      if (index >= parts_) {
        continue;
      }
      const std::function<void(int)>* task = task_;
      FirstError* err = err_;
      lock.unlock();
      err->run(*task, index + 1);
      lock.lock();
      if (--pending_ == 0) {
        done_.notify_one();
      }
    }
  }

  std::atomic<bool> busy_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::vector<int> threads_;  // worker indices, one per started thread
  uint64_t generation_ = 0;   // one per fill
  const std::function<void(int)>* task_ = nullptr;
  FirstError* err_ = nullptr;
  int parts_ = 0;    // workers taking part in the current fill
  int pending_ = 0;  // of those, still running
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

void parallel_for(int n, const std::function<void(int)>& task) {
  FirstError err;
  if (n <= 1) {
    if (n == 1) {
      err.run(task, 0);
    }
  } else {
    Pool* pool = this_process_pool();
    if (pool->try_acquire()) {
      pool->run(n, task, err);
      pool->release();
    } else {
      spawn_and_join(n, task, err);
    }
  }
  if (err.error) {
    std::rethrow_exception(err.error);
  }
}

int pool_size() {
  return this_process_pool()->size();
}

} // namespace mfi::cpu
