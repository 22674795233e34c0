// The pure thread-count rule, and the non-Apple platform hooks (the Apple
// ones are in cpu_threads_apple.cpp).
#include "cpu_threads.h"

#include <cerrno>
#include <cstdlib>

namespace mfi::cpu {

namespace {

// A positive decimal integer with nothing else but surrounding blanks, or 0.
// Anything else ("", "auto", "-2", "4x") means "no override": a typo in an
// environment variable must not pick a surprising count, and there is no
// caller to raise an error to.
int parse_positive(const char* text) {
  if (text == nullptr) {
    return 0;
  }
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text, &end, 10);
  if (end == text || errno == ERANGE) {
    return 0;
  }
  while (*end == ' ' || *end == '\t') {
    ++end;
  }
  if (*end != '\0' || v <= 0 || v > 1 << 16) {
    return 0;
  }
  return static_cast<int>(v);
}

} // namespace

int choose_thread_count(int perf_cores, int eff_cores, int hw_threads, const char* env) {
  if (const int n = parse_positive(env)) {
    return n;
  }
  const int hw = hw_threads > 0 ? hw_threads : 1;
  if (perf_cores > 0 && eff_cores > 0) {
    // Both kinds: the performance cores only (docs/performance.md). Never
    // more than the OS says it runs at once.
    return perf_cores < hw ? perf_cores : hw;
  }
  return hw;
}

#if !defined(__APPLE__)
CoreKinds core_kinds() {
  return {};
}

int fill_qos() {
  return 0;
}

void adopt_fill_qos(int) {}
#endif

} // namespace mfi::cpu
