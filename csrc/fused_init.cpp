// The op functions (validation, graph nodes) and the backend-independent
// parts of the primitives.
#include "fused_init.h"

#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "mlx/device.h"
#include "mlx/ops.h"

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

double largest_finite(mx::Dtype t) {
  if (t == mx::float16) {
    return 65504.0;
  }
  if (t == mx::bfloat16) {
    return 3.3895313892515355e38;
  }
  return std::numeric_limits<float>::max();
}

std::string dtype_str(mx::Dtype t) {
  std::ostringstream os;
  os << t;
  return os.str();
}

[[noreturn]] void fail(const std::string& name, const std::string& msg) {
  throw std::invalid_argument("[" + name + "] " + msg);
}

void check_key(const mx::array& key, const std::string& name) {
  if (key.dtype() != mx::uint32 || key.shape() != mx::Shape{2}) {
    std::ostringstream os;
    os << "key must be a uint32 array of shape (2,) as made by "
          "mx.random.key(seed), but got dtype "
       << key.dtype() << " and shape " << key.shape() << ".";
    fail(name, os.str());
  }
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
  unsigned __int128 bytes = n * static_cast<unsigned __int128>(spec.dtype.size());
  if (bytes > static_cast<unsigned __int128>(std::numeric_limits<int64_t>::max())) {
    fail(name, "the output of shape " + shape_str(spec.shape) + " has " + u128_str(n) +
             " elements (" + u128_str(bytes) + " bytes as " + dtype_str(spec.dtype) +
             "), more than an MLX array can hold (2^63 - 1 bytes).");
  }
}

// The key as the GPU kernels get it: through MLX's Contiguous, so that
// key[::-1], key[::2] or a broadcast key reach the kernel as two adjacent
// words. Always the node, never a test of key.strides() here: a lazy
// view's strides are known only once it is evaluated. Contiguous shares
// the buffer of a key that already is contiguous, so it costs nothing. The
// kernels' key_stride is signed as well (metal_dispatch.h), so that any
// stride that did reach them would still be read correctly.
mx::array gpu_key(const mx::array& key, const mx::Stream& stream) {
  return stream.device == mx::Device::gpu ? mx::contiguous(key, false, stream) : key;
}

