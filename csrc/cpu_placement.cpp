#include "cpu_placement.h"

#include <algorithm>

#if defined(__linux__)
#include <sched.h>
#define MFI_HAVE_AFFINITY 1
#endif

namespace mfi::cpu::placement {

std::vector<int> spread(const std::vector<int>& cpus, int caller_cpu, int threads) {
  const auto at = std::find(cpus.begin(), cpus.end(), caller_cpu);
  if (at == cpus.end() || threads != static_cast<int>(cpus.size())) {
    return {};
  }
  const size_t first = static_cast<size_t>(at - cpus.begin());
  std::vector<int> out(threads);
  for (int who = 0; who < threads; ++who) {
    out[who] = cpus[(first + who) % cpus.size()];
  }
  return out;
}

#if defined(MFI_HAVE_AFFINITY)

std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> out;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &set)) {
        out.push_back(c);
      }
    }
  }
  return out;
}

int current_cpu() {
  return sched_getcpu();
}

void pin_self(int cpu) {
  if (cpu < 0 || cpu >= CPU_SETSIZE) {
    return;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)sched_setaffinity(0, sizeof set, &set);
}

void allow_self(const std::vector<int>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) {
    if (c >= 0 && c < CPU_SETSIZE) {
      CPU_SET(c, &set);
    }
  }
  if (CPU_COUNT(&set) > 0) {
    (void)sched_setaffinity(0, sizeof set, &set);
  }
}

#else

std::vector<int> allowed_cpus() {
  return {};
}
int current_cpu() {
  return -1;
}
void pin_self(int) {}
void allow_self(const std::vector<int>&) {}

#endif

} // namespace mfi::cpu::placement
