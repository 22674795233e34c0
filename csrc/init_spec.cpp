// Validation and per-call constants of a fused draw, free of MLX
// (init_spec.h).
#include "init_spec.h"

#include <array>
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

// ln M(x), M(x) = Phi(-x) / phi(x) the Mills ratio, for x in [0, 12].
double log_mills(double x) {
  return std::log(norm_cdf(-x) * 2.50662827463100050242) + 0.5 * x * x;
}

// Standardized bounds are clipped to +-kTruncClip: Phi(-12) = 1.8e-33 is a
// normal float32, so the kernel's probabilities and ndtri_lower's argument
// stay in range; the mass dropped, Phi(-12), is at most 3e-10 of any
// accepted interval (one that reaches within kTruncFar of the mean).
constexpr double kTruncClip = 12.0;
constexpr double kTruncFar = 10.0;

// The inverse CDF maps u to the float32 tail probability p (or c) of the
// element; its values are spaced at most ulp(P) <= P 2^-23 apart, P the
// largest tail probability of the interval (that of its point nearest the
// mean). Where width >= P / 8 that is at most width 2^-20: the mass between
// adjacent outputs is at most 2^-20 (on an interval that holds the mean;
// one on one side of it takes the tail mapping, which resolves the heavy
// float32 cells near its bound). Narrower intervals take the narrow
// mapping (docs/spec.md section 3).
constexpr double kNarrowRatio = 8.0;

// int_{-1}^{y} exp(-lam s - mu s^2) ds by 16-point Gauss-Legendre
// quadrature (the integrand is entire and, for the narrow mapping's |lam|
// <= 0.07 and mu <= 0.004, its 32nd derivative is negligible: the rule is
// exact to float64 rounding).
double tilted_mass(double y, double lam, double mu) {
  static const auto rule = [] {
    constexpr int n = 16;
    std::array<double, 2 * n> xw{};
    for (int i = 0; i < n; ++i) {
      double x = std::cos(M_PI * (i + 0.75) / (n + 0.5));
      double dp = 1.0;
      for (int it = 0; it < 100; ++it) {
        double p0 = 1.0, p1 = x;
        for (int k = 2; k <= n; ++k) {
          double p2 = ((2 * k - 1) * x * p1 - (k - 1) * p0) / k;
          p0 = p1;
          p1 = p2;
        }
        dp = n * (x * p1 - p0) / (x * x - 1.0);
        double dx = p1 / dp;
        x -= dx;
        if (std::fabs(dx) < 1e-17) {
          break;
        }
      }
      xw[2 * i] = x;
      xw[2 * i + 1] = 2.0 / ((1.0 - x * x) * dp * dp);
    }
    return xw;
  }();
  const double h = 0.5 * (y + 1.0);
  double sum = 0.0;
  for (int i = 0; i < 16; ++i) {
    double s = -1.0 + h * (rule[2 * i] + 1.0);
    sum += rule[2 * i + 1] * std::exp(-lam * s - mu * s * s);
  }
  return h * sum;
}

