// Validation and per-call constants of a fused draw, free of MLX
// (init_spec.h).
#include "init_spec.h"

#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "fused_init_math.h"
#include "metal_dispatch.h"

namespace mfi {

namespace {

// The largest |z| the stream can produce: sqrt(-2 ln 2^-33), rounded up.
constexpr double kMaxAbsZ = 6.7638;

std::string shape_str(const std::vector<int64_t>& v) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < v.size(); ++i) {
    os << v[i] << (v.size() == 1 ? "," : (i + 1 < v.size() ? ", " : ""));
  }
  os << ")";
  return os.str();
}

double largest_finite(OutType t) {
  if (t == OutType::Float16) {
    return 65504.0;
  }
  if (t == OutType::BFloat16) {
    return 3.3895313892515355e38;
  }
  return std::numeric_limits<float>::max();
}


[[noreturn]] void fail(const std::string& name, const std::string& msg) {
  throw std::invalid_argument("[" + name + "] " + msg);
}

// The number of elements of a shape whose dimensions are each in
// [0, 2^31): exact below 2^96, saturated there (far past every limit).
unsigned __int128 element_count(const std::vector<int64_t>& shape) {
  constexpr unsigned __int128 kCap = static_cast<unsigned __int128>(1) << 96;
  unsigned __int128 n = 1;
  for (int64_t d : shape) {
    if (d == 0) {
      return 0;
    }
    n = n > kCap ? kCap : n * static_cast<unsigned __int128>(d);
  }
  return n;
}

std::string u128_str(unsigned __int128 v) {
  std::string s;
  do {
    s.insert(s.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  } while (v != 0);
  return s;
}

// MLX sizes arrays in bytes with size_t and addresses them with int64
// strides and offsets: an output whose byte count exceeds 2^63 - 1 cannot
// be allocated, and its byte count may even wrap. Refuse it here, by shape,
// instead of an allocation error at evaluation.
void check_output_size(const InitSpec& spec, const std::string& name) {
  unsigned __int128 n = element_count(spec.shape);
  unsigned __int128 bytes = n * static_cast<unsigned __int128>(out_type_size(spec.dtype));
  if (bytes > static_cast<unsigned __int128>(std::numeric_limits<int64_t>::max())) {
    fail(name, "the output of shape " + shape_str(spec.shape) + " has " + u128_str(n) +
             " elements (" + u128_str(bytes) + " bytes as " + out_type_name(spec.dtype) +
             "), more than an MLX array can hold (2^63 - 1 bytes).");
  }
}

float f16_bits_to_float(uint16_t h) {
  int exp = (h >> 10) & 0x1F;
  int mant = h & 0x3FF;
  float mag = exp == 0 ? std::ldexp(static_cast<float>(mant), -24)
      : exp == 31      ? (mant ? std::numeric_limits<float>::quiet_NaN()
                               : std::numeric_limits<float>::infinity())
                       : std::ldexp(static_cast<float>(mant | 0x400), exp - 25);
  return (h & 0x8000) ? -mag : mag;
}

// The value of dtype nearest to x (x rounded to float32 first, as MLX's
// astype from a Python float does), as an exact float32.
float to_dtype(double x, OutType t) {
  float f = static_cast<float>(x);
  if (t == OutType::Float16) {
    return f16_bits_to_float(mfi::f32_to_f16_bits(f));
  }
  if (t == OutType::BFloat16) {
    return mfi::as_float(static_cast<uint32_t>(mfi::f32_to_bf16_bits(f)) << 16);
  }
  return f;
}

// The largest value of dtype t below v (v a finite value of t).
float below(float v, OutType t) {
  if (t == OutType::Float32) {
    return std::nextafter(v, -std::numeric_limits<float>::infinity());
  }
  uint16_t bits = t == OutType::Float16 ? mfi::f32_to_f16_bits(v) : mfi::f32_to_bf16_bits(v);
  if ((bits & 0x7FFF) == 0) {
    bits = 0x8001;  // below +-0: minus the smallest subnormal
  } else if (bits & 0x8000) {
    bits += 1;  // negative: one step away from zero
  } else {
    bits -= 1;
  }
  return t == OutType::Float16 ? f16_bits_to_float(bits)
                          : mfi::as_float(static_cast<uint32_t>(bits) << 16);
}

// The smallest value of dtype t above v (v a finite value of t).
float above(float v, OutType t) {
  return -below(-v, t);
}

// Phi(x) and Phi(-x) = 1 - Phi(x), each with full relative precision.
double norm_cdf(double x) {
  return 0.5 * std::erfc(-x * 0.70710678118654752440);
}

// Standardized bounds are clipped to +-kTruncClip: Phi(-12) = 1.8e-33 is a
// normal float32, so the kernel's probabilities and ndtri_lower's argument
// stay in range; the mass dropped, Phi(-12), is at most 3e-10 of any
// accepted interval (one that reaches within kTruncFar of the mean).
constexpr double kTruncClip = 12.0;
constexpr double kTruncFar = 10.0;

} // namespace

