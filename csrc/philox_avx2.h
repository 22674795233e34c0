// Philox4x32-10 on 8 blocks at once with AVX2 intrinsics, for the avx2
// build's tile loop (cpu_fill_impl.h); the 256-bit twin of
// philox_avx512.h, which explains the why. Integer operations only, so the
// words are exactly those of mfi::philox4x32_10 (fused_init_math.h);
// tests/test_cpu_paths.py compares every output with the scalar build's.
//
// GCC does use vpmuludq here, but repacks the 64-bit products with shuffles
// and cross-lane permutes (vpshufd, vperm2i128, vpermq: thousands of them in
// the object code); two blends per product do it. The Philox stage takes
// 0.63 instead of 1.38 ns per element on an AMD EPYC (Zen 4)
// (benchmarks/results/profile.md).
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "fused_init_math.h"

namespace mfi::x8 {

// High and low 32 bits of a * m, lane by lane.
inline __attribute__((always_inline)) void mul_hi_lo(__m256i a, __m256i m, __m256i& hi,
                                                     __m256i& lo) {
  const __m256i even = _mm256_mul_epu32(a, m);                         // lanes 0, 2, ...
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);  // lanes 1, 3, ...
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

// Blocks with counters (lo0 + j, hi, q_lo, q_hi), j = 0 .. n-1, into
// w0[j] .. w3[j]; n is rounded up to a multiple of 8 (the arrays must have
// room and be 32-byte aligned; the extra lanes are garbage).
inline void philox_blocks(uint32_t lo0, uint32_t hi, uint32_t q_lo, uint32_t q_hi,
                          uint32_t k0, uint32_t k1, uint32_t n, uint32_t* w0,
                          uint32_t* w1, uint32_t* w2, uint32_t* w3) {
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(kPhiloxM0));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(kPhiloxM1));
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (uint32_t j = 0; j < n; j += 8) {
    __m256i x0 = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(lo0 + j)), iota);
    __m256i x1 = _mm256_set1_epi32(static_cast<int>(hi));
    __m256i x2 = _mm256_set1_epi32(static_cast<int>(q_lo));
    __m256i x3 = _mm256_set1_epi32(static_cast<int>(q_hi));
    uint32_t a = k0, b = k1;
    for (int round = 0; round < 10; ++round) {
      __m256i hi0, lo0_, hi1, lo1;
      mul_hi_lo(x0, m0, hi0, lo0_);
      mul_hi_lo(x2, m1, hi1, lo1);
      // philox_round: hi1 ^ x1 ^ k0, lo1, hi0 ^ x3 ^ k1, lo0.
      x0 = _mm256_xor_si256(_mm256_xor_si256(hi1, x1), _mm256_set1_epi32(static_cast<int>(a)));
      x2 = _mm256_xor_si256(_mm256_xor_si256(hi0, x3), _mm256_set1_epi32(static_cast<int>(b)));
      x1 = lo1;
      x3 = lo0_;
      a += kPhiloxW0;
      b += kPhiloxW1;
    }
    _mm256_store_si256(reinterpret_cast<__m256i*>(w0 + j), x0);
    _mm256_store_si256(reinterpret_cast<__m256i*>(w1 + j), x1);
    _mm256_store_si256(reinterpret_cast<__m256i*>(w2 + j), x2);
    _mm256_store_si256(reinterpret_cast<__m256i*>(w3 + j), x3);
  }
}

} // namespace mfi::x8
