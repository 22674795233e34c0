// Stub of Apple's <CoreFoundation/CoreFoundation.h>: only what metal-cpp's headers name, for
// tests/test_macos_headers.py (syntax checks on Linux). Not an SDK.
#pragma once
#include <math.h>
#include <stdint.h>
typedef double CFTimeInterval;
typedef const void* CFTypeRef;
typedef const struct __CFString* CFStringRef;
