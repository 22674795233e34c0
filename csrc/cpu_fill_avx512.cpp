// The avx512 build of the CPU kernel (AVX-512 F+VL+BW+DQ, 512-bit vectors);
// CMakeLists.txt sets its flags and cpu_dispatch.cpp picks it only when the
// CPU and the OS allow it (x86_features.cpp). The one difference from the
// other builds: a tile's Philox words come from philox_avx512.h, which GCC
// cannot derive from the portable mulhi() (see there); the transform, the
// conversions and the stores are the shared, auto-vectorized code.
#include <algorithm>
#include <type_traits>

#include "cpu_fill.h"
#include "fused_init_math.h"
#include "philox_avx512.h"

#define MFI_PHILOX_BLOCKS ::mfi::x16::philox_blocks

namespace mfi::cpu::avx512 {
#include "cpu_fill_impl.h"
} // namespace mfi::cpu::avx512
