// The avx512 build of the CPU kernel (AVX-512 F+VL+BW+DQ, 512-bit vectors);
// CMakeLists.txt sets its flags and cpu_dispatch.cpp picks it only when the
// CPU and the OS allow it (x86_features.cpp).
#include <algorithm>

#include "cpu_fill.h"
#include "fused_init_math.h"

namespace mfi::cpu::avx512 {
#include "cpu_fill_impl.h"
} // namespace mfi::cpu::avx512
