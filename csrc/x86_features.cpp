#include "x86_features.h"

// GCC and Clang (the compilers CMakeLists.txt's x86 flags are written for)
// provide <cpuid.h> and inline assembly; elsewhere nothing is read and only
// the scalar kernel is chosen.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MFI_READ_CPUID 1
#include <cpuid.h>
#endif

namespace mfi::x86 {

namespace {

constexpr uint32_t kFma = 1u << 12;      // CPUID.1:ECX
constexpr uint32_t kOsxsave = 1u << 27;  // CPUID.1:ECX: XGETBV is enabled
constexpr uint32_t kAvx = 1u << 28;      // CPUID.1:ECX
constexpr uint32_t kAvx2 = 1u << 5;      // CPUID.(7,0):EBX
constexpr uint32_t kAvx512F = 1u << 16;
constexpr uint32_t kAvx512DQ = 1u << 17;
constexpr uint32_t kAvx512BW = 1u << 30;
constexpr uint32_t kAvx512VL = 1u << 31;

// XCR0 state components: 1 SSE (XMM), 2 AVX (upper YMM), 5 opmask k0-k7,
// 6 ZMM_Hi256 (upper halves of ZMM0-15), 7 Hi16_ZMM (ZMM16-31).
constexpr uint64_t kXcr0Ymm = (1u << 1) | (1u << 2);
constexpr uint64_t kXcr0Zmm = kXcr0Ymm | (1u << 5) | (1u << 6) | (1u << 7);

bool all(uint64_t have, uint64_t want) {
  return (have & want) == want;
}

} // namespace

bool avx2_usable(const CpuidBits& c) {
  return c.max_leaf >= 7 && all(c.leaf1_ecx, kFma | kOsxsave | kAvx) &&
      all(c.leaf7_ebx, kAvx2) && all(c.xcr0, kXcr0Ymm);
}

bool avx512_usable(const CpuidBits& c) {
  return avx2_usable(c) &&
      all(c.leaf7_ebx, kAvx512F | kAvx512DQ | kAvx512BW | kAvx512VL) &&
      all(c.xcr0, kXcr0Zmm);
}

CpuidBits read_cpuid() {
  CpuidBits c;
#if defined(MFI_READ_CPUID)
  unsigned a, b, cx, d;
  if (!__get_cpuid(0, &a, &b, &cx, &d)) {
    return c;
  }
  c.max_leaf = a;
  __cpuid(1, a, b, cx, d);
  c.leaf1_ecx = cx;
  if (c.max_leaf >= 7) {
    __cpuid_count(7, 0, a, b, cx, d);
    c.leaf7_ebx = b;
  }
  if (c.leaf1_ecx & kOsxsave) {
    // XGETBV with ECX = 0 reads XCR0. Inline assembly rather than _xgetbv,
    // which needs -mxsave on this file (and so on a CPU that has it).
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    c.xcr0 = (static_cast<uint64_t>(hi) << 32) | lo;
  }
#endif
  return c;
}

} // namespace mfi::x86
