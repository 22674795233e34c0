// Chooses the CPU kernel build and splits one evaluation across threads.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <thread>

#include "cpu_fill.h"
#include "thread_pool.h"
#if defined(MFI_HAVE_AVX2)
#include "x86_features.h"
#endif

namespace mfi::cpu {

namespace {

struct Kernel {
  const char* name;
  FillFn fn;
  bool (*supported)();
};

bool always() {
  return true;
}

#if defined(MFI_HAVE_AVX2)
// CPUID and XCR0 are read once; neither changes while the process runs.
const x86::CpuidBits& cpuid() {
  static const x86::CpuidBits bits = x86::read_cpuid();
  return bits;
}
bool cpu_has_avx2_fma() {
  return x86::avx2_usable(cpuid());
}
#endif
#if defined(MFI_HAVE_AVX512)
bool cpu_has_avx512() {
  return x86::avx512_usable(cpuid());
}
#endif

// Fastest first.
const Kernel kKernels[] = {
#if defined(MFI_HAVE_AVX512)
    {"avx512", &avx512::fill, &cpu_has_avx512},
#endif
#if defined(MFI_HAVE_AVX2)
    {"avx2", &avx2::fill, &cpu_has_avx2_fma},
#endif
#if defined(MFI_HAVE_NEON)
    {"neon", &neon::fill, &always},
#endif
    {"scalar", &scalar::fill, &always},
};

const Kernel* best_kernel() {
  for (const auto& k : kKernels) {
    if (k.supported()) {
      return &k;
    }
  }
  return &kKernels[std::size(kKernels) - 1];
}

std::atomic<const Kernel*> g_kernel{nullptr};
std::atomic<int> g_threads{-1};  // -1: not read from the environment yet

const Kernel* current_kernel() {
  const Kernel* k = g_kernel.load();
  if (!k) {
    k = best_kernel();
    g_kernel.store(k);
  }
  return k;
}

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

// Below this many elements per thread, handing work to another thread
// costs more than it saves: a pool worker wakes in ~5-10 us (a new thread
// took ~20 us; benchmarks/results/profile.md), and the kernels fill 2^15
// elements in 35 (avx512) to 50 (avx2) us.
constexpr int64_t kMinElementsPerThread = int64_t(1) << 15;

} // namespace

void set_kernel(const std::string& name) {
  if (name == "auto") {
    g_kernel.store(best_kernel());
    return;
  }
  for (const auto& k : kKernels) {
    if (name == k.name) {
      if (!k.supported()) {
        throw std::invalid_argument(
            "[set_cpu_kernel] This CPU does not support the '" + name + "' kernel.");
      }
      g_kernel.store(&k);
      return;
    }
  }
  throw std::invalid_argument(
      "[set_cpu_kernel] Unknown kernel '" + name + "'; this build has: auto, " +
      available_kernels() + ".");
}

std::string kernel_name() {
  return current_kernel()->name;
}

std::string available_kernels() {
  std::string out;
  for (const auto& k : kKernels) {
    if (k.supported()) {
      out += out.empty() ? "" : ", ";
      out += k.name;
    }
  }
  return out;
}

void set_num_threads(int n) {
  if (n < 0) {
    throw std::invalid_argument(
        "[set_num_threads] n must be >= 0 (0 means all hardware threads), got " +
        std::to_string(n) + ".");
  }
  g_threads.store(n);
}

int num_threads() {
  int n = g_threads.load();
  if (n < 0) {
    n = 0;
    if (const char* env = std::getenv("MLX_FUSED_INIT_NUM_THREADS")) {
      n = std::max(0, std::atoi(env));
    }
    g_threads.store(n);
  }
  return n == 0 ? hardware_threads() : n;
}

void fill_all(const StreamParams& p, const RunLayout& layout, OutType type, void* out) {
  const int64_t total = layout.size();
  if (total == 0) {
    return;
  }
  FillFn fn = current_kernel()->fn;
  int64_t nt = std::min<int64_t>(num_threads(), (total + kMinElementsPerThread - 1) / kMinElementsPerThread);
  if (nt <= 1) {
    fn(p, layout, type, 0, total, out);
    return;
  }
  // Equal chunks, rounded to 64 elements so that two threads never write
  // the same cache line. The split cannot change any value: each element
  // depends only on its own stream index.
  const int64_t chunk = ((total + nt - 1) / nt + 63) / 64 * 64;
  const int parts = static_cast<int>((total + chunk - 1) / chunk);
  parallel_for(parts, [&](int i) {
    const int64_t e0 = i * chunk;
    fn(p, layout, type, e0, std::min(total, e0 + chunk), out);
  });
}

} // namespace mfi::cpu