// The narrow mapping's polynomial: with c and d the centre and half-width
// of the standardized interval, z = c + d Y has density proportional to
// exp(-lam Y - mu Y^2) on Y in [-1, 1] (lam = c d, mu = d^2 / 2). Y(y), the
// inverse CDF taking y in [-1, 1] to Y (y = 2 F(Y) - 1), is solved by
// Newton's method at the six Chebyshev nodes and interpolated by a degree-5
// polynomial a_0 + a_1 y + ... + a_5 y^5 (interpolation error below 1e-8
// over the narrow mapping's range; tests/test_truncated_normal.py).
std::array<double, 6> narrow_fit(double lam, double mu) {
  constexpr int n = 6;
  const double total = tilted_mass(1.0, lam, mu);
  double m[n][n + 1];
  for (int j = 0; j < n; ++j) {
    const double y = std::cos(M_PI * (2 * j + 1) / (2.0 * n));
    const double target = 0.5 * (1.0 + y) * total;
    double Y = y;
    for (int it = 0; it < 8; ++it) {
      Y -= (tilted_mass(Y, lam, mu) - target) / std::exp(-lam * Y - mu * Y * Y);
    }
    double pw = 1.0;
    for (int k = 0; k < n; ++k) {
      m[j][k] = pw;
      pw *= y;
    }
    m[j][n] = Y;
  }
  // Gaussian elimination with partial pivoting (a 6x6 Vandermonde system
  // on Chebyshev nodes: well conditioned).
  for (int col = 0; col < n; ++col) {
    int piv = col;
    for (int r = col + 1; r < n; ++r) {
      if (std::fabs(m[r][col]) > std::fabs(m[piv][col])) {
        piv = r;
      }
    }
    for (int k = 0; k <= n; ++k) {
      std::swap(m[col][k], m[piv][k]);
    }
    for (int r = col + 1; r < n; ++r) {
      double f = m[r][col] / m[col][col];
      for (int k = col; k <= n; ++k) {
        m[r][k] -= f * m[col][k];
      }
    }
  }
  std::array<double, n> a{};
  for (int r = n - 1; r >= 0; --r) {
    double v = m[r][n];
    for (int k = r + 1; k < n; ++k) {
      v -= m[r][k] * a[k];
    }
    a[r] = v / m[r][r];
  }
  return a;
}

// The smallest value of dtype t that is >= x (x not NaN); -inf for -inf,
// +inf when there is none.
float round_up_to(double x, OutType t) {
  if (x == -std::numeric_limits<double>::infinity()) {
    return -std::numeric_limits<float>::infinity();
  }
  float f = to_dtype(x, t);
  if (static_cast<double>(f) < x) {
    f = f == -std::numeric_limits<float>::infinity() ? -static_cast<float>(largest_finite(t))
                                                      : above(f, t);
  }
  return f;
}

