// Which x86-64 kernel builds the CPU *and* the operating system allow.
//
// CPUID says what the CPU can execute; XCR0 (read with XGETBV) says which
// register state the OS saves on a context switch. A kernel that uses YMM or
// ZMM registers the OS does not save would have them corrupted by the next
// interrupt, so both must agree. __builtin_cpu_supports does this check in
// current GCC and Clang, but not in every version, and not visibly: it is
// written out here, and the decision is a pure function of the raw
// registers so that tests can feed it the cases this machine does not have.
#pragma once

#include <cstdint>

namespace mfi::x86 {

// The raw registers the decision depends on.
struct CpuidBits {
  uint32_t leaf1_ecx = 0;   // CPUID.1:ECX (FMA bit 12, OSXSAVE 27, AVX 28)
  uint32_t leaf7_ebx = 0;   // CPUID.(7,0):EBX (AVX2 5, AVX512F 16, DQ 17, BW 30, VL 31)
  uint64_t xcr0 = 0;        // XGETBV(0); 0 when OSXSAVE is clear
  uint32_t max_leaf = 0;    // CPUID.0:EAX
};

// AVX2 + FMA, with XMM and YMM state enabled by the OS (XCR0 bits 1, 2).
bool avx2_usable(const CpuidBits& c);
// AVX-512 F, VL, BW and DQ (and AVX2 + FMA), with XMM, YMM, opmask, and
// both halves of the ZMM state enabled (XCR0 bits 1, 2, 5, 6, 7).
bool avx512_usable(const CpuidBits& c);

// This machine's registers (all zero on a non-x86 build).
CpuidBits read_cpuid();

} // namespace mfi::x86
