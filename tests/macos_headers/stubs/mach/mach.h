// Stub of Apple's <mach/mach.h>: only what metal-cpp's headers name, for
// tests/test_macos_headers.py (syntax checks on Linux). Not an SDK.
#pragma once
#include <stdint.h>
typedef int kern_return_t;
typedef uint32_t mach_port_t;
typedef mach_port_t task_id_token_t;
