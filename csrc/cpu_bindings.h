// The CPU kernel's controls and test hooks, bound identically into both
// extension modules: the native one (bindings.cpp, which links MLX) and the
// portable one (portable_bindings.cpp, which does not). Each module holds
// its own copy of the MLX-free kernel library, so these act on the module
// they are called through; mlx_fused_init._backend exposes the one in use.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include "cpu_fill.h"
#include "cpu_placement.h"
#include "cpu_threads.h"
#include "thread_pool.h"
#include "work_split.h"
#include "x86_features.h"

namespace mfi {

inline void bind_cpu_controls(nanobind::module_& m) {
  namespace nb = nanobind;
  using namespace nb::literals;
  m.def("set_cpu_kernel", &mfi::cpu::set_kernel, "name"_a,
        "Select the CPU kernel build: 'auto', 'scalar', 'avx2', 'avx512' or "
        "'neon'.");
  m.def("cpu_kernel", &mfi::cpu::kernel_name, "The CPU kernel build in use.");
  m.def("available_cpu_kernels", &mfi::cpu::available_kernels,
        "The CPU kernel builds this machine can run, fastest first.");
  // For tests/test_cpu_paths.py: the x86 kernel decision on given CPUID
  // and XCR0 values, and this machine's (all zero off x86).
  m.def(
      "_x86_usable",
      [](uint32_t leaf1_ecx, uint32_t leaf7_ebx, uint64_t xcr0, uint32_t max_leaf) {
        mfi::x86::CpuidBits c{leaf1_ecx, leaf7_ebx, xcr0, max_leaf};
        return std::make_tuple(mfi::x86::avx2_usable(c), mfi::x86::avx512_usable(c));
      },
      "leaf1_ecx"_a, "leaf7_ebx"_a, "xcr0"_a, "max_leaf"_a,
      "(avx2, avx512): whether those kernel builds may run, given CPUID.1:ECX, "
      "CPUID.(7,0):EBX, XCR0 and CPUID.0:EAX.");
  m.def(
      "_x86_cpuid",
      [] {
        mfi::x86::CpuidBits c = mfi::x86::read_cpuid();
        return std::make_tuple(c.leaf1_ecx, c.leaf7_ebx, c.xcr0, c.max_leaf);
      },
      "This machine's (leaf1_ecx, leaf7_ebx, xcr0, max_leaf).");
  m.def("_cpu_pool_size", &mfi::cpu::pool_size,
        "Worker threads the CPU fill pool holds now (for tests).");
  m.def(
      "_cpu_pool_run",
      [](int n) {
        // Each task records which thread ran it; the GIL is released so that
        // no task can depend on it.
        std::vector<int> runs(std::max(n, 0), 0);
        std::vector<uint64_t> who(std::max(n, 0), 0);
        {
          nb::gil_scoped_release release;
          // One item per thread, each slowed a little so that the workers
          // wake before the caller has taken every item.
          mfi::cpu::parallel_for(n, n, [&](int64_t i, int) {
            runs[i] += 1;
            who[i] = std::hash<std::thread::id>{}(std::this_thread::get_id());
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
          });
        }
        return std::make_tuple(runs, who);
      },
      "n"_a,
      "Run n tasks on the CPU fill pool (for tests): (times each task ran, "
      "a hash of the thread that ran it).");
  // For tests/test_cpu_paths.py and benchmarks/bench_init.py: the default
  // thread-count rule on given core counts, the work split and its hooks.
  m.def(
      "_cpu_thread_count",
      [](int perf, int eff, int hw, std::optional<std::string> env) {
        return mfi::cpu::choose_thread_count(perf, eff, hw, env ? env->c_str() : nullptr);
      },
      "perf_cores"_a, "eff_cores"_a, "hw_threads"_a, "env"_a = nb::none(),
      "The default thread count for these core counts and this value of "
      "MLX_FUSED_INIT_NUM_THREADS (None: unset).");
  m.def(
      "_cpu_core_kinds",
      [] {
        const mfi::cpu::CoreKinds k = mfi::cpu::core_kinds();
        return std::make_tuple(k.perf, k.eff);
      },
      "This machine's (performance, efficiency) physical cores; (0, 0) off macOS.");
  m.def(
      "_cpu_split_plan",
      [](int64_t total, int threads, int64_t page, int64_t first_page) {
        const mfi::cpu::SplitPlan p = mfi::cpu::plan_split(total, threads, page, first_page);
        return std::make_tuple(p.threads, p.chunk, p.chunks, p.shift, p.place);
      },
      "total"_a, "threads"_a, "page"_a = 0, "first_page"_a = 0,
      "(threads, chunk, chunks, shift, place) for a fill of `total` elements "
      "(page: elements per huge page, the first starting at element first_page).");
  m.def(
      "_cpu_placement_spread",
      [](std::vector<int> cpus, int caller_cpu, int threads) {
        return mfi::cpu::placement::spread(cpus, caller_cpu, threads);
      },
      "cpus"_a, "caller_cpu"_a, "threads"_a,
      "The CPU of each participant of a placed fill (empty: not placed).");
  m.def(
      "_cpu_split_test_hook",
      [](int stall_task, int slow_task, int slow_us, int hold_task, int hold_us, int64_t chunk,
         bool no_place, bool no_redo, bool trace) {
        if (slow_us < 0 || hold_us < 0 || chunk < 0) {
          throw std::invalid_argument(
              "[_cpu_split_test_hook] slow_us, hold_us and chunk must be >= 0.");
        }
        mfi::cpu::set_split_test_hook(
            {{stall_task, slow_task, slow_us, hold_task, hold_us}, chunk, no_place, no_redo, trace});
      },
      nb::kw_only(), "stall_task"_a = -1, "slow_task"_a = -1, "slow_us"_a = 0,
      "hold_task"_a = -1, "hold_us"_a = 0, "chunk"_a = 0, "no_place"_a = false,
      "no_redo"_a = false, "trace"_a = false,
      "Test hook of the CPU work split (all defaults: off). stall_task claims no "
      "chunk until every chunk is taken; slow_task sleeps slow_us before each "
      "claim; hold_task (a worker) sleeps hold_us before publishing each item of "
      "a redoable fill; chunk > 0 replaces the planned chunk size (and its page alignment); "
      "no_place leaves the threads unpinned; no_redo has the workers fill in place "
      "(nothing redone by the caller); trace records claims.");
  m.def(
      "_cpu_split_trace",
      [] {
        auto [plan, claims] = mfi::cpu::last_split_trace();
        return std::make_tuple(std::make_tuple(plan.threads, plan.chunk, plan.chunks, plan.shift), claims);
      },
      "((threads, chunk, chunks, shift), [(task, chunk index), ...]) of the last "
      "traced fill, claims in order.");
  m.def("set_num_threads", &mfi::cpu::set_num_threads, "n"_a,
        "Threads per CPU evaluation; 0 means the default (all cores; the performance cores on Apple silicon; MLX_FUSED_INIT_NUM_THREADS when set).");
  m.def("num_threads", &mfi::cpu::num_threads,
        "Threads per CPU evaluation.");
}

} // namespace mfi
