// The fused initializer's per-thread work, shared by every GPU kernel:
//   * the native Metal kernels (metal/fused_init.metal: the metallib, or the
//     embedded source MLX compiles at run time);
//   * the portable kernels handed to MLX's runtime-kernel APIs as text:
//     mx.fast.metal_kernel on Apple GPUs and mx.fast.cuda_kernel on NVIDIA
//     GPUs (python/mlx_fused_init/_gpu.py), whose header is this file with
//     its includes inlined.
// One thread per group of four output elements. Where those four are one
// whole Philox block of the stream (always, for a full tensor), the thread
// computes that block once and stores it at once; otherwise (window edges,
// tails) it computes element by element, reusing a block its elements
// share. All math comes from fused_init_math.h, shared with the CPU path.
// The CPU shims (tests/metal_shim, tests/cuda_shim) compile this text as
// C++ and run it for every thread, bit-compared with the CPU path.
// Include guards, not #pragma once: see fused_init_math.h.
#ifndef MFI_FUSED_INIT_KERNEL_H
#define MFI_FUSED_INIT_KERNEL_H

#include "fused_init_math.h"
#include "fused_init_params.h"

#if defined(__METAL_VERSION__)
#define MFI_DEVICE device
#define MFI_DEVICE_FN inline
#else  // CUDA (NVRTC), and the CUDA shim
#define MFI_DEVICE
#define MFI_DEVICE_FN __device__ inline
#endif

