// The avx2 build of the CPU kernel; CMakeLists.txt sets its flags. As in
// the avx512 build, a tile's Philox words come from intrinsics
// (philox_avx2.h); the transform, conversions and stores are the shared,
// auto-vectorized code.
#include <algorithm>
#include <type_traits>

#include "cpu_fill.h"
#include "fused_init_math.h"
#include "philox_avx2.h"

#define MFI_PHILOX_BLOCKS ::mfi::x8::philox_blocks

namespace mfi::cpu::avx2 {
#include "cpu_fill_impl.h"
} // namespace mfi::cpu::avx2
