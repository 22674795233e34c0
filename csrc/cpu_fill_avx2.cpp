// The avx2 build of the CPU kernel; CMakeLists.txt sets its flags.
#include <algorithm>

#include "cpu_fill.h"
#include "fused_init_math.h"

namespace mfi::cpu::avx2 {
#include "cpu_fill_impl.h"
} // namespace mfi::cpu::avx2