// The largest value of dtype t that is <= x.
float round_down_to(double x, OutType t) {
  return -round_up_to(-x, t);
}

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
  // The tail probability of the interval's point nearest the mean.
  const double nearest = lo <= 0.0 && hi >= 0.0 ? 0.0 : std::fmin(std::fabs(lo), std::fabs(hi));
  if (width >= norm_cdf(-nearest) / kNarrowRatio && lo < 0.0 && hi > 0.0) {
    spec.narrow = mfi::kTnInverseCdf;
    spec.p_lo = static_cast<float>(p_lo);
    spec.c_hi = static_cast<float>(c_hi);
    spec.width = static_cast<float>(width);
    spec.c4 = spec.c5 = 0.0f;
  } else if (width >= norm_cdf(-nearest) / kNarrowRatio) {
    // The tail mapping (fused_init_math.h, truncated_tail_value): the
    // interval lies on one side of the mean; n = |its bound nearer the
    // mean|, points n + delta mirrored for a lower interval.
    const bool upper_side = lo >= 0.0;
    const double n = upper_side ? lo + 0.0 : 0.0 - hi;  // +0, not -0, at 0
    const double tail = norm_cdf(-n);
    const float a32 = static_cast<float>(n);
    const double a = a32;
    const double sign = upper_side ? 1.0 : -1.0;
    // The output anchor mean +- std a32 (exact in float64: std a32 is a
    // product of two float32 values), split into float32 X_a + e_a.
    const double anchor = mu + sign * sd * a;
    const float x_a = static_cast<float>(anchor);
    spec.narrow = upper_side ? mfi::kTnTailUpper : mfi::kTnTailLower;
    spec.scale = static_cast<float>(sign * sd);
    spec.shift = x_a;
    spec.p_lo = a32;
    spec.c_hi = static_cast<float>(tail);
    spec.width = static_cast<float>(width / tail);
    spec.c4 = static_cast<float>(0.5 * (a - n) * (a + n) + log_mills(n) - log_mills(a));
    spec.c5 = static_cast<float>(anchor - static_cast<double>(x_a));
  } else {
    // The narrow mapping: x(y) = X0 + e0 + e1 y + ... + e5 y^5 =
    // mean + std (c + d Y(y)); X0 is float32, e0 the float64 remainder of
    // the constant term (so the sum has float64's precision).
    const double c = 0.5 * (lo + hi), d = 0.5 * (hi - lo);
    const std::array<double, 6> a6 = narrow_fit(c * d, 0.5 * d * d);
    const double centre = mu + sd * (c + d * a6[0]);
    const float x0 = static_cast<float>(centre);
    const double slope = sd * d;
    spec.narrow = mfi::kTnNarrow;
    spec.shift = x0;
    spec.width = static_cast<float>(centre - static_cast<double>(x0));  // e0
    spec.scale = static_cast<float>(slope * a6[1]);                      // e1
    spec.p_lo = static_cast<float>(slope * a6[2]);                       // e2
    spec.c_hi = static_cast<float>(slope * a6[3]);                       // e3
    spec.c4 = static_cast<float>(slope * a6[4]);
    spec.c5 = static_cast<float>(slope * a6[5]);
  }
  // The clamp: the stream's reach, mean -+ 12 std in float32, within [a, b]
  // rounded inward to the dtype. Outputs are then rounded to the dtype
  // (nearest even), as normal() rounds them: they stay in [a, b], since its
  // inward-rounded bounds are values of the dtype, but a reach that holds
  // no value of the dtype is no error (normal(1001, 1e-3) in bfloat16 is
  // 1000).
  const float a_in = round_up_to(a, spec.dtype);
  const float b_in = round_down_to(b, spec.dtype);
  if (!(a_in <= b_in)) {
    std::ostringstream os;
    os << "no " << out_type_name(spec.dtype) << " value lies in [" << a << ", " << b << "].";
    fail(name, os.str());
  }
  const float reach_lo = static_cast<float>(mu - kTruncClip * sd);
  const float reach_hi = static_cast<float>(mu + kTruncClip * sd);
  const float lower = std::fmin(std::fmax(reach_lo, a_in), b_in);
  const float upper = std::fmax(std::fmin(reach_hi, b_in), a_in);
  const double biggest = std::fmax(std::fabs(double(lower)), std::fabs(double(upper)));
  if (biggest > largest_finite(spec.dtype)) {
    std::ostringstream os;
    os << "values up to " << biggest << " would overflow " << out_type_name(spec.dtype) << " (largest finite "
       << largest_finite(spec.dtype) << "); lower the scale or use float32.";
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
      mfi::as_uint(c4) == mfi::as_uint(o.c4) && mfi::as_uint(c5) == mfi::as_uint(o.c5) &&
      narrow == o.narrow &&
      subsequence == o.subsequence && full_shape == o.full_shape &&
      start == o.start && shape == o.shape && dtype == o.dtype;
}

void check_spec(InitSpec& spec, const std::string& name) {
  if (spec.kind != kNormal && spec.kind != kUniform && spec.kind != kTruncatedNormal &&
      spec.kind != kPerturb) {
    fail(name, "unknown transform kind " + std::to_string(spec.kind) + ".");
  }
  if (spec.kind == kUniform && !(spec.upper >= spec.shift)) {
    fail(name, "uniform bounds were not set (set_uniform_bounds).");
  }
  if (spec.kind == kTruncatedNormal &&
      !((spec.narrow != 0u || spec.width > 0.0f) && spec.lower <= spec.upper)) {
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
  // A perturbation's values depend on its input: like MLX's own w + s * z,
  // it overflows only where that sum does.
  double biggest = spec.kind == kPerturb ? 0.0
      : spec.kind == kNormal
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
  p.c4 = spec.c4;
  p.c5 = spec.c5;
  p.narrow = spec.narrow;
  return p;
}

} // namespace mfi

