// Stub of Apple's <sys/sysctl.h> (MacOSX.sdk/usr/include/sys/sysctl.h):
// only what csrc/cpu_threads_apple.cpp names, declared as the SDK declares
// it, for tests/test_macos_headers.py. Not an SDK.
#pragma once
#include <stddef.h>

extern "C" {
int sysctlbyname(const char*, void*, size_t*, void*, size_t);
}
