// Where the CPU kernel's time goes, stage by stage, without hardware
// counters (this VM has none): the tile loop of csrc/cpu_fill_impl.h is
// rebuilt here in steps, each adding one stage, and the differences of
// their times per element are the stages' costs.
//
//   philox      Philox4x32-10 only, the four words stored to the lane tiles
//   +normal     ... and the Box-Muller transform (float32, scale)
//   +interleave ... and the copy that interleaves the four lane tiles
//                   (= the kernel's float32 path, cpu_fill_impl.h itself)
//   bf16, f16   the kernel's 16-bit paths (conversion instead of float32)
//   uniform     the kernel's uniform path (float32)
//
// Built once per instruction set with the kernel's own flags by
// benchmarks/profile/run_stages.sh; one thread, a warm 4096^2 output (no
// page faults), best of several repetitions of this thread's CPU time.
#include <algorithm>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <vector>

#include "cpu_fill.h"
#include "fused_init_math.h"
#if defined(__AVX512F__)  // as cpu_fill_avx512.cpp
#include "philox_avx512.h"
#define MFI_PHILOX_BLOCKS ::mfi::x16::philox_blocks
#elif defined(__AVX2__)  // as cpu_fill_avx2.cpp
#include "philox_avx2.h"
#define MFI_PHILOX_BLOCKS ::mfi::x8::philox_blocks
#endif

namespace mfi::cpu::stages {
#include "cpu_fill_impl.h"
} // namespace mfi::cpu::stages

namespace {

using mfi::OutType;
constexpr uint32_t kTile = 256;

// The tile loop with stages switched off; `Stage` 0: Philox only,
// 1: + transform, 2: + interleaving copy (as the kernel). `Portable`: the
// Philox of fused_init_math.h even where the build has its own. Stages 0 and 1
// fold their tiles into one word per tile (a vectorized XOR, about 0.05 ns
// per element) so that the compiler cannot drop the work.
template <int Stage, bool Portable = false>
__attribute__((noinline)) void tiles(uint64_t nblocks, uint32_t k0, uint32_t k1, float scale,
                                     float* out) {
  alignas(64) uint32_t u0[kTile], u1[kTile], u2[kTile], u3[kTile];
  alignas(64) float t0[kTile], t1[kTile], t2[kTile], t3[kTile];
  for (uint64_t b = 0; b < nblocks; b += kTile) {
    const uint32_t lo0 = static_cast<uint32_t>(b);
#if defined(MFI_PHILOX_BLOCKS)
    alignas(64) uint32_t w0[kTile], w1[kTile], w2[kTile], w3[kTile];
    if constexpr (!Portable) {
      MFI_PHILOX_BLOCKS(lo0, 0, 0, 0, k0, k1, kTile, w0, w1, w2, w3);
    }
#endif
    for (uint32_t j = 0; j < kTile; ++j) {
      mfi::Block x;
#if defined(MFI_PHILOX_BLOCKS)
      if constexpr (!Portable) {
        x = mfi::Block{w0[j], w1[j], w2[j], w3[j]};
      } else
#endif
      {
        x = mfi::stream_block(lo0 + j, 0, 0, 0, k0, k1);
      }
      if constexpr (Stage == 0) {
        u0[j] = x.x0; u1[j] = x.x1; u2[j] = x.x2; u3[j] = x.x3;
      } else {
        mfi::Quad v = mfi::normal_block(x, scale);
        t0[j] = v.v0; t1[j] = v.v1; t2[j] = v.v2; t3[j] = v.v3;
      }
    }
    if constexpr (Stage == 0) {
      // Keep the words alive: one store per tile.
      uint32_t acc = 0;
      for (uint32_t j = 0; j < kTile; ++j) acc ^= u0[j] ^ u1[j] ^ u2[j] ^ u3[j];
      std::memcpy(out + 4 * b, &acc, 4);
    } else if constexpr (Stage == 1) {
      // The same reduction as stage 0, so that only the transform differs.
      uint32_t acc = 0;
      for (uint32_t j = 0; j < kTile; ++j) {
        acc ^= mfi::as_uint(t0[j]) ^ mfi::as_uint(t1[j]) ^ mfi::as_uint(t2[j]) ^
            mfi::as_uint(t3[j]);
      }
      std::memcpy(out + 4 * b, &acc, 4);
    } else {
      float* dst = out + 4 * b;
      for (uint32_t j = 0; j < kTile; ++j) {
        dst[4 * j + 0] = t0[j]; dst[4 * j + 1] = t1[j];
        dst[4 * j + 2] = t2[j]; dst[4 * j + 3] = t3[j];
      }
    }
  }
}

// This thread's CPU time, not wall time: the machine may be shared, and a
// single-threaded stage's CPU time hardly depends on what else runs.
double thread_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

template <class F>
double best_ns_per_element(F&& f, int64_t n, int reps) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    double t0 = thread_ns();
    f();
    best = std::min(best, (thread_ns() - t0) / n);
  }
  return best;
}

} // namespace

int main(int argc, char** argv) {
  const int64_t n = int64_t(4096) * 4096;
  const int reps = argc > 1 ? std::atoi(argv[1]) : 7;
  std::vector<float> out(n);
  std::vector<uint16_t> out16(n);
  std::memset(out.data(), 1, n * 4);      // touch every page once
  std::memset(out16.data(), 1, n * 2);
  mfi::StreamParams p;
  p.k0 = 5; p.k1 = 6; p.scale = 0.75f;
  mfi::RunLayout layout;
  layout.run_length = n;
  layout.num_runs = 1;
  const uint64_t nb = n / 4;

  struct Row { const char* name; double ns; };
  std::vector<Row> rows;
#if defined(MFI_PHILOX_BLOCKS)
  rows.push_back({"philox portable", best_ns_per_element([&] { tiles<0, true>(nb, 5, 6, 0.75f, out.data()); }, n, reps)});
#endif
  rows.push_back({"philox", best_ns_per_element([&] { tiles<0>(nb, 5, 6, 0.75f, out.data()); }, n, reps)});
  rows.push_back({"+normal", best_ns_per_element([&] { tiles<1>(nb, 5, 6, 0.75f, out.data()); }, n, reps)});
  rows.push_back({"+interleave", best_ns_per_element([&] { tiles<2>(nb, 5, 6, 0.75f, out.data()); }, n, reps)});
  rows.push_back({"kernel f32", best_ns_per_element([&] { mfi::cpu::stages::fill(p, layout, OutType::Float32, 0, n, out.data()); }, n, reps)});
  rows.push_back({"kernel bf16", best_ns_per_element([&] { mfi::cpu::stages::fill(p, layout, OutType::BFloat16, 0, n, out16.data()); }, n, reps)});
  rows.push_back({"kernel f16", best_ns_per_element([&] { mfi::cpu::stages::fill(p, layout, OutType::Float16, 0, n, out16.data()); }, n, reps)});
  p.kind = mfi::kUniform; p.shift = -0.25f; p.upper = 0.5f;
  rows.push_back({"kernel uniform", best_ns_per_element([&] { mfi::cpu::stages::fill(p, layout, OutType::Float32, 0, n, out.data()); }, n, reps)});
  for (const auto& r : rows) {
    std::printf("%-16s %7.3f ns/element  %7.1f M/s\n", r.name, r.ns, 1e3 / r.ns);
  }
  return 0;
}
