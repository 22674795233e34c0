// Host-side arithmetic of a Metal dispatch: kernel names, the argument
// block, the grid and threadgroup sizes. Free of Metal headers so that the
// CPU shim driver (tests/metal_shim/driver.cpp) uses this very code to run
// the kernel source the way the GPU would, and a wrong grid fails the test.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "fill_job.h"
#include "fused_init_math.h"
#include "fused_init_params.h"

namespace mfi {

// Outer dimensions a window may have on the GPU (the kernel's buffers).
constexpr uint32_t kMaxMetalOuterDims = 16;

// Elements one GPU dispatch can generate: one thread per four elements and
// a 32-bit thread position (2^34 - 4). The op refuses more when the graph
// is built (fused_init.cpp); plan_fused_init checks again.
constexpr uint64_t kMaxMetalElements = 4 * static_cast<uint64_t>(UINT32_MAX);

inline std::string metal_kernel_name(OutType type, int variant) {
  std::string name = variant == kPerturb ? "fused_perturb_" : "fused_init_";
  name += type == OutType::Float16 ? "float16"
      : type == OutType::BFloat16  ? "bfloat16"
                                   : "float32";
  if (variant == kPerturb) {
    return name;
  }
  name += variant == kUniform ? "_uniform"
      : variant == kShiftedNormal ? "_shifted_normal"
      : variant == kTruncatedNormal ? "_truncated_normal"
                                  : "_normal";
  return name;
}

// The distance in words from key[0] to key[1] as the kernels take it: MLX
// strides are signed (key[::-1] has -1, a broadcast key 0). The op makes
// GPU keys contiguous (fused_init.cpp, gpu_key); this stays exact whatever
// stride reaches the kernel.
inline int32_t key_word_stride(int64_t stride) {
  if (stride < INT32_MIN || stride > INT32_MAX) {
    throw std::invalid_argument("[FusedInit] The key's stride does not fit the GPU kernel.");
  }
  return static_cast<int32_t>(stride);
}

inline MetalParams make_metal_params(
    const StreamParams& s,
    const RunLayout& layout,
    int32_t key_stride) {
  if (layout.outer_extent.size() > kMaxMetalOuterDims) {
    throw std::invalid_argument(
        "[FusedInit] The GPU kernel supports windows with at most 16 "
        "non-contiguous outer dimensions.");
  }
  MetalParams p;
  p.size = static_cast<uint64_t>(layout.size());
  p.run_length = static_cast<uint64_t>(layout.run_length);
  p.origin = layout.origin;
  p.num_outer = static_cast<uint32_t>(layout.outer_extent.size());
  p.key_stride = key_stride;
  p.q_lo = static_cast<uint32_t>(s.subsequence);
  p.q_hi = static_cast<uint32_t>(s.subsequence >> 32);
  p.scale = s.scale;
  p.shift = s.shift;
  p.upper = s.upper;
  p.lower = s.lower;
  p.p_lo = s.p_lo;
  p.c_hi = s.c_hi;
  p.width = s.width;
  p.c4 = s.c4;
  p.c5 = s.c5;
  p.narrow = s.narrow;
  return p;
}

// The "args" array of the portable kernels (fused_init_params.h): the
// parameter block, then the outer extents and strides at fixed offsets.
inline std::vector<uint32_t> pack_gpu_args(const MetalParams& p, const RunLayout& layout) {
  static_assert(kMaxMetalOuterDims == kArgsMaxOuter, "one limit for every GPU kernel");
  std::vector<uint32_t> words(kArgsWords, 0u);
  std::memcpy(words.data(), &p, sizeof(MetalParams));
  for (size_t d = 0; d < layout.outer_extent.size(); ++d) {
    std::memcpy(&words[kArgsExtent + 2 * d], &layout.outer_extent[d], 8);
    std::memcpy(&words[kArgsStride + 2 * d], &layout.outer_stride[d], 8);
  }
  return words;
}

struct DispatchPlan {
  uint64_t threads;  // grid size (dispatch_threads: need not divide evenly)
  uint64_t group;    // threads per threadgroup
};

// One thread per four output elements, the last one handling the tail.
inline DispatchPlan plan_fused_init(uint64_t size, uint64_t max_group) {
  uint64_t threads = (size + 3) / 4;
  if (size > kMaxMetalElements) {
    throw std::invalid_argument(
        "[FusedInit] Too many elements for one GPU dispatch (at most 2^34 - 4).");
  }
  return {threads, std::max<uint64_t>(1, std::min(max_group, threads))};
}

// One thread per counter row.
inline DispatchPlan plan_philox(uint64_t rows, uint64_t max_group) {
  return {rows, std::max<uint64_t>(1, std::min(max_group, rows))};
}

} // namespace mfi
