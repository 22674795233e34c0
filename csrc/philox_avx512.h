// Philox4x32-10 on 16 blocks at once with AVX-512F intrinsics, for the
// avx512 build's tile loop (cpu_fill_impl.h). Integer operations only, so
// the words are exactly those of mfi::philox4x32_10 (fused_init_math.h);
// tests/test_cpu_paths.py compares every output with the scalar build's.
//
// Why not leave it to the compiler like every other stage: GCC vectorizes
// the 32x32->64-bit products of mulhi() by widening to 64-bit lanes and
// vpmullq (AVX512DQ; three uops on Intel), 60 multiplies per 16 blocks and
// round, plus the repacking. vpmuludq multiplies the even 32-bit lanes into
// 64-bit products directly: two of them (even lanes, odd lanes shifted
// down) give a word's high and low halves for 16 lanes. The Philox stage
// takes 0.44 instead of 0.80 ns per element on an AMD EPYC (Zen 4)
// (benchmarks/results/profile.md).
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "fused_init_math.h"

namespace mfi::x16 {

// High and low 32 bits of a * m, lane by lane.
inline __attribute__((always_inline)) void mul_hi_lo(__m512i a, __m512i m, __m512i& hi,
                                                     __m512i& lo) {
  const __m512i even = _mm512_mul_epu32(a, m);                         // lanes 0, 2, ...
  const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);  // lanes 1, 3, ...
  hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
  lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
}

// Blocks with counters (lo0 + j, hi, q_lo, q_hi), j = 0 .. n-1, into
// w0[j] .. w3[j]; n is rounded up to a multiple of 16 (the arrays must have
// room; the extra lanes are garbage).
inline void philox_blocks(uint32_t lo0, uint32_t hi, uint32_t q_lo, uint32_t q_hi,
                          uint32_t k0, uint32_t k1, uint32_t n, uint32_t* w0,
                          uint32_t* w1, uint32_t* w2, uint32_t* w3) {
  const __m512i m0 = _mm512_set1_epi32(static_cast<int>(kPhiloxM0));
  const __m512i m1 = _mm512_set1_epi32(static_cast<int>(kPhiloxM1));
  const __m512i iota =
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (uint32_t j = 0; j < n; j += 16) {
    __m512i x0 = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(lo0 + j)), iota);
    __m512i x1 = _mm512_set1_epi32(static_cast<int>(hi));
    __m512i x2 = _mm512_set1_epi32(static_cast<int>(q_lo));
    __m512i x3 = _mm512_set1_epi32(static_cast<int>(q_hi));
    uint32_t a = k0, b = k1;
    for (int round = 0; round < 10; ++round) {
      __m512i hi0, lo0_, hi1, lo1;
      mul_hi_lo(x0, m0, hi0, lo0_);
      mul_hi_lo(x2, m1, hi1, lo1);
      // 0x96: three-way XOR (philox_round: hi1 ^ x1 ^ k0, hi0 ^ x3 ^ k1).
      x0 = _mm512_ternarylogic_epi32(hi1, x1, _mm512_set1_epi32(static_cast<int>(a)), 0x96);
      x2 = _mm512_ternarylogic_epi32(hi0, x3, _mm512_set1_epi32(static_cast<int>(b)), 0x96);
      x1 = lo1;
      x3 = lo0_;
      a += kPhiloxW0;
      b += kPhiloxW1;
    }
    _mm512_store_si512(w0 + j, x0);
    _mm512_store_si512(w1 + j, x1);
    _mm512_store_si512(w2 + j, x2);
    _mm512_store_si512(w3 + j, x3);
  }
}

} // namespace mfi::x16
