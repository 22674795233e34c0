// Runs the shared transform (metal/fused_init_math.h) over 32-bit words and
// compares it with float64: the radius r(a) for words a, and (cospi, sinpi)
// of t(c) for words c. With stride 1 that is every one of the 2^32 words.
//   transform_scan <stride> <threads>
// prints one JSON object.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "fused_init_math.h"

namespace {

// Error of a float result in units of the last place of the exact value.
double ulps(float got, double exact) {
  double a = std::fabs(exact);
  int e = a > 0 ? std::ilogb(a) : -149;
  e = std::max(e, -126);
  return std::fabs(static_cast<double>(got) - exact) / std::ldexp(1.0, e - 23);
}

struct Stats {
  double r_max_ulp = 0, cos_max_ulp = 0, sin_max_ulp = 0, angle_max_abs = 0;
  uint32_t r_worst = 0, cos_worst = 0, sin_worst = 0;
  float r_max = 0;
  uint64_t nonfinite = 0, count = 0;
};

void scan(uint64_t begin, uint64_t end, uint64_t stride, Stats& s) {
  for (uint64_t w = begin; w < end; w += stride) {
    uint32_t x = static_cast<uint32_t>(w);
    // Radius: u exactly as the kernels form it (float32), then float64.
    float r = mfi::radius(x);
    float u = std::fma(static_cast<float>(x), 0x1p-32f, 0x1p-33f);
    double r_exact = std::sqrt(-2.0 * std::log(static_cast<double>(u)));
    double e = ulps(r, r_exact);
    if (e > s.r_max_ulp) {
      s.r_max_ulp = e;
      s.r_worst = x;
    }
    s.r_max = std::max(s.r_max, r);
    // Angle.
    mfi::Pair cs = mfi::unit_circle(x);
    double t = static_cast<double>(static_cast<float>(x) * 0x1p-31f);
    double c_exact = std::cos(M_PI * t), s_exact = std::sin(M_PI * t);
    // cospi/sinpi of exact multiples of 1/2 are exact; cos(M_PI * t) is not.
    if (std::fmod(t, 0.5) == 0.0) {
      double k = t / 0.5;
      c_exact = k == 1 || k == 3 ? 0.0 : (k == 2 ? -1.0 : 1.0);
      s_exact = k == 0 || k == 2 || k == 4 ? 0.0 : (k == 1 ? 1.0 : -1.0);
    }
    double ec = ulps(cs.even, c_exact), es = ulps(cs.odd, s_exact);
    if (ec > s.cos_max_ulp) {
      s.cos_max_ulp = ec;
      s.cos_worst = x;
    }
    if (es > s.sin_max_ulp) {
      s.sin_max_ulp = es;
      s.sin_worst = x;
    }
    s.angle_max_abs = std::max({s.angle_max_abs, std::fabs(cs.even - c_exact),
                                std::fabs(cs.odd - s_exact)});
    if (!std::isfinite(r) || !std::isfinite(cs.even) || !std::isfinite(cs.odd)) {
      ++s.nonfinite;
    }
    ++s.count;
  }
}

} // namespace

int main(int argc, char** argv) {
  uint64_t stride = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1;
  unsigned threads = argc > 2 ? std::atoi(argv[2]) : std::thread::hardware_concurrency();
  threads = std::max(1u, threads);
  const uint64_t total = uint64_t(1) << 32;
  // Chunks aligned to the stride so that every thread sees the same words
  // a single thread would.
  uint64_t steps = (total + stride - 1) / stride;
  std::vector<Stats> stats(threads);
  std::vector<std::thread> pool;
  for (unsigned i = 0; i < threads; ++i) {
    uint64_t b = steps * i / threads * stride, e = std::min(total, steps * (i + 1) / threads * stride);
    pool.emplace_back(scan, b, e, stride, std::ref(stats[i]));
  }
  for (auto& t : pool) {
    t.join();
  }
  Stats all;
  for (auto& s : stats) {
    if (s.r_max_ulp > all.r_max_ulp) {
      all.r_max_ulp = s.r_max_ulp;
      all.r_worst = s.r_worst;
    }
    if (s.cos_max_ulp > all.cos_max_ulp) {
      all.cos_max_ulp = s.cos_max_ulp;
      all.cos_worst = s.cos_worst;
    }
    if (s.sin_max_ulp > all.sin_max_ulp) {
      all.sin_max_ulp = s.sin_max_ulp;
      all.sin_worst = s.sin_worst;
    }
    all.angle_max_abs = std::max(all.angle_max_abs, s.angle_max_abs);
    all.r_max = std::max(all.r_max, s.r_max);
    all.nonfinite += s.nonfinite;
    all.count += s.count;
  }
  std::printf(
      "{\"words\": %llu, \"stride\": %llu, \"radius_max_ulp\": %.4f, \"radius_worst_word\": %u, "
      "\"radius_max\": %.9g, \"cospi_max_ulp\": %.4f, \"cospi_worst_word\": %u, "
      "\"sinpi_max_ulp\": %.4f, \"sinpi_worst_word\": %u, \"angle_max_abs_error\": %.4g, "
      "\"nonfinite\": %llu}\n",
      static_cast<unsigned long long>(all.count), static_cast<unsigned long long>(stride),
      all.r_max_ulp, all.r_worst, all.r_max, all.cos_max_ulp, all.cos_worst, all.sin_max_ulp,
      all.sin_worst, all.angle_max_abs, static_cast<unsigned long long>(all.nonfinite));
  return 0;
}
