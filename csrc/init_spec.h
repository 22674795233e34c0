// What decides the output of one fused draw besides the key, and its
// validation: free of MLX, so that the native op (fused_init.cpp) and the
// portable CPU module (portable_bindings.cpp, which loads under any MLX)
// accept and refuse exactly the same arguments, with the same words.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fill_job.h"

namespace mfi {

struct InitSpec {
  int kind = 0;         // kNormal, kUniform or kTruncatedNormal (fused_init_math.h)
  float scale = 1.0f;   // sigma, or high - low
  float shift = 0.0f;   // mean, or low
  float upper = 0.0f;   // uniform, truncated normal: the largest output value
  // Truncated normal (set_truncated_normal): smallest output value and the
  // per-call probabilities of mfi::Truncation (fused_init_math.h).
  float lower = 0.0f;
  float p_lo = 0.0f;
  float c_hi = 0.0f;
  float width = 0.0f;
  float c4 = 0.0f;      // truncated normal, narrow and tail mappings (mfi::Truncation)
  float c5 = 0.0f;
  uint32_t narrow = 0;  // the mapping word: mfi::kTnInverseCdf, kTnNarrow, kTnTail*
  uint64_t subsequence = 0;
  std::vector<int64_t> full_shape;  // the virtual tensor
  std::vector<int64_t> start;       // the window's corner in it
  std::vector<int64_t> shape;       // the window (= the output's shape)
  OutType dtype = OutType::Float32;

  bool operator==(const InitSpec& o) const;
};

// "float32", "float16" or "bfloat16", as MLX prints its dtypes.
const char* out_type_name(OutType t);
int out_type_size(OutType t);

// The arguments of one draw as the Python layer passes them (both modules'
// fused_init bindings): sets the transform (uniform bounds or truncation
// constants from low/high) and the window, then validates everything
// (check_spec). Throws std::invalid_argument (ValueError in Python).
InitSpec make_spec(
    std::vector<int64_t> shape,
    OutType dtype,
    int kind,
    float scale,
    float shift,
    std::optional<double> low,
    std::optional<double> high,
    uint64_t subsequence,
    std::optional<std::vector<int64_t>> full_shape,
    std::optional<std::vector<int64_t>> start,
    const std::string& name);

// Sets kind, shift, scale and upper of a uniform draw on [low, high) in
// spec.dtype (set spec.dtype first). Throws std::invalid_argument.
void set_uniform_bounds(InitSpec& spec, double low, double high, const std::string& name);

// Sets kind, scale, shift and the truncation constants of a normal draw
// N(mean, std^2) truncated to [a, b] (absolute bounds, either may be
// infinite), for spec.dtype (set spec.dtype first). Throws
// std::invalid_argument.
void set_truncated_normal(
    InitSpec& spec, double mean, double std, double a, double b, const std::string& name);

// Validates a spec whose transform is set (kind, shape, window, values
// within the dtype, output size), filling in full_shape and start when
// both are empty. `name` prefixes messages ("[glorot_normal] ...").
void check_spec(InitSpec& spec, const std::string& name);

// The GPU kernels' limits (at most kMaxMetalOuterDims cut dimensions and
// kMaxMetalElements elements in one dispatch), checked when the graph is
// built. The same limits hold for every GPU path, native or portable.
void check_gpu_limits(const InitSpec& spec, const std::string& name);

StreamParams stream_params(const InitSpec& spec, uint32_t k0, uint32_t k1);

} // namespace mfi