const char* out_type_name(OutType t) {
  return t == OutType::Float16 ? "float16" : t == OutType::BFloat16 ? "bfloat16" : "float32";
}

int out_type_size(OutType t) {
  return t == OutType::Float32 ? 4 : 2;
}

void set_truncated_normal(
    InitSpec& spec, double mean, double std, double a, double b, const std::string& name) {
  spec.kind = kTruncatedNormal;
  if (!std::isfinite(mean) || !std::isfinite(std) || !(std > 0.0)) {
    std::ostringstream os;
    os << "mean must be finite and std finite and positive, but got mean=" << mean
       << " and std=" << std << ".";
    fail(name, os.str());
  }
  if (std::isnan(a) || std::isnan(b) || !(a < b)) {
    std::ostringstream os;
    os << "a must be below b, but got a=" << a << " and b=" << b << ".";
    fail(name, os.str());
  }
  spec.scale = static_cast<float>(std);
  spec.shift = static_cast<float>(mean);
  if (!(spec.scale > 0.0f) || !std::isfinite(spec.scale) || !std::isfinite(spec.shift)) {
    fail(name, "mean and std must be finite, nonzero float32 values.");
  }
  const double mu = spec.shift, sd = spec.scale;
  const double alpha = (a - mu) / sd, beta = (b - mu) / sd;
  if (alpha > kTruncFar || beta < -kTruncFar) {
    std::ostringstream os;
    os << "the interval [a, b] = [" << a << ", " << b << "] lies more than " << kTruncFar
       << " standard deviations from the mean " << mean
       << " (standardized: [" << alpha << ", " << beta << "]); such draws are not supported.";
    fail(name, os.str());
  }
  const double lo = std::fmax(alpha, -kTruncClip), hi = std::fmin(beta, kTruncClip);
  const double p_lo = norm_cdf(lo), c_hi = norm_cdf(-hi);
  // The difference of the two smaller tails: no cancellation against 1.
  const double width = lo >= 0.0 ? norm_cdf(-lo) - c_hi
      : hi <= 0.0                 ? norm_cdf(hi) - p_lo
                                  : 1.0 - p_lo - c_hi;
  spec.p_lo = static_cast<float>(p_lo);
  spec.c_hi = static_cast<float>(c_hi);
  spec.width = static_cast<float>(width);
  if (!(spec.width >= std::numeric_limits<float>::min())) {
    std::ostringstream os;
    os << "the interval [" << a << ", " << b << "] holds a probability of " << width
       << ", too small to sample in float32; widen it.";
    fail(name, os.str());
  }
  // The clamp: [a, b] rounded inward to the dtype, within the values the
  // stream can reach (|z| <= 12), which must not overflow the dtype.
  const double reach_lo = std::fmax(a, mu + sd * -kTruncClip);
  const double reach_hi = std::fmin(b, mu + sd * kTruncClip);
  const double biggest = std::fmax(std::fabs(reach_lo), std::fabs(reach_hi));
  if (biggest > largest_finite(spec.dtype)) {
    std::ostringstream os;
    os << "values up to " << biggest << " would overflow " << out_type_name(spec.dtype) << " (largest finite "
       << largest_finite(spec.dtype) << "); lower the scale or use float32.";
    fail(name, os.str());
  }
  float lower = to_dtype(reach_lo, spec.dtype);
  if (static_cast<double>(lower) < reach_lo) {
    lower = above(lower, spec.dtype);
  }
  float upper = to_dtype(reach_hi, spec.dtype);
  if (static_cast<double>(upper) > reach_hi) {
    upper = below(upper, spec.dtype);
  }
  if (!(lower <= upper)) {
    std::ostringstream os;
    os << "no " << out_type_name(spec.dtype) << " value lies in [" << a << ", " << b << "].";
    fail(name, os.str());
  }
  spec.lower = lower;
  spec.upper = upper;
}

