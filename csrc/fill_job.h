// What one evaluation of the fused initializer has to produce, reduced to
// plain integers and floats, so that the CPU kernels and the Metal host code
// share it without depending on MLX's array type.
#pragma once

#include <cstdint>
#include <vector>

namespace mfi {

enum class OutType : int { Float32 = 0, Float16 = 1, BFloat16 = 2 };

// The stream's parameters (docs/spec.md section 3) and the transform applied to it.
struct StreamParams {
  uint32_t k0 = 0;
  uint32_t k1 = 0;
  uint64_t subsequence = 0;
  int kind = 0;        // mfi::kNormal, kUniform or kTruncatedNormal (fused_init_math.h)
  float scale = 1.0f;  // sigma, or high - low
  float shift = 0.0f;  // mean, or low
  float upper = 0.0f;  // uniform, truncated normal: largest output value
  // Truncated normal only (mfi::Truncation in fused_init_math.h).
  float lower = 0.0f;
  float p_lo = 0.0f;
  float c_hi = 0.0f;
  float width = 0.0f;
  float c4 = 0.0f;
  float c5 = 0.0f;
  uint32_t narrow = 0;  // the mapping word: mfi::kTnInverseCdf, kTnNarrow, kTnTail*
};

// A window of a virtual row-major tensor, flattened into equal runs of
// consecutive stream indices: output element e lies in run e / run_length,
// at stream index run_origin(e / run_length) + e % run_length.
struct RunLayout {
  int64_t run_length = 0;  // elements per run (> 0 unless the output is empty)
  int64_t num_runs = 0;
  // Outer dimensions that enumerate the runs (window extent, stream stride)
  // and the stream index of run 0.
  std::vector<int64_t> outer_extent;
  std::vector<uint64_t> outer_stride;
  uint64_t origin = 0;

  uint64_t run_origin(int64_t run) const {
    uint64_t idx = origin;
    for (int d = static_cast<int>(outer_extent.size()) - 1; d >= 0; --d) {
      int64_t i = run % outer_extent[d];
      run /= outer_extent[d];
      idx += static_cast<uint64_t>(i) * outer_stride[d];
    }
    return idx;
  }
  int64_t size() const {
    return run_length * num_runs;
  }
};

// full_shape, start and shape have the same length; the window
// start[d] .. start[d] + shape[d] lies inside full_shape[d].
RunLayout make_run_layout(
    const std::vector<int64_t>& full_shape,
    const std::vector<int64_t>& start,
    const std::vector<int64_t>& shape);

} // namespace mfi
