// Stub of Apple's <pthread/qos.h> (MacOSX.sdk/usr/include/pthread/qos.h):
// only what csrc/cpu_threads_apple.cpp names, declared as the SDK declares
// it, for tests/test_macos_headers.py. Not an SDK.
#pragma once
#include <sys/qos.h>

extern "C" {
int pthread_set_qos_class_self_np(qos_class_t __qos_class, int __relative_priority);
}
