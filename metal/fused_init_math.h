// The per-element math of mlx-fused-init (docs/spec.md section 3), in one place.
//
// This header is compiled four ways and must give the same bits in each:
//   * by the Metal compiler, inlined into the kernel source generated from
//     fused_init.metal (cmake/embed_metal_source.py): offline into the
//     metallib, or at run time by MLX when there is none;
//   * by the host C++ compiler for the CPU path (csrc/cpu_fill_impl.h), once
//     per instruction set, relying on auto-vectorization;
//   * by the host C++ compiler through tests/metal_shim/metal_shim.h, which
//     defines __METAL_VERSION__ and so takes the Metal branch below;
//   * by NVRTC, inlined into the text handed to mx.fast.cuda_kernel
//     (metal/fused_init_kernel.h), and by the host compiler through
//     tests/cuda_shim, which takes the same CUDA branch.
//
// Rules that keep the bits identical everywhere (docs/stream.md, "Why the bits are the same everywhere"):
//   * only integer ops, + - *, explicit fma and sqrt (no libm or metal::
//     transcendental, no division: Metal's `/` is not correctly rounded);
//   * contraction-proof by construction: every product whose result feeds
//     an addition or subtraction is an explicit fma(), so the bits are the
//     same whether or not a compiler contracts a*b + c (Metal may, by
//     default, even with fast math off; a library compiled at run time gets
//     no -ffp-contract flag). Every other product feeds only products,
//     comparisons, bit operations or a store. tests/test_contraction.py
//     builds this header with -ffp-contract=fast and FMA enabled and
//     requires the same bits. The builds still disable contraction
//     (-ffp-contract=off on the host, the pragma below in Metal) as a second
//     guard;
//   * sqrt is followed by a Tuckerman rounding check, so even a device whose
//     sqrt is only faithful returns the correctly rounded result.
// Include guards, not #pragma once: this text is also inlined into one
// generated source (cmake/embed_metal_source.py), after which an include
// of the file itself must be skipped.
#ifndef MFI_FUSED_INIT_MATH_H
#define MFI_FUSED_INIT_MATH_H

