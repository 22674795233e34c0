// Chooses the CPU kernel build and splits one evaluation across threads.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <thread>
#include <utility>

#include "cpu_fill.h"
#include "cpu_threads.h"
#include "init_spec.h"
#include "work_split.h"
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
std::atomic<int> g_threads{0};  // 0: the default (default_threads())

const Kernel* current_kernel() {
  const Kernel* k = g_kernel.load();
  if (!k) {
    k = best_kernel();
    g_kernel.store(k);
  }
  return k;
}

// The default when set_num_threads(0) or nothing was asked: read once, as
// neither the cores nor the environment change while the process runs.
int default_threads() {
  static const int n = [] {
    const CoreKinds k = core_kinds();
    return choose_thread_count(k.perf, k.eff,
                               static_cast<int>(std::thread::hardware_concurrency()),
                               std::getenv("MLX_FUSED_INIT_NUM_THREADS"));
  }();
  return n;
}

// The output's 2 MiB pages in elements, and the element where the first
// whole one starts: Linux backs large outputs with such pages
// (cpu_backend.cpp asks for them), and the split cuts at their boundaries.
// (0, 0) elsewhere.
std::pair<int64_t, int64_t> huge_pages(const void* out, OutType type) {
#if defined(__linux__)
  constexpr uintptr_t kHugePage = uintptr_t(2) << 20;
  const uintptr_t item = static_cast<uintptr_t>(out_type_size(type));
  const uintptr_t to_boundary = (kHugePage - reinterpret_cast<uintptr_t>(out) % kHugePage) % kHugePage;
  if (to_boundary % item == 0) {
    return {static_cast<int64_t>(kHugePage / item), static_cast<int64_t>(to_boundary / item)};
  }
#else
  (void)out;
  (void)type;
#endif
  return {0, 0};
}

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
        "[set_num_threads] n must be >= 0 (0 means the default thread count), got " +
        std::to_string(n) + ".");
  }
  g_threads.store(n);
}

int num_threads() {
  const int n = g_threads.load();
  return n > 0 ? n : default_threads();
}

void fill_all(const StreamParams& p, const RunLayout& layout, OutType type, void* out,
              const void* in) {
  const int64_t total = layout.size();
  if (total == 0) {
    return;
  }
  FillFn fn = current_kernel()->fn;
  const auto [page, first_page] = huge_pages(out, type);
  const SplitPlan plan = plan_split(total, num_threads(), page, first_page);
  if (plan.threads <= 1) {
    fn(p, layout, type, 0, total, out, in);
    return;
  }
  if (in != nullptr) {
    // A perturbation may read its own output (in == out): an item redone
    // over it would read perturbed values, so its items are not redoable.
    run_split(plan, total, fill_qos(), [&](int64_t e0, int64_t e1) {
      fn(p, layout, type, e0, e1, out, in);
    });
    return;
  }
  // The kernel writes element e to its out[e]: for dst to receive e0 first,
  // it is given dst moved back by e0 elements (never written before e0).
  const size_t item = out_type_size(type);
  run_split_redoable(plan, total, fill_qos(), out, item,
                     [fn, p, layout, type, item](int64_t e0, int64_t e1, void* dst) {
                       const uintptr_t at = reinterpret_cast<uintptr_t>(dst) - e0 * item;
                       fn(p, layout, type, e0, e1, reinterpret_cast<void*>(at), nullptr);
                     });
}

} // namespace mfi::cpu
