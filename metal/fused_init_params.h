// The argument block of the Metal kernels, shared by the kernel source, the
// host code that fills it (csrc/metal_dispatch.h) and the CPU shim driver.
// Fields are ordered largest first so that Metal and C++ lay them out alike.
// Include guards, not #pragma once: this text is also inlined into one
// generated source (cmake/embed_metal_source.py), after which an include
// of the file itself must be skipped.
#ifndef MFI_FUSED_INIT_PARAMS_H
#define MFI_FUSED_INIT_PARAMS_H

#if !defined(__METAL_VERSION__) && !defined(__CUDACC__)
#include <cstdint>
#endif

namespace mfi {

struct MetalParams {
  uint64_t size;        // output elements
  uint64_t run_length;  // output elements per run (RunLayout, fill_job.h)
  uint64_t origin;      // stream index of the first element of run 0
  uint32_t num_outer;   // entries in the extent/stride buffers; 0: one run
  int32_t key_stride;   // key[1] is key[key_stride]: any sign (key[::-1]), or 0
  uint32_t q_lo;        // the stream's subsequence, low and high words
  uint32_t q_hi;
  float scale;
  float shift;
  float upper;  // uniform, truncated normal: clamp (fused_init_math.h)
  float lower;  // truncated normal: mfi::Truncation (fused_init_math.h)
  float p_lo;
  float c_hi;
  float width;
  float c4;         // truncated normal: narrow and tail mappings only
  float c5;
  uint32_t narrow;  // truncated normal: the mapping word (mfi::kTnNarrow, ...)
};

// The portable kernels (mx.fast.metal_kernel, mx.fast.cuda_kernel) take
// all of this in one uint32 input array, "args": the MetalParams words,
// then the window's outer extents (int64) and stream strides (uint64), at
// most kArgsMaxOuter each, at fixed offsets (in words; 8-byte aligned).
// One array of more than 8 elements: MLX then passes it in device memory
// whatever the window, so the generated kernel signature never changes.
#if defined(__METAL_VERSION__)
#define MFI_PARAMS_CONSTANT constant
#else
#define MFI_PARAMS_CONSTANT constexpr
#endif
MFI_PARAMS_CONSTANT uint32_t kArgsMaxOuter = 16;
MFI_PARAMS_CONSTANT uint32_t kArgsExtent = 20;  // sizeof(MetalParams) / 4
MFI_PARAMS_CONSTANT uint32_t kArgsStride = kArgsExtent + 2 * kArgsMaxOuter;
MFI_PARAMS_CONSTANT uint32_t kArgsWords = kArgsStride + 2 * kArgsMaxOuter;

#if !defined(__METAL_VERSION__)
static_assert(sizeof(MetalParams) == 4 * kArgsExtent, "MetalParams is 20 words");
#endif

} // namespace mfi

#endif // MFI_FUSED_INIT_PARAMS_H