void set_uniform_bounds(InitSpec& spec, double low, double high, const std::string& name) {
  spec.kind = kUniform;
  if (!std::isfinite(low) || !std::isfinite(high)) {
    std::ostringstream os;
    os << "low and high must be finite, but got low=" << low << " and high=" << high << ".";
    fail(name, os.str());
  }
  if (high < low) {
    std::ostringstream os;
    os << "high must not be below low, but got low=" << low << " and high=" << high << ".";
    fail(name, os.str());
  }
  double biggest = std::fmax(std::fabs(low), std::fabs(high));
  if (biggest > largest_finite(spec.dtype)) {
    std::ostringstream os;
    os << "bounds up to " << biggest << " overflow " << out_type_name(spec.dtype) << " (largest finite "
       << largest_finite(spec.dtype) << ").";
    fail(name, os.str());
  }
  // As MLX does: the bounds in the output dtype, v in [0, 1) scaled by
  // their difference; and the clamp keeps every value below high.
  float lo = to_dtype(low, spec.dtype);
  float hi = to_dtype(high, spec.dtype);
  double width = static_cast<double>(hi) - static_cast<double>(lo);
  if (width > std::numeric_limits<float>::max()) {
    fail(name, "high - low overflows float32.");
  }
  spec.shift = lo;
  spec.scale = static_cast<float>(width);
  spec.upper = hi > lo ? below(hi, spec.dtype) : hi;
}

bool InitSpec::operator==(const InitSpec& o) const {
  // Floats compared by bits: -0.0 and 0.0 give different outputs.
  return kind == o.kind && mfi::as_uint(scale) == mfi::as_uint(o.scale) &&
      mfi::as_uint(shift) == mfi::as_uint(o.shift) &&
      mfi::as_uint(upper) == mfi::as_uint(o.upper) &&
      mfi::as_uint(lower) == mfi::as_uint(o.lower) &&
      mfi::as_uint(p_lo) == mfi::as_uint(o.p_lo) &&
      mfi::as_uint(c_hi) == mfi::as_uint(o.c_hi) &&
      mfi::as_uint(width) == mfi::as_uint(o.width) &&
      subsequence == o.subsequence && full_shape == o.full_shape &&
      start == o.start && shape == o.shape && dtype == o.dtype;
}

