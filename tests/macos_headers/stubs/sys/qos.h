// Stub of Apple's <sys/qos.h> (MacOSX.sdk/usr/include/sys/qos.h): only what
// csrc/cpu_threads_apple.cpp names, declared as the SDK declares it, for
// tests/test_macos_headers.py (syntax checks on Linux). Not an SDK.
#pragma once
// The SDK's __QOS_ENUM: in C++ (clang's strong-enum extension) a typed
// enum, so an int does not convert to qos_class_t without a cast.
typedef enum : unsigned int {
  QOS_CLASS_USER_INTERACTIVE = 0x21,
  QOS_CLASS_USER_INITIATED = 0x19,
  QOS_CLASS_DEFAULT = 0x15,
  QOS_CLASS_UTILITY = 0x11,
  QOS_CLASS_BACKGROUND = 0x09,
  QOS_CLASS_UNSPECIFIED = 0x00,
} qos_class_t;

extern "C" {
qos_class_t qos_class_self(void);
qos_class_t qos_class_main(void);
}
