// What handing part of a fill to another thread costs, without the fill:
// an empty task on a new std::thread (start + join: the CPU path before
// the pool) against an empty task on the pool's sleeping worker
// (csrc/thread_pool.cpp: wake + completion; the caller's item waits until
// the worker has started its own). Medians of many rounds, wall
// time, since waking a thread is what is measured. Built and run by
// benchmarks/profile/run_stages.sh.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "thread_pool.h"

namespace {

template <class F>
double median_us(F&& f, int rounds) {
  std::vector<double> t(rounds);
  for (int r = 0; r < rounds; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    t[r] = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  }
  std::nth_element(t.begin(), t.begin() + rounds / 2, t.end());
  return t[rounds / 2];
}

} // namespace

int main() {
  std::atomic<int> sink{0};
  const int rounds = 2000;
  // Two items on two threads, the first waiting until the second has
  // started: whoever takes the first cannot take the second too, so the
  // time includes waking a worker.
  std::atomic<bool> second_started{false};
  const auto task = [&](int64_t i, int) {
    if (i == 1) {
      second_started = true;
    } else {
      while (!second_started) {
      }
    }
    sink += static_cast<int>(i);
  };
  const auto pool_run = [&] {
    second_started = false;
    mfi::cpu::parallel_for(2, 2, task);
  };
  pool_run();  // start the worker
  double spawn = median_us([&] {
    std::thread t([&] { sink += 1; });
    t.join();
  }, rounds);
  double pool = median_us(pool_run, rounds);
  std::printf("empty task on a new thread (start + join): %6.1f us median\n", spawn);
  std::printf("empty task on the pool (wake + done):      %6.1f us median\n", pool);
  return sink.load() == 0;
}