void check_spec(InitSpec& spec, const std::string& name) {
  if (spec.kind != kNormal && spec.kind != kUniform && spec.kind != kTruncatedNormal) {
    fail(name, "unknown transform kind " + std::to_string(spec.kind) + ".");
  }
  if (spec.kind == kUniform && !(spec.upper >= spec.shift)) {
    fail(name, "uniform bounds were not set (set_uniform_bounds).");
  }
  if (spec.kind == kTruncatedNormal && !(spec.width > 0.0f && spec.lower <= spec.upper)) {
    fail(name, "truncation constants were not set (set_truncated_normal).");
  }
  const size_t ndim = spec.shape.size();
  for (int64_t d : spec.shape) {
    if (d < 0) {
      fail(name, "negative dimensions are not allowed, but got shape " +
               shape_str(spec.shape) + ".");
    }
    if (d > std::numeric_limits<int32_t>::max()) {
      fail(name, "each dimension must be below 2^31 (an MLX limit), but got shape " +
               shape_str(spec.shape) + ".");
    }
  }
  if (spec.full_shape.empty() && spec.start.empty()) {
    spec.full_shape = spec.shape;
    spec.start.assign(ndim, 0);
  }
  if (spec.full_shape.size() != ndim || spec.start.size() != ndim) {
    fail(name, "full_shape " + shape_str(spec.full_shape) + " and start " +
             shape_str(spec.start) + " must have as many dimensions as the shape " +
             shape_str(spec.shape) + ".");
  }
  // The stream index is 64-bit and block indices are index >> 2; keep the
  // virtual tensor well inside that.
  unsigned __int128 full_size = 1;
  for (size_t d = 0; d < ndim; ++d) {
    if (spec.full_shape[d] < 0) {
      fail(name, "negative dimensions are not allowed, but got full_shape " +
               shape_str(spec.full_shape) + ".");
    }
    if (spec.start[d] < 0 || spec.start[d] + spec.shape[d] > spec.full_shape[d]) {
      fail(name, "the window start " + shape_str(spec.start) + " with shape " +
               shape_str(spec.shape) + " does not lie inside full_shape " +
               shape_str(spec.full_shape) + ".");
    }
    full_size *= static_cast<unsigned __int128>(spec.full_shape[d]);
    if (full_size > (static_cast<unsigned __int128>(1) << 62)) {
      fail(name, "the full tensor " + shape_str(spec.full_shape) +
               " has more than 2^62 elements.");
    }
  }
  if (!std::isfinite(spec.scale) || !std::isfinite(spec.shift)) {
    std::ostringstream os;
    os << "the scale and shift must be finite, but got scale " << spec.scale
       << " and shift " << spec.shift << ".";
    fail(name, os.str());
  }
  // Refuse rather than hand back infinities (float16 saturates at 65504).
  double biggest = spec.kind == kNormal
      ? std::fabs(double(spec.shift)) + std::fabs(double(spec.scale)) * kMaxAbsZ
      : spec.kind == kTruncatedNormal  // clamped to values of the dtype
      ? std::fmax(std::fabs(double(spec.lower)), std::fabs(double(spec.upper)))
      : std::fmax(std::fabs(double(spec.shift)), std::fabs(double(spec.upper)));
  if (biggest > largest_finite(spec.dtype)) {
    std::ostringstream os;
    os << "values up to " << biggest << " would overflow " << out_type_name(spec.dtype)
       << " (largest finite " << largest_finite(spec.dtype)
       << "); lower the scale or use float32.";
    fail(name, os.str());
  }
  check_output_size(spec, name);
}

void check_gpu_limits(const InitSpec& spec, const std::string& name) {
  // When the graph is built rather than at evaluation (by then the output
  // would already be allocated).
  if (make_run_layout(spec.full_shape, spec.start, spec.shape).outer_extent.size() >
      kMaxMetalOuterDims) {
    fail(name, "on the GPU a window may cut at most " + std::to_string(kMaxMetalOuterDims) +
             " leading dimensions; use stream=mx.cpu for this one.");
  }
  uint64_t n = static_cast<uint64_t>(element_count(spec.shape));
  if (n > kMaxMetalElements) {
    fail(name, "the output of shape " + shape_str(spec.shape) + " has " + std::to_string(n) +
             " elements, more than one GPU dispatch can generate (2^34 - 4 = " +
             std::to_string(kMaxMetalElements) +
             "); generate it in windows (full_shape=, start=) or use stream=mx.cpu.");
  }
}

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
    const std::string& name) {
  InitSpec spec;
  spec.kind = kind;
  spec.scale = scale;
  spec.shift = shift;
  spec.subsequence = subsequence;
  spec.shape = std::move(shape);
  spec.dtype = dtype;
  if (kind == kUniform) {
    if (!low || !high) {
      fail(name, "a uniform draw needs low= and high=.");
    }
    set_uniform_bounds(spec, *low, *high, name);
  }
  if (kind == kTruncatedNormal) {  // N(shift, scale^2) on [low, high]
    if (!low || !high) {
      fail(name, "a truncated normal draw needs low= and high=.");
    }
    set_truncated_normal(spec, shift, scale, *low, *high, name);
  }
  if (full_shape || start) {
    spec.full_shape = full_shape ? *full_shape : spec.shape;
    spec.start = start ? *start : std::vector<int64_t>(spec.shape.size(), 0);
  }
  check_spec(spec, name);
  return spec;
}

// ----------------------------------------------------------------- helpers
StreamParams stream_params(const InitSpec& spec, uint32_t k0, uint32_t k1) {
  StreamParams p;
  p.k0 = k0;
  p.k1 = k1;
  p.subsequence = spec.subsequence;
  p.kind = spec.kind;
  p.scale = spec.scale;
  p.shift = spec.shift;
  p.upper = spec.upper;
  p.lower = spec.lower;
  p.p_lo = spec.p_lo;
  p.c_hi = spec.c_hi;
  p.width = spec.width;
  return p;
}

} // namespace mfi

