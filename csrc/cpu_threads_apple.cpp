// macOS: core kinds from sysctl, and the fill's quality-of-service class.
// Only C headers of the macOS SDK here, so that tests/test_macos_headers.py
// can compile this file for arm64-apple-macos14 against stubs of exactly
// these declarations (tests/macos_headers/stubs/{sys,pthread}).
#include "cpu_threads.h"

#include <pthread/qos.h>
#include <stddef.h>
#include <sys/qos.h>
#include <sys/sysctl.h>

namespace mfi::cpu {

namespace {

// An int-valued sysctl, or 0 when this macOS lacks it: hw.perflevel* exist
// from macOS 12; an Intel Mac reports one level only.
int sysctl_int(const char* name) {
  int value = 0;
  size_t size = sizeof(value);
  if (sysctlbyname(name, &value, &size, nullptr, 0) != 0 || size != sizeof(value)) {
    return 0;
  }
  return value;
}

// The class most recently adopted by this thread, so that a worker makes
// the system call only when a fill asks for a different one.
thread_local qos_class_t t_adopted = QOS_CLASS_UNSPECIFIED;

} // namespace

CoreKinds core_kinds() {
  CoreKinds k;
  if (sysctl_int("hw.nperflevels") >= 2) {
    k.perf = sysctl_int("hw.perflevel0.physicalcpu");  // level 0: fastest
    k.eff = sysctl_int("hw.perflevel1.physicalcpu");
  }
  return k;
}

int fill_qos() {
  const qos_class_t mine = qos_class_self();
  return static_cast<int>(mine == QOS_CLASS_UNSPECIFIED ? QOS_CLASS_USER_INITIATED : mine);
}

void adopt_fill_qos(int qos) {
  const qos_class_t wanted = static_cast<qos_class_t>(qos);
  if (wanted == t_adopted) {
    return;
  }
  // Fails only for a class the caller could not hold itself; the worker
  // then keeps the class it had, which changes speed, never results.
  if (pthread_set_qos_class_self_np(wanted, 0) == 0) {
    t_adopted = wanted;
  }
}

} // namespace mfi::cpu
