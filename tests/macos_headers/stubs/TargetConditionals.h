// Stub of Apple's <TargetConditionals.h>: only what metal-cpp's headers name, for
// tests/test_macos_headers.py (syntax checks on Linux). Not an SDK.
#pragma once
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
#define TARGET_OS_IOS 0
#define TARGET_OS_TV 0
#define TARGET_OS_VISION 0
#define TARGET_OS_SIMULATOR 0
