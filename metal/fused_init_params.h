// The argument block of the Metal kernels, shared by the kernel source, the
// host code that fills it (csrc/metal_dispatch.h) and the CPU shim driver.
// Fields are ordered largest first so that Metal and C++ lay them out alike.
// Include guards, not #pragma once: this text is also inlined into one
// generated source (cmake/embed_metal_source.py), after which an include
// of the file itself must be skipped.
#ifndef MFI_FUSED_INIT_PARAMS_H
#define MFI_FUSED_INIT_PARAMS_H

#if !defined(__METAL_VERSION__)
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
  float unused; // explicit padding to a multiple of 8 bytes
};

} // namespace mfi

#endif // MFI_FUSED_INIT_PARAMS_H
