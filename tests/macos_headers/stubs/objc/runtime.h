// Stub of Apple's <objc/runtime.h>: only the declarations metal-cpp's
// headers name, for tests/test_macos_headers.py (syntax checks on Linux).
#pragma once
#include <stddef.h>
#include <stdint.h>
typedef struct objc_class* Class;
struct objc_object {
  Class isa;
};
typedef struct objc_object* id;
typedef struct objc_selector* SEL;
typedef signed char BOOL;
#define YES ((BOOL)1)
#define NO ((BOOL)0)
#ifndef nil
#define nil nullptr
#endif
extern "C" {
SEL sel_registerName(const char* str);
Class objc_lookUpClass(const char* name);
id objc_getProtocol(const char* name);
}
