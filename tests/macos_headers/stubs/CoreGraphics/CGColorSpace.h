// Stub of Apple's <CoreGraphics/CGColorSpace.h>: only what metal-cpp's headers name, for
// tests/test_macos_headers.py (syntax checks on Linux). Not an SDK.
#pragma once
typedef struct CGColorSpace* CGColorSpaceRef;