#if defined(__METAL_VERSION__)
#include <metal_stdlib>
// Second guard only (see above): the math is written not to need it. The
// math pragmas are Metal 3.2 language (macOS 15): older compilers are not
// shown a pragma they may not know; the offline build also passes
// -ffp-contract=off.
#if __METAL_VERSION__ >= 320
#pragma METAL fp contract(off)
#endif
#define MFI_INLINE inline
#define MFI_CONSTANT constant
namespace mfi {
inline float fma_(float a, float b, float c) { return metal::fma(a, b, c); }
inline float sqrt_(float x) { return metal::sqrt(x); }
inline float as_float(uint32_t x) { return as_type<float>(x); }
inline uint32_t as_uint(float x) { return as_type<uint32_t>(x); }
inline uint32_t mulhi(uint32_t a, uint32_t b) { return metal::mulhi(a, b); }
} // namespace mfi
#elif defined(__CUDACC__) || defined(MFI_CUDA_SHIM)
// CUDA, compiled at run time by NVRTC through mx.fast.cuda_kernel (MLX's
// header before this one supplies the fixed-width integer types), or by
// the host compiler through tests/cuda_shim. Only the correctly rounded
// intrinsics, nothing from fast math; NVRTC contracts a*b + c by default
// (--fmad=true), which the rules above make harmless.
#define MFI_INLINE __device__ __forceinline__
#define MFI_CONSTANT constexpr
namespace mfi {
MFI_INLINE float fma_(float a, float b, float c) { return __fmaf_rn(a, b, c); }
MFI_INLINE float sqrt_(float x) { return __fsqrt_rn(x); }
MFI_INLINE float as_float(uint32_t x) { return __uint_as_float(x); }
MFI_INLINE uint32_t as_uint(float x) { return __float_as_uint(x); }
MFI_INLINE uint32_t mulhi(uint32_t a, uint32_t b) { return __umulhi(a, b); }
} // namespace mfi
#else
#include <cstdint>
#define MFI_INLINE inline __attribute__((always_inline))
#define MFI_CONSTANT constexpr
namespace mfi {
// The builtins, not std::, so that -fno-math-errno builds vectorize them.
MFI_INLINE float fma_(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
MFI_INLINE float sqrt_(float x) { return __builtin_sqrtf(x); }
MFI_INLINE float as_float(uint32_t x) { return __builtin_bit_cast(float, x); }
MFI_INLINE uint32_t as_uint(float x) { return __builtin_bit_cast(uint32_t, x); }
MFI_INLINE uint32_t mulhi(uint32_t a, uint32_t b) {
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
}
} // namespace mfi
#endif

namespace mfi {

// ---------------------------------------------------------------- Philox
// Philox4x32-10 exactly as Random123 defines it.
struct Block {
  uint32_t x0, x1, x2, x3;
};

MFI_CONSTANT uint32_t kPhiloxM0 = 0xD2511F53u;
MFI_CONSTANT uint32_t kPhiloxM1 = 0xCD9E8D57u;
MFI_CONSTANT uint32_t kPhiloxW0 = 0x9E3779B9u;
MFI_CONSTANT uint32_t kPhiloxW1 = 0xBB67AE85u;

MFI_INLINE Block philox_round(Block c, uint32_t k0, uint32_t k1) {
  uint32_t hi0 = mulhi(kPhiloxM0, c.x0);
  uint32_t lo0 = kPhiloxM0 * c.x0;
  uint32_t hi1 = mulhi(kPhiloxM1, c.x2);
  uint32_t lo1 = kPhiloxM1 * c.x2;
  Block r;
  r.x0 = hi1 ^ c.x1 ^ k0;
  r.x1 = lo1;
  r.x2 = hi0 ^ c.x3 ^ k1;
  r.x3 = lo0;
  return r;
}

MFI_INLINE Block philox4x32_10(Block c, uint32_t k0, uint32_t k1) {
  // Written out rather than looped: some compilers will not unroll a loop
  // whose body they also have to vectorize.
  c = philox_round(c, k0, k1); k0 += kPhiloxW0; k1 += kPhiloxW1;
  c = philox_round(c, k0, k1); k0 += kPhiloxW0; k1 += kPhiloxW1;
  c = philox_round(c, k0, k1); k0 += kPhiloxW0; k1 += kPhiloxW1;
  c = philox_round(c, k0, k1); k0 += kPhiloxW0; k1 += kPhiloxW1;
  c = philox_round(c, k0, k1); k0 += kPhiloxW0; k1 += kPhiloxW1;
  c = philox_round(c, k0, k1); k0 += kPhiloxW0; k1 += kPhiloxW1;
  c = philox_round(c, k0, k1); k0 += kPhiloxW0; k1 += kPhiloxW1;
  c = philox_round(c, k0, k1); k0 += kPhiloxW0; k1 += kPhiloxW1;
  c = philox_round(c, k0, k1); k0 += kPhiloxW0; k1 += kPhiloxW1;
  c = philox_round(c, k0, k1);
  return c;
}

// The counter of the block holding flat element index i (docs/spec.md section 3, step 2):
// (lo32(i >> 2), hi32(i >> 2), lo32(q), hi32(q)). The block index is passed
// as two 32-bit halves so that this works on GPUs without cheap 64-bit ops.
MFI_INLINE Block stream_block(uint32_t b_lo, uint32_t b_hi, uint32_t q_lo,
                              uint32_t q_hi, uint32_t k0, uint32_t k1) {
  Block c;
  c.x0 = b_lo;
  c.x1 = b_hi;
  c.x2 = q_lo;
  c.x3 = q_hi;
  return philox4x32_10(c, k0, k1);
}

// ------------------------------------------------------- exact constants
// Powers of two written as exact decimals: every compiler converts them
// exactly, unlike hex-float literals which Metal does not accept everywhere.
MFI_CONSTANT float kTwoM24 = 5.9604644775390625e-08f;          // 2^-24
MFI_CONSTANT float kTwoM31 = 4.656612873077392578125e-10f;     // 2^-31
MFI_CONSTANT float kTwoM32 = 2.3283064365386962890625e-10f;    // 2^-32
MFI_CONSTANT float kTwoM33 = 1.16415321826934814453125e-10f;   // 2^-33
MFI_CONSTANT float kMinusTwoLn2 = -1.38629436f;                // RN(-2 ln 2)

// P(f) of minus_two_log (below) less its constant 1, divided by f: log1p(f)
// is f * (1 + f * log1p_tail(f)) for f in [sqrt(1/2) - 1, sqrt(2) - 1].
// Horner with one fma per step; shared by minus_two_log and
// minus_two_log1m, so one coefficient table serves both.
MFI_INLINE float log1p_tail(float f) {
  float p = -0.07638592f;
  p = fma_(p, f, 0.1291417f);
  p = fma_(p, f, -0.13240843f);
  p = fma_(p, f, 0.14180079f);
  p = fma_(p, f, -0.16609126f);
  p = fma_(p, f, 0.20002072f);
  p = fma_(p, f, -0.25001585f);
  p = fma_(p, f, 0.33333325f);
  return fma_(p, f, -0.49999988f);
}

// ------------------------------------------------------------ -2 ln(u)
// u in [2^-33, 1] (always a normal float). u = 2^e * m with m in
// [sqrt(1/2), sqrt(2)); ln m = f * P(f), f = m - 1 (exact), where P is a
// degree-9 least-squares fit of log1p(f)/f on that interval (relative error
// of the float evaluation about 6e-8, i.e. one float ulp). Factoring out f
// keeps the relative accuracy near u = 1, where r = sqrt(-2 ln u) -> 0.
MFI_INLINE float minus_two_log(float u) {
  uint32_t ix = as_uint(u);
  int e = static_cast<int>(ix >> 23) - 127;
  uint32_t mb = (ix & 0x007FFFFFu) | 0x3F800000u;  // m in [1, 2)
  bool big = mb > 0x3FB504F3u;                      // m > sqrt(2)
  mb = big ? mb - 0x00800000u : mb;                 // m / 2, exact
  e = big ? e + 1 : e;
  float f = as_float(mb) - 1.0f;                    // exact (Sterbenz)
  float p = fma_(log1p_tail(f), f, 1.0f);
  float minus_two_ln_m = (-2.0f * f) * p;  // -2 f is exact
  // fma(e, -2 ln2, ...) rather than e*ln2 + ...: one rounding, and the
  // result is +0 (not -0) at u = 1.
  return fma_(static_cast<float>(e), kMinusTwoLn2, minus_two_ln_m);
}

// -------------------------------------------------- correctly rounded sqrt
// s = sqrt(x) may be off by one ulp on some devices. Tuckerman's test, with
// exact signs from fma, picks RN(sqrt(x)) among s and its two neighbours.
MFI_INLINE float sqrt_rn(float x) {
  float s = sqrt_(x);
  uint32_t sb = as_uint(s);
  float up = as_float(sb + 1u);
  float dn = as_float(sb - 1u);  // NaN when s == 0: its test is then false
  bool go_up = fma_(s, up, -x) < 0.0f;
  bool go_dn = fma_(dn, s, -x) >= 0.0f;
  return go_up ? up : (go_dn ? dn : s);
}

// ---------------------------------------------------------- Box-Muller
struct Pair {
  float even;  // the cospi part (times r, for a Box-Muller pair)
  float odd;   // the sinpi part
};

// The radius of a Box-Muller pair from its first Philox word (docs/spec.md section 3,
// step 4): u = float(a) * 2^-32 + 2^-33 in (0, 1], r = sqrt(-2 ln u).
MFI_INLINE float radius(uint32_t a) {
  // float(a) * 2^-32 is exact, so the fma rounds once, like the spec's
  // multiply-then-add.
  float u = fma_(static_cast<float>(a), kTwoM32, kTwoM33);
  return sqrt_rn(minus_two_log(u));
}

// (cospi(t), sinpi(t)) for t = float(c) * 2^-31 in [0, 2], from the second
// Philox word (docs/spec.md section 3, steps 4-5); returned as Pair{cos, sin}.
MFI_INLINE Pair unit_circle(uint32_t c) {
  // t = n/2 + y with n = round(2t) in 0..4 taken from the integer c, and
  // |y| <= 1/4 (+ one ulp when float(c) rounds across a boundary). y is
  // exact: it is a multiple of ulp(t) smaller than 1/2.
  float t = static_cast<float>(c) * kTwoM31;
  uint32_t n = ((c >> 29) + 1u) >> 1;
  // t - n/2 as an fma: n/2 is exact, so this is the same single rounding
  // (of an exact result) whether or not a compiler would have fused it.
  float y = fma_(static_cast<float>(n), -0.5f, t);
  float y2 = y * y;
  // Least-squares fits of sinpi(y)/y and cospi(y) in y^2 on [0, 1/4];
  // absolute error below 6e-8 in float evaluation.
  float sp = 0.081026584f;
  sp = fma_(sp, y2, -0.59920543f);
  sp = fma_(sp, y2, 2.5501628f);
  sp = fma_(sp, y2, -5.1677127f);
  sp = fma_(sp, y2, 3.1415927f);
  float s = y * sp;
  float cp = -0.025453715f;
  cp = fma_(cp, y2, 0.23530644f);
  cp = fma_(cp, y2, -1.3352621f);
  cp = fma_(cp, y2, 4.058712f);
  cp = fma_(cp, y2, -4.934802f);
  float co = fma_(cp, y2, 1.0f);
  // Quadrant q = n mod 4: odd q swaps sin and cos; signs by bit flips.
  uint32_t q = n & 3u;
  bool swap = (q & 1u) != 0u;
  float sin_v = swap ? co : s;
  float cos_v = swap ? s : co;
  Pair out;
  out.even = as_float(as_uint(cos_v) ^ (((q + 1u) & 2u) << 30));
  out.odd = as_float(as_uint(sin_v) ^ ((q & 2u) << 30));
  return out;
}

// One Box-Muller pair from two Philox words: (r cospi(t), r sinpi(t)).
MFI_INLINE Pair box_muller(uint32_t a, uint32_t c) {
  float r = radius(a);
  Pair cs = unit_circle(c);
  Pair out;
  out.even = r * cs.even;
  out.odd = r * cs.odd;
  return out;
}

// ------------------------------------------------------------- uniform
// One lane per element: v = float(x >> 8) * 2^-24 in [0, 1), exact.
MFI_INLINE float uniform01(uint32_t x) {
  return static_cast<float>(x >> 8) * kTwoM24;
}

// ------------------------------------------------------------ transforms
// What the kernels compute from one block, by transform variant:
//   kNormal:        out_l = scale * z_l (one product: glorot_normal & co.
//                   are exactly RNE(sigma * z); no "+ 0", which would turn
//                   -0 into +0)
//   kShiftedNormal: out_l = fma(scale, z_l, shift), one rounding (docs/spec.md section 3,
//                   step 7)
//   kUniform:       out_l = floor_to_grid(min(fma(scale, v_l, shift), upper))
//                   (shift = low, scale = high - low, upper = the largest
//                   value of the output dtype below high: the half-open
//                   [low, high) that MLX documents survives the roundings;
//                   16-bit outputs rounded down to their grid)
// All in float32. Callers test `shift != 0` once, outside their loops
// (transform_variant), and instantiate one kernel per variant.
//   kTruncatedNormal (3): one lane per element, by inverse CDF; see
//                   truncated_normal_value below.
MFI_CONSTANT int kNormal = 0;
MFI_CONSTANT int kUniform = 1;

struct Quad {
  float v0, v1, v2, v3;
};

MFI_INLINE Quad normal_block(Block x, float scale) {
  Pair p0 = box_muller(x.x0, x.x1);
  Pair p1 = box_muller(x.x2, x.x3);
  Quad o;
  o.v0 = scale * p0.even;
  o.v1 = scale * p0.odd;
  o.v2 = scale * p1.even;
  o.v3 = scale * p1.odd;
  return o;
}

MFI_INLINE Quad shifted_normal_block(Block x, float scale, float shift) {
  Pair p0 = box_muller(x.x0, x.x1);
  Pair p1 = box_muller(x.x2, x.x3);
  Quad o;
  o.v0 = fma_(scale, p0.even, shift);
  o.v1 = fma_(scale, p0.odd, shift);
  o.v2 = fma_(scale, p1.even, shift);
  o.v3 = fma_(scale, p1.odd, shift);
  return o;
}

// The output grids: the values a kernel can store exactly (a kernel's
// output type decides its grid at compile time: out_grid in
// fused_init_kernel.h, Store<T>::grid in csrc/cpu_fill_impl.h).
MFI_CONSTANT uint32_t kGridFloat32 = 0u;
MFI_CONSTANT uint32_t kGridFloat16 = 1u;
MFI_CONSTANT uint32_t kGridBFloat16 = 2u;

// The largest value of the grid that is <= v (v finite, |v| <= 65504 for
// float16), as an exact float32: every later conversion to the output type
// is then exact, whatever its rounding. float32: v itself.
//   bfloat16: clear the 16 low bits of the magnitude, after adding 0xFFFF
//   to a negative one (a carry moves it one bfloat16 step away from zero);
//   float16: its step q = 2^(max(e, -14) - 10) for v in [2^e, 2^(e+1)); t =
//   v / q is exact and |t| < 2^11, so RN(t + 1.5 * 2^23) - 1.5 * 2^23 is
//   the integer nearest t (exact), less one where that lies above t; times
//   q, exact.
MFI_CONSTANT float kRoundMagic = 12582912.0f;  // 1.5 * 2^23

MFI_INLINE float floor_to_grid(float v, uint32_t grid) {
  uint32_t b = as_uint(v);
  uint32_t neg = 0u - (b >> 31);
  float bf = as_float((b + (neg & 0xFFFFu)) & 0xFFFF0000u);
  uint32_t e = (b >> 23) & 0xFFu;
  uint32_t qe = (e > 113u ? e : 113u) - 10u;    // biased exponent of q
  float q = as_float(qe << 23);
  float inv_q = as_float((254u - qe) << 23);   // 1 / q, exact
  float t = v * inv_q;                          // exact
  float r = fma_(v, inv_q, kRoundMagic) - kRoundMagic;
  r = r - as_float(as_uint(1.0f) & (0u - static_cast<uint32_t>(r > t)));
  float h = r * q;                              // exact
  uint32_t is_h = 0u - static_cast<uint32_t>(grid == kGridFloat16);
  uint32_t is_b = 0u - static_cast<uint32_t>(grid == kGridBFloat16);
  uint32_t o = (as_uint(h) & is_h) | (as_uint(bf) & is_b) | (b & ~(is_h | is_b));
  return as_float(o);
}

// min(fma(scale, v, shift), upper), then down to the output grid: each
// value of the output type below high is drawn with the probability of
// the reals in [value, next value) (docs/spec.md section 3).
MFI_INLINE float uniform_value(uint32_t x, float scale, float shift, float upper,
                               uint32_t grid) {
  float v = fma_(scale, uniform01(x), shift);
  v = v < upper ? v : upper;
  return floor_to_grid(v, grid);
}

MFI_INLINE Quad uniform_block(Block x, float scale, float shift, float upper, uint32_t grid) {
  Quad o;
  o.v0 = uniform_value(x.x0, scale, shift, upper, grid);
  o.v1 = uniform_value(x.x1, scale, shift, upper, grid);
  o.v2 = uniform_value(x.x2, scale, shift, upper, grid);
  o.v3 = uniform_value(x.x3, scale, shift, upper, grid);
  return o;
}

// The transforms by number, for kernels templated on it.
MFI_CONSTANT int kShiftedNormal = 2;
MFI_CONSTANT int kTruncatedNormal = 3;  // also a kind: truncated_normal_block
// Also a kind: the perturbation w' = fma(scale, z, w * shift) of an input
// w (perturb_value). The block gives the plain z (normal_block with scale
// 1, exact: the normal(0, 1) stream); the kernel applies perturb_value to
// each lane with the matching element of w.
MFI_CONSTANT int kPerturb = 4;

// The variant a kernel should be instantiated for.
MFI_INLINE int transform_variant(int kind, float shift) {
  return kind == kUniform ? kUniform
      : kind == kTruncatedNormal ? kTruncatedNormal
      : kind == kPerturb ? kPerturb
                                 : (shift != 0.0f ? kShiftedNormal : kNormal);
}

MFI_INLINE Quad transform_block(int variant, Block x, float scale, float shift,
                                float upper, uint32_t grid) {
  return variant == kUniform   ? uniform_block(x, scale, shift, upper, grid)
      : variant == kShiftedNormal ? shifted_normal_block(x, scale, shift)
      : variant == kPerturb ? normal_block(x, 1.0f)
                                : normal_block(x, scale);
}

// ---------------------------------------------------------- perturbation
// One element of perturb (docs/spec.md section 3, "Perturbation"): w is the
// input element converted to float32 (exact), z the normal(0, 1) stream's
// element, w_scale the weight's factor (1 for a plain perturbation, which
// makes the product exact). One rounding in the fma; the product w * w_scale
// feeds only the fma's addend, which no compiler contracts.
MFI_INLINE float perturb_value(float z, float w, float scale, float w_scale) {
  return fma_(scale, z, w * w_scale);
}

MFI_INLINE float quad_lane(Quad q, uint32_t lane) {
  return lane == 0u ? q.v0 : (lane == 1u ? q.v1 : (lane == 2u ? q.v2 : q.v3));
}

// ---------------------------------------------------- truncated normal
// One Philox word per element (docs/spec.md section 3, truncated normal),
// by one of three mappings chosen per call on the host: the narrow mapping
// (truncated_narrow_value below) for intervals whose probability is under
// 1/8 of their nearer tail's, the tail mapping (truncated_tail_value) for
// the other intervals on one side of the mean, and for those that hold
// the mean the inverse CDF:
//   u = (float(x >> 9) + 1/2) * 2^-23 in (0, 1), exact, and 1 - u exact;
//   p = RN(u * width + p_lo), c = RN((1 - u) * width + c_hi)   (fma: one
//   rounding each), where p_lo = Phi(alpha), c_hi = Phi(-beta) and
//   width = Phi(beta) - Phi(alpha) are float32 per-call constants computed
//   on the host in float64 (csrc/fused_init.cpp): p is the element's lower
//   tail probability and c its upper one, each with full relative precision;
//   z = ndtri_lower(p) if p <= c, else -ndtri_lower(c);
//   out = max(min(RN(scale * z + shift), upper), lower)   (fma), lower and
//   upper the bounds rounded inward to the output dtype, so that rounding
//   to the dtype afterwards stays inside [a, b].

// x * Q(w) with x = 1 - 2t, w = -ln(4 t (1 - t)): Giles' form of erfinv
// ("Approximating the erfinv function", GPU Computing Gems, 2011), with
// sqrt(2) folded in, so that Phi^-1(t) = -x * Q(w). Q is a degree-10
// polynomial on three intervals, least-squares fits (relative error below
// 5e-8 in exact arithmetic) in
//   w - 3.125            for w in [0, 6.25)       (t > 0.00097)
//   sqrt(w) - 3.25       for w in [6.25, 16)      (t > 2.8e-8)
//   sqrt(w) - 6          for w in [16, 76.5]      (t >= Phi(-12) = 1.8e-33)
// The branch is taken by selecting coefficients, so vector code runs one
// Horner chain for every lane. The selections are bit masks: GCC will not
// if-convert (hence not vectorize) this many ?: chains.
struct TnBranch {
  uint32_t m0, m1, m2;  // all ones for the branch taken, else zero
};

MFI_INLINE TnBranch tn_branch(float w) {
  uint32_t b0 = 0u - static_cast<uint32_t>(w < 6.25f);
  uint32_t b1 = 0u - static_cast<uint32_t>(w < 16.0f);
  TnBranch m;
  m.m0 = b0;
  m.m1 = ~b0 & b1;
  m.m2 = ~b1;
  return m;
}

MFI_INLINE float tn_pick(TnBranch m, float a, float b, float c) {
  return as_float((as_uint(a) & m.m0) | (as_uint(b) & m.m1) | (as_uint(c) & m.m2));
}

// v if the mask is all ones, else u.
MFI_INLINE float tn_select(uint32_t mask, float v, float u) {
  return as_float((as_uint(v) & mask) | (as_uint(u) & ~mask));
}

// Phi^-1(t) = -(x * q) for t in [Phi(-12), 1/2 + 2^-24]: its two factors
// (ndtri_lower multiplies them; the tail mapping takes x q >= 0 by fma).
struct TnQuantile {
  float x;  // 1 - 2t
  float q;  // Q(w)
};

MFI_INLINE TnQuantile ndtri_lower_parts(float t) {
  float x = fma_(-2.0f, t, 1.0f);              // 1 - 2t, one rounding
  float v = 4.0f * fma_(-t, t, t);             // 4 (t - t^2), exact scaling
  float w = 0.5f * minus_two_log(v);           // -ln v >= 0
  float s = sqrt_rn(w);
  TnBranch br = tn_branch(w);
  float arg = tn_pick(br, w - 3.125f, s - 3.25f, s - 6.0f);
  float q = tn_pick(br, 9.30840793e-10f, -5.7371908e-05f, 1.71137915e-09f);
  q = fma_(q, arg, tn_pick(br, -6.50823173e-09f, 0.000115241404f, -1.440785e-08f));
  q = fma_(q, arg, tn_pick(br, -3.4889684e-08f, 2.78326661e-05f, 5.89317182e-08f));
  q = fma_(q, arg, tn_pick(br, 6.01801503e-07f, -0.000510998885f, -2.68825886e-07f));
  q = fma_(q, arg, tn_pick(br, -1.96347128e-06f, 0.00134984951f, 1.52582936e-06f));
  q = fma_(q, arg, tn_pick(br, -1.96379024e-05f, -0.00238558929f, -7.62974196e-06f));
  q = fma_(q, arg, tn_pick(br, 0.000264159258f, 0.00352323265f, 3.05894755e-05f));
  q = fma_(q, arg, tn_pick(br, -0.00104750972f, -0.00530519802f, -6.06578578e-05f));
  q = fma_(q, arg, tn_pick(br, -0.00853296742f, 0.00759562803f, -0.00066874153f));
  q = fma_(q, arg, tn_pick(br, 0.339634955f, 1.42165089f, 1.4277972f));
  q = fma_(q, arg, tn_pick(br, 2.33862066f, 4.36127281f, 8.2871685f));
  TnQuantile r;
  r.x = x;
  r.q = q;
  return r;
}

// Phi^-1(t) for t in [Phi(-12), 1/2 + 2^-24]: a value <= 0 (up to a rounding
// near t = 1/2). Relative error below 5e-7 (docs/spec.md section 3 states the bound on z).
MFI_INLINE float ndtri_lower(float t) {
  TnQuantile r = ndtri_lower_parts(t);
  return -(r.x * r.q);
}

// The mapping word of a truncated normal draw (Truncation::narrow; the
// field keeps its name): which of the three mappings a call uses.
MFI_CONSTANT uint32_t kTnInverseCdf = 0u;
MFI_CONSTANT uint32_t kTnNarrow = 0xFFFFFFFFu;
MFI_CONSTANT uint32_t kTnTailUpper = 1u;  // tail mapping, interval in [0, inf)
MFI_CONSTANT uint32_t kTnTailLower = 2u;  // tail mapping, interval in (-inf, 0]

// The per-call constants of a truncated normal draw (set on the host,
// csrc/init_spec.cpp). Three mappings of the word, chosen per call:
//   * inverse CDF (narrow == kTnInverseCdf), for intervals that hold the
//     mean: p_lo = Phi(alpha), c_hi = Phi(-beta), width = Phi(beta) -
//     Phi(alpha); scale and shift are std and mean;
//   * narrow (narrow == kTnNarrow), for intervals whose probability is
//     small next to its nearer tail's (where float32 p would be coarse):
//     a degree-5 polynomial in y, fitted on the host to this interval's
//     exact inverse CDF; coefficients e0..e5 in (width, scale, p_lo, c_hi,
//     c4, c5) and the anchor X0 (a float32 near the interval's centre) in
//     shift;
//   * tail (narrow == kTnTailUpper or kTnTailLower), for the other
//     intervals, on one side of the mean: the offset from the bound
//     nearer the mean, n = |that bound| in standard units, by one Newton
//     step (truncated_tail_value); p_lo = a32 = float32(n), c_hi = Qn =
//     float32(Phi(-n)), width = k = float32(interval mass / Phi(-n)), c4 =
//     K (the anchor's correction), c5 = the output anchor's remainder e_a,
//     shift = X_a, scale = +-std.
struct Truncation {
  float lower;  // smallest output value (a, rounded up to the dtype)
  float p_lo;   // Phi(alpha)            | narrow: e2 | tail: a32
  float c_hi;   // Phi(-beta)            | narrow: e3 | tail: Qn
  float width;  // Phi(beta) - Phi(alpha) | narrow: e0 | tail: k
  float c4;     // narrow: e4             | tail: K
  float c5;     // narrow: e5             | tail: e_a
  uint32_t narrow;  // the mapping word: kTnInverseCdf, kTnNarrow, kTnTailUpper/Lower
};

MFI_CONSTANT float kTwoM23 = 1.1920928955078125e-07f;  // 2^-23
MFI_CONSTANT float kOneMinusTwoM24 = 0.999999940395355224609375f;  // 1 - 2^-24

// Narrow mapping: y = ((x >> 8) + 1/2) 2^-23 - 1, exact, 2^24 equally
// likely values symmetric in (-1, 1); t = e0 + e1 y + ... + e5 y^5 by
// Horner's rule (fma), then X0 + t (one rounding: t is small next to X0
// unless X0 is 0 or the interval is wide next to its distance from 0).
MFI_INLINE float truncated_narrow_value(uint32_t word, float scale, float shift,
                                        Truncation tr) {
  float y = fma_(static_cast<float>(word >> 8), kTwoM23, -kOneMinusTwoM24);  // exact
  float q = fma_(tr.c5, y, tr.c4);
  q = fma_(q, y, tr.c_hi);
  q = fma_(q, y, tr.p_lo);
  q = fma_(q, y, scale);
  float t = fma_(q, y, tr.width);
  return t + shift;
}

// -2 ln 2 = kMinusTwoLn2Hi + kMinusTwoLn2Lo; the high part has 16
// significant bits, so e * kMinusTwoLn2Hi is exact for |e| <= 256.
MFI_CONSTANT float kMinusTwoLn2Hi = -1.38629150390625f;
MFI_CONSTANT float kMinusTwoLn2Lo = -2.85721353e-06f;

// -2 ln(1 - v k) for v, k in (0, 1] with v k <= 1 - 2^-24, to about an ulp
// of the result however small v k is (a log1p): the exact 1 - v k is
// y + y_lo, with y = RN(1 - v k) and y_lo recovered exactly; the logarithm
// is minus_two_log's (same polynomial), taken of 1 - x exactly (f = -x)
// where y lies in [sqrt(1/2), sqrt(2)) and of y elsewhere, plus the first-
// order term of what that argument misses, divided by y through a
// reciprocal good to 1.5% (the term is at most about 2^-24).
MFI_INLINE float minus_two_log1m(float v, float k) {
  float x = fma_(v, k, 0.0f);                    // RN(v k) (an fma: see the rules)
  float x_lo = fma_(v, k, -x);                   // v k - x, exact
  float y = fma_(-v, k, 1.0f);                   // RN(1 - v k)
  // (1 - v k) - y: 1 - y is exact for y >= 1/2, 1 - x for x >= 1/2, and the
  // difference of two nearly equal values is exact.
  uint32_t hi = 0u - static_cast<uint32_t>(y >= 0.5f);
  float d = tn_select(hi, (1.0f - y) - x, (1.0f - x) - y);
  float y_lo = d - x_lo;
  // y = 2^e m, m in [sqrt(1/2), sqrt(2)), f = m - 1 exact (minus_two_log).
  uint32_t iy = as_uint(y);
  int e = static_cast<int>(iy >> 23) - 127;
  uint32_t mb = (iy & 0x007FFFFFu) | 0x3F800000u;
  uint32_t big = 0u - static_cast<uint32_t>(mb > 0x3FB504F3u);
  mb = mb - (0x00800000u & big);
  e = e + static_cast<int>(big & 1u);
  // e == 0: ln(1 - x) with f = -x (exact), and the missing -x_lo.
  uint32_t near1 = 0u - static_cast<uint32_t>(e == 0);
  float f = tn_select(near1, -x, as_float(mb) - 1.0f);
  float miss = tn_select(near1, -x_lo, y_lo);
  float r = as_float(0x7EF311C3u - as_uint(y));  // 1/y within 12%
  r = r * fma_(-y, r, 2.0f);                       // one Newton step: 1.5%
  float p = log1p_tail(f);
  // ln(1 + f) + miss / y = f + (f (f p) + miss r): f enters exactly.
  float l = f + fma_(f, f * p, miss * r);
  float ef = static_cast<float>(e);
  return fma_(ef, kMinusTwoLn2Hi, fma_(ef, kMinusTwoLn2Lo, -2.0f * l));
}

// ln M(z), M = Phi(-z) / phi(z) the Mills ratio, on three pieces chosen by
// the anchor a32 (per call): P(t) = c1 t + ... + c10 t^10, t = z - c_j,
//   a32 < 1.6: c = 0, fitted on [-0.02, 3.65];
//   a32 < 4.1: c = 3.1, fitted on [1.55, 6.2];
//   otherwise: c = 8, fitted on [4, 12.1];
// each covering [a32, a32 + 2] for the a32 it serves. Fitted through the
// derivative, ln M'(z) = z - phi(z) / Phi(-z), least squares weighted by
// the Mills ratio (the slope's error over the hazard rate is the relative
// error it puts on delta: below 4e-8), coefficients rounded to float32 in
// turn. On each piece t is exact (Sterbenz, or c = 0). Only differences
// are used, so there is no constant term: tn_log_mills_slope gives
// (P(b) - P(a)) / (b - a) for a = a32 - c, b = z - c, by Horner's rule for
// P(a) and its divided difference side by side (exact algebra: P_i(b) -
// P_i(a) = (b - a) D_i, D_i = D_{i+1} b + P_{i+1}(a)).
MFI_INLINE float tn_log_mills_slope(float a, float b, TnBranch m) {
  float pa = tn_pick(m, -4.04834033e-08f, -5.64698011e-10f, 3.00057028e-11f);
  float dd = pa;
  pa = fma_(pa, a, tn_pick(m, 9.83230393e-07f, -3.6021347e-10f, -3.39622913e-10f));
  dd = fma_(dd, b, pa);
  pa = fma_(pa, a, tn_pick(m, -1.06506259e-05f, 1.13061013e-07f, 2.51566479e-09f));
  dd = fma_(dd, b, pa);
  pa = fma_(pa, a, tn_pick(m, 6.58338249e-05f, -1.53478231e-06f, -2.95367357e-08f));
  dd = fma_(dd, b, pa);
  pa = fma_(pa, a, tn_pick(m, -0.000225067808f, 1.37388188e-05f, 3.5854228e-07f));
  dd = fma_(dd, b, pa);
  pa = fma_(pa, a, tn_pick(m, 4.41305565e-05f, -0.000104668165f, -4.03359991e-06f));
  dd = fma_(dd, b, pa);
  pa = fma_(pa, a, tn_pick(m, 0.00478046294f, 0.0007343131f, 4.60364354e-05f));
  dd = fma_(dd, b, pa);
  pa = fma_(pa, a, tn_pick(m, -0.0363358073f, -0.00494055543f, -0.000548589334f));
  dd = fma_(dd, b, pa);
  pa = fma_(pa, a, tn_pick(m, 0.181690276f, 0.0337522998f, 0.00716248015f));
  dd = fma_(dd, b, pa);
  pa = fma_(pa, a, tn_pick(m, -0.797884583f, -0.276197016f, -0.12136817f));
  return fma_(dd, b, pa);
}

// M(z) to 0.2% for z in [-0.05, 12.5]: s (a1 + s (a2 + s a3)) + a0 with
// s = (sqrt(z^2 + 8/pi) - z) pi/4 (= 2 / (z + sqrt(z^2 + 8/pi)), the
// classical bound, exact at 0). Only the Newton step's slope: its error
// scales the remaining error of z0, a few ulps, by 0.002.
MFI_INLINE float tn_mills_ratio(float z) {
  float s = (sqrt_rn(fma_(z, z, 2.54647899f)) - z) * 0.785398185f;
  float m = fma_(s, 0.185454562f, -0.268852681f);
  m = fma_(m, s, 1.04657662f);
  return fma_(m, s, -0.00242690067f);
}

// Tail mapping (docs/spec.md section 3): the interval lies on one side of
// the mean; n >= 0 is its bound nearer the mean in standard units, mirrored
// for a lower interval (its points are then -(n + delta)). The element's
// mass fraction from that bound is v = u (upper) or 1 - u (lower), exact,
// and its tail probability Phi(-z) = Phi(-n) (1 - v k). With E =
// -ln(1 - v k) (a log1p, minus_two_log1m) and LQ = -ln Phi(-.), z solves
// LQ(z) - LQ(n) = E. Start: z0 = -ndtri_lower(Qn RN(1 - v k)), the
// ordinary inverse CDF (a few ulps of z off); delta0 = z0 - a32. One Newton
// step on
//   R(delta) = delta (a32 + delta/2 - D) + K - E,
//   LQ(z) = z^2/2 + ln sqrt(2 pi) - ln M(z),
//   D = the slope of ln M between a32 and z (tn_log_mills_slope),
//   K = (a32^2 - n^2)/2 + ln M(n) - ln M(a32) (host, float64),
// delta1 = delta0 - R M(z0) (tn_mills_ratio: 1 / LQ'), for delta0 <= 2
// (farther out delta0 itself: the density there is small). Every term of
// R but the small constant K is a multiple of delta0 or is E (about delta
// times the hazard rate), so its rounding errors are relative to delta,
// not to z: near the bound, where the density is highest, delta is small
// and z = a32 + delta is within about half an ulp.
// The output is anchored too: x = X_a + fma(scale, delta, e_a), X_a + e_a =
// mean +- std a32 (float64), scale = +-std.
MFI_INLINE float truncated_tail_value(float z0, float e2, float scale, float shift,
                                      Truncation tr) {
  float a32 = tr.p_lo;
  uint32_t b0 = 0u - static_cast<uint32_t>(a32 < 1.6f);
  uint32_t b1 = 0u - static_cast<uint32_t>(a32 < 4.1f);
  TnBranch piece;
  piece.m0 = b0;
  piece.m1 = ~b0 & b1;
  piece.m2 = ~b1;
  float centre = tn_pick(piece, 0.0f, 3.1f, 8.0f);
  float d0 = z0 - a32;
  float slope = tn_log_mills_slope(a32 - centre, z0 - centre, piece);
  float h = fma_(0.5f, d0, -slope);              // delta/2 - D
  float r = fma_(d0, a32, -0.5f * e2);           // delta a32 - E
  r = fma_(d0, h, r) + tr.c4;                    // R
  float d1 = fma_(-r, tn_mills_ratio(z0), d0);
  uint32_t in_reach = 0u - static_cast<uint32_t>(d0 <= 2.0f);
  float d = tn_select(in_reach, d1, d0);
  return shift + fma_(scale, d, tr.c5);
}

MFI_INLINE float truncated_normal_value(uint32_t word, float scale, float shift,
                                        float upper, Truncation tr) {
  uint32_t narrow = 0u - static_cast<uint32_t>(tr.narrow == kTnNarrow);
  uint32_t tail_lo = 0u - static_cast<uint32_t>(tr.narrow == kTnTailLower);
  uint32_t tail = tail_lo | (0u - static_cast<uint32_t>(tr.narrow == kTnTailUpper));
  float u = fma_(static_cast<float>(word >> 9), kTwoM23, kTwoM24);  // exact
  float u1 = 1.0f - u;                                               // exact
  // Inverse CDF: the element's two tail probabilities.
  float p = fma_(u, tr.width, tr.p_lo);
  float c = fma_(u1, tr.width, tr.c_hi);
  uint32_t lower_tail = 0u - static_cast<uint32_t>(p <= c);
  // Tail: its mass fraction from the nearer bound, E and the start's
  // tail probability Qn RN(1 - v k).
  float v = tn_select(tail_lo, u1, u);
  float e2 = minus_two_log1m(v, tr.width);      // 2E
  float ct = tr.c_hi * fma_(-v, tr.width, 1.0f);
  // One ndtri_lower for both (the tail's argument, or p or c).
  TnQuantile nq = ndtri_lower_parts(tn_select(tail, ct, tn_select(lower_tail, p, c)));
  float z = -(nq.x * nq.q);
  z = tn_select(lower_tail, z, -z);
  float z0 = fma_(nq.x, nq.q, 0.0f);             // -ndtri_lower(ct) >= 0
  // All three mappings are computed and one is selected by mask: the
  // choice is the same for every element of a call, and vector code runs
  // one path.
  float out = tn_select(narrow, truncated_narrow_value(word, scale, shift, tr),
                        tn_select(tail, truncated_tail_value(z0, e2, scale, shift, tr),
                                  fma_(scale, z, shift)));
  out = out < upper ? out : upper;
  return out > tr.lower ? out : tr.lower;
}

MFI_INLINE Quad truncated_normal_block(Block x, float scale, float shift, float upper,
                                       Truncation tr) {
  Quad o;
  o.v0 = truncated_normal_value(x.x0, scale, shift, upper, tr);
  o.v1 = truncated_normal_value(x.x1, scale, shift, upper, tr);
  o.v2 = truncated_normal_value(x.x2, scale, shift, upper, tr);
  o.v3 = truncated_normal_value(x.x3, scale, shift, upper, tr);
  return o;
}

// The transform selected by variant, with the truncated normal's constants
// (unused by the other variants).
MFI_INLINE Quad transform_block(int variant, Block x, float scale, float shift,
                                float upper, Truncation tr, uint32_t grid) {
  return variant == kTruncatedNormal ? truncated_normal_block(x, scale, shift, upper, tr)
                                     : transform_block(variant, x, scale, shift, upper, grid);
}

// ------------------------------------------- float32 -> 16-bit, RNE, bits
// Used by the CPU path (integer ops vectorize; scalar F16C would not). The
// Metal kernel converts with the hardware's own RNE conversion instead, and
// the shim test compares the two.
MFI_INLINE uint16_t f32_to_f16_bits(float f) {
  uint32_t x = as_uint(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t a = x & 0x7FFFFFFFu;
  // Normal results: rebias the exponent and round the 13 dropped bits to
  // nearest even; a carry out of the mantissa correctly bumps the exponent
  // (up to infinity for |f| >= 65520).
  uint32_t normal = (a + 0xC8000FFFu + ((a >> 13) & 1u)) >> 13;
  // Subnormal results (|f| < 2^-14): adding 0.5 (ulp 2^-24, the f16
  // subnormal step) lets the float adder round to nearest even for us.
  uint32_t sub = as_uint(as_float(a) + 0.5f) - 0x3F000000u;
  // Selections as masks: GCC will not vectorize this chain of ?: .
  uint32_t is_sub = 0u - static_cast<uint32_t>(a < 0x38800000u);
  uint32_t is_inf = 0u - static_cast<uint32_t>(a >= 0x47800000u);  // >= 65536
  uint32_t is_nan = 0u - static_cast<uint32_t>(a > 0x7F800000u);
  uint32_t h = (sub & is_sub) | (normal & ~is_sub);
  h = (0x7C00u & is_inf) | (h & ~is_inf);
  h = (0x7E00u & is_nan) | (h & ~is_nan);
  return static_cast<uint16_t>(h | sign);
}

// 16-bit inputs (perturb's w) -> float32, exactly, by integer operations
// (vectorizable, and free of any flush-to-zero mode): bfloat16 is the top
// half of a float32; a float16 normal is rebiased (exponent + 112), a
// subnormal is its integer mantissa times 2^-24 (exact: below 2^10), and
// infinity and NaN keep an all-ones exponent.
MFI_INLINE float bf16_bits_to_f32(uint16_t h) {
  return as_float(static_cast<uint32_t>(h) << 16);
}

MFI_INLINE float f16_bits_to_f32(uint16_t h) {
  uint32_t x = h;
  uint32_t sign = (x & 0x8000u) << 16;
  uint32_t a = x & 0x7FFFu;
  uint32_t normal = (a << 13) + 0x38000000u;        // (e - 15 + 127) << 23
  uint32_t sub = as_uint(static_cast<float>(a) * kTwoM24);  // exact
  uint32_t special = (a << 13) | 0x7F800000u;       // infinity, NaN
  uint32_t is_sub = 0u - static_cast<uint32_t>(a < 0x0400u);
  uint32_t is_special = 0u - static_cast<uint32_t>(a >= 0x7C00u);
  uint32_t m = (sub & is_sub) | (normal & ~is_sub);
  m = (special & is_special) | (m & ~is_special);
  return as_float(m | sign);
}

MFI_INLINE uint16_t f32_to_bf16_bits(float f) {
  uint32_t x = as_uint(f);
  uint32_t r = (x + 0x7FFFu + ((x >> 16) & 1u)) >> 16;
  bool nan = (x & 0x7FFFFFFFu) > 0x7F800000u;
  return static_cast<uint16_t>(nan ? ((x >> 16) | 0x0040u) : r);
}

} // namespace mfi

#endif // MFI_FUSED_INIT_MATH_H
