// The neon build of the CPU kernel; CMakeLists.txt sets its flags.
#include <algorithm>
#include <type_traits>

#include "cpu_fill.h"
#include "fused_init_math.h"

namespace mfi::cpu::neon {
#include "cpu_fill_impl.h"
} // namespace mfi::cpu::neon
