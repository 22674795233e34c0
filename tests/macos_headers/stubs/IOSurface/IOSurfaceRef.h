// Stub of Apple's <IOSurface/IOSurfaceRef.h>: only what metal-cpp's headers name, for
// tests/test_macos_headers.py (syntax checks on Linux). Not an SDK.
#pragma once
typedef struct __IOSurface* IOSurfaceRef;
