// Stub of Apple's <CoreGraphics/CGGeometry.h>: only what metal-cpp's headers name, for
// tests/test_macos_headers.py (syntax checks on Linux). Not an SDK.
#pragma once
typedef double CGFloat;
struct CGSize { CGFloat width, height; };
struct CGPoint { CGFloat x, y; };
struct CGRect { CGPoint origin; CGSize size; };