// Resolves the stream, refusing a GPU one before MLX's to_stream() does
// (which, on a CPU-only MLX, fails without saying what to do instead).
mx::Stream checked_stream(mx::StreamOrDevice s, const std::string& name) {
  mx::Device device = mx::default_device();
  if (auto* st = std::get_if<mx::Stream>(&s)) {
    device = st->device;
  } else if (auto* dev = std::get_if<mx::Device>(&s)) {
    device = *dev;
  }
  if (device.type == mx::Device::gpu && !built_with_metal()) {
    throw std::runtime_error(
        "[" + name + "] This build of mlx-fused-init has no GPU kernel (it was "
        "built without Metal). Pass stream=mx.cpu, or call "
        "mx.set_default_device(mx.cpu).");
  }
  return mx::to_stream(s);
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
float to_dtype(double x, mx::Dtype t) {
  float f = static_cast<float>(x);
  if (t == mx::float16) {
    return f16_bits_to_float(mfi::f32_to_f16_bits(f));
  }
  if (t == mx::bfloat16) {
    return mfi::as_float(static_cast<uint32_t>(mfi::f32_to_bf16_bits(f)) << 16);
  }
  return f;
}

// The largest value of dtype t below v (v a finite value of t).
float below(float v, mx::Dtype t) {
  if (t == mx::float32) {
    return std::nextafter(v, -std::numeric_limits<float>::infinity());
  }
  uint16_t bits = t == mx::float16 ? mfi::f32_to_f16_bits(v) : mfi::f32_to_bf16_bits(v);
  if ((bits & 0x7FFF) == 0) {
    bits = 0x8001;  // below +-0: minus the smallest subnormal
  } else if (bits & 0x8000) {
    bits += 1;  // negative: one step away from zero
  } else {
    bits -= 1;
  }
  return t == mx::float16 ? f16_bits_to_float(bits)
                          : mfi::as_float(static_cast<uint32_t>(bits) << 16);
}

// The smallest value of dtype t above v (v a finite value of t).
float above(float v, mx::Dtype t) {
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
    os << "values up to " << biggest << " would overflow " << spec.dtype << " (largest finite "
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
    os << "no " << spec.dtype << " value lies in [" << a << ", " << b << "].";
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
    os << "bounds up to " << biggest << " overflow " << spec.dtype << " (largest finite "
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

mx::array fused_init(
    const mx::array& key,
    InitSpec spec,
    const std::string& name,
    mx::StreamOrDevice s) {
  check_key(key, name);
  if (spec.dtype != mx::float32 && spec.dtype != mx::float16 &&
      spec.dtype != mx::bfloat16) {
    fail(name,
         "dtype must be float32, float16 or bfloat16, but got " +
             dtype_str(spec.dtype) + ".");
  }
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
    os << "values up to " << biggest << " would overflow " << spec.dtype
       << " (largest finite " << largest_finite(spec.dtype)
       << "); lower the scale or use float32.";
    fail(name, os.str());
  }
  check_output_size(spec, name);
  mx::Stream stream = checked_stream(s, name);
  if (stream.device == mx::Device::gpu) {
    // The GPU kernel's limits, when the graph is built rather than at
    // evaluation (by then the output would already be allocated).
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
  mx::Shape out_shape(spec.shape.begin(), spec.shape.end());
  mx::Dtype dtype = spec.dtype;
  return mx::array(
      std::move(out_shape),
      dtype,
      std::make_shared<FusedInit>(stream, std::move(spec)),
      {gpu_key(key, stream)});
}

mx::array philox4x32_10(
    const mx::array& counters,
    const mx::array& key,
    mx::StreamOrDevice s) {
  const std::string name = "philox4x32_10";
  check_key(key, name);
  if (counters.dtype() != mx::uint32 || counters.ndim() != 2 ||
      counters.shape(1) != 4) {
    std::ostringstream os;
    os << "counters must be a uint32 array of shape (n, 4), but got dtype "
       << counters.dtype() << " and shape " << counters.shape() << ".";
    fail(name, os.str());
  }
  mx::Stream stream = checked_stream(s, name);
  // The GPU kernel reads rows of four consecutive words.
  mx::array c = stream.device == mx::Device::gpu
      ? mx::contiguous(counters, false, stream)
      : counters;
  return mx::array(
      counters.shape(),
      mx::uint32,
      std::make_shared<Philox4x32>(stream),
      {c, gpu_key(key, stream)});
}

// ------------------------------------------------------------ transforms
std::vector<mx::array> RandomPrimitive::jvp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>&,
    const std::vector<int>&) {
  return {mx::zeros(output_shapes(primals)[0], output_dtype(), stream())};
}

std::vector<mx::array> RandomPrimitive::vjp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>&,
    const std::vector<int>& argnums,
    const std::vector<mx::array>&) {
  std::vector<mx::array> out;
  for (int i : argnums) {
    out.push_back(mx::zeros_like(primals[i], stream()));
  }
  return out;
}

bool FusedInit::is_equivalent(const mx::Primitive& other) const {
  return spec_ == static_cast<const FusedInit&>(other).spec_;
}

std::vector<mx::Shape> FusedInit::output_shapes(const std::vector<mx::array>&) {
  return {mx::Shape(spec_.shape.begin(), spec_.shape.end())};
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

OutType out_type(mx::Dtype dtype) {
  if (dtype == mx::float16) {
    return OutType::Float16;
  }
  if (dtype == mx::bfloat16) {
    return OutType::BFloat16;
  }
  return OutType::Float32;
}

} // namespace mfi