namespace mfi {

// The stream index of output element e (RunLayout::run_origin in
// csrc/fill_job.h, for at most p.num_outer outer dimensions). P, E and S
// are pointer types of any address space (the native kernels read their
// arguments from `constant`, the portable ones from `device` memory).
template <typename P, typename E, typename S>
MFI_DEVICE_FN uint64_t stream_index(uint64_t e, P p, E extent, S stride) {
  if (p->num_outer == 0) {
    return p->origin + e;
  }
  uint64_t run = e / p->run_length;
  uint64_t idx = p->origin + (e - run * p->run_length);
  for (int d = int(p->num_outer) - 1; d >= 0; --d) {
    uint64_t ext = uint64_t(extent[d]);
    uint64_t i = run % ext;
    run /= ext;
    idx += i * stride[d];
  }
  return idx;
}

// The grid of an output type (fused_init_math.h): float32, float16, and
// every other type, which is bfloat16 (Metal's bfloat, MLX's bfloat16_t,
// CUDA's __nv_bfloat16), so that no back-end's name for it is needed here.
template <typename T>
MFI_DEVICE_FN uint32_t out_grid() {
  return kGridBFloat16;
}
template <>
MFI_DEVICE_FN uint32_t out_grid<float>() {
  return kGridFloat32;
}
#if defined(__METAL_VERSION__)
template <>
MFI_DEVICE_FN uint32_t out_grid<half>() {
  return kGridFloat16;
}
#else
template <>
MFI_DEVICE_FN uint32_t out_grid<__half>() {
  return kGridFloat16;
}
#endif

template <int Variant, typename T, typename P>
MFI_DEVICE_FN Quad stream_quad(uint64_t b, P p, uint32_t k0, uint32_t k1) {
  Block x = stream_block(uint32_t(b), uint32_t(b >> 32), p->q_lo, p->q_hi, k0, k1);
  Truncation tr;
  tr.lower = p->lower;
  tr.p_lo = p->p_lo;
  tr.c_hi = p->c_hi;
  tr.width = p->width;
  tr.c4 = p->c4;
  tr.c5 = p->c5;
  tr.narrow = p->narrow;
  return transform_block(Variant, x, p->scale, p->shift, p->upper, tr, out_grid<T>());
}

// ----------------------------------------------------- stores, by backend
#if defined(__METAL_VERSION__)
// Metal converts float to half and bfloat with its own round-to-nearest-
// even (the shim checks it against the CPU path's bit conversion). float
// and half blocks go out as one vector store; bfloat element by element,
// since MLX's bfloat16_t is a struct, not a vector element type, where the
// language has no native bfloat.
template <typename T>
MFI_DEVICE_FN void store_one(MFI_DEVICE T* out, uint64_t e, float v) {
  out[e] = static_cast<T>(v);
}
template <typename T>
MFI_DEVICE_FN void store_quad(MFI_DEVICE T* out, uint64_t e, Quad v) {
  out[e] = static_cast<T>(v.v0);
  out[e + 1] = static_cast<T>(v.v1);
  out[e + 2] = static_cast<T>(v.v2);
  out[e + 3] = static_cast<T>(v.v3);
}
MFI_DEVICE_FN void store_quad(MFI_DEVICE float* out, uint64_t e, Quad v) {
  *reinterpret_cast<MFI_DEVICE metal::vec<float, 4>*>(out + e) = metal::vec<float, 4>(v.v0, v.v1, v.v2, v.v3);
}
MFI_DEVICE_FN void store_quad(MFI_DEVICE half* out, uint64_t e, Quad v) {
  *reinterpret_cast<MFI_DEVICE metal::vec<half, 4>*>(out + e) = metal::vec<half, 4>(
      static_cast<half>(v.v0), static_cast<half>(v.v1), static_cast<half>(v.v2),
      static_cast<half>(v.v3));
}
#else
// CUDA: 16-bit outputs are written as bits from the math header's own
// round-to-nearest-even conversion (the CPU path's), so that no CUDA
// conversion intrinsic decides a bit. __half and __nv_bfloat16 are the
// types MLX's cuda_kernel gives float16 and bfloat16 outputs.
MFI_DEVICE_FN void store_one(float* out, uint64_t e, float v) {
  out[e] = v;
}
MFI_DEVICE_FN void store_one(__half* out, uint64_t e, float v) {
  reinterpret_cast<uint16_t*>(out)[e] = f32_to_f16_bits(v);
}
MFI_DEVICE_FN void store_one(__nv_bfloat16* out, uint64_t e, float v) {
  reinterpret_cast<uint16_t*>(out)[e] = f32_to_bf16_bits(v);
}
template <typename T>
MFI_DEVICE_FN void store_quad(T* out, uint64_t e, Quad v) {
  store_one(out, e, v.v0);
  store_one(out, e + 1, v.v1);
  store_one(out, e + 2, v.v2);
  store_one(out, e + 3, v.v3);
}
#endif

// ------------------------------------------------- perturbation's input
// Element e of perturb's w, as float32 (exact). I is a pointer of any
// address space: mx.fast.metal_kernel passes an input of fewer than 8
// elements in `constant` memory, a larger one in `device` memory.
#if defined(__METAL_VERSION__)
template <typename I>
MFI_DEVICE_FN float load_one(I in, uint64_t e) {
  return static_cast<float>(in[e]);
}
#else
MFI_DEVICE_FN float load_one(const float* in, uint64_t e) {
  return in[e];
}
MFI_DEVICE_FN float load_one(const __half* in, uint64_t e) {
  return f16_bits_to_f32(reinterpret_cast<const uint16_t*>(in)[e]);
}
MFI_DEVICE_FN float load_one(const __nv_bfloat16* in, uint64_t e) {
  return bf16_bits_to_f32(reinterpret_cast<const uint16_t*>(in)[e]);
}
#endif

// A stream value of element e as stored: itself, or for a perturbation
// (variant 4, kPerturb) perturb_value with w's element e (read before this
// thread writes out[e]: in may be out). A class template specialized on the
// variant, so that the draws never instantiate load_one (no `if
// constexpr`: Metal's language predates it).
template <int Variant>
struct Finish {
  template <typename I, typename P>
  static MFI_DEVICE_FN float one(float v, I, uint64_t, P) {
    return v;
  }
  template <typename I, typename P>
  static MFI_DEVICE_FN Quad quad(Quad v, I, uint64_t, P) {
    return v;
  }
};

template <>
struct Finish<4> {
  template <typename I, typename P>
  static MFI_DEVICE_FN float one(float z, I in, uint64_t e, P p) {
    return perturb_value(z, load_one(in, e), p->scale, p->shift);
  }
  template <typename I, typename P>
  static MFI_DEVICE_FN Quad quad(Quad v, I in, uint64_t e, P p) {
    v.v0 = one(v.v0, in, e, p);
    v.v1 = one(v.v1, in, e + 1, p);
    v.v2 = one(v.v2, in, e + 2, p);
    v.v3 = one(v.v3, in, e + 3, p);
    return v;
  }
};
#if !defined(__METAL_VERSION__)
static_assert(kPerturb == 4, "Finish<4> is the perturbation");
#endif

// ------------------------------------------------------------- one thread
// Output elements [4 gid, 4 gid + 4) of the draw described by p (a
// MetalParams, fused_init_params.h), extent and stride (its RunLayout's
// outer dimensions), with key (k0, k1). A perturbation (Variant kPerturb)
// reads its w from in (row-major, out's type, any address space; may be
// out); the other variants never read in.
template <int Variant, typename T, typename I, typename P, typename E, typename S>
MFI_DEVICE_FN void fill_group(MFI_DEVICE T* out, I in, P p, E extent, S stride, uint32_t k0,
                              uint32_t k1, uint64_t gid) {
  const uint64_t e0 = gid * 4;
  if (e0 >= p->size) {
    return;
  }
  const uint64_t i0 = stream_index(e0, p, extent, stride);
  const bool whole_block = e0 + 4 <= p->size && (i0 & 3) == 0 &&
      (p->num_outer == 0 || (e0 % p->run_length) + 4 <= p->run_length);
  if (whole_block) {
    store_quad(out, e0, Finish<Variant>::quad(stream_quad<Variant, T>(i0 >> 2, p, k0, k1),
                                              in, e0, p));
    return;
  }
  uint64_t cached = ~uint64_t(0);
  Quad v;
  for (uint32_t j = 0; j < 4 && e0 + j < p->size; ++j) {
    uint64_t i = j == 0 ? i0 : stream_index(e0 + j, p, extent, stride);
    if ((i >> 2) != cached) {
      cached = i >> 2;
      v = stream_quad<Variant, T>(cached, p, k0, k1);
    }
    store_one(out, e0 + j, Finish<Variant>::one(quad_lane(v, uint32_t(i & 3)), in, e0 + j, p));
  }
}

// The draw alone (every variant but kPerturb).
template <int Variant, typename T, typename P, typename E, typename S>
MFI_DEVICE_FN void fill_group(MFI_DEVICE T* out, P p, E extent, S stride, uint32_t k0,
                              uint32_t k1, uint64_t gid) {
  fill_group<Variant>(out, out, p, extent, stride, k0, k1, gid);
}

} // namespace mfi

#endif // MFI_FUSED_INIT_KERNEL_H
