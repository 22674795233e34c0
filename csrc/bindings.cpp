// Python bindings of the extension module mlx_fused_init._ext.
//
// The module is built with NB_DOMAIN mlx so that it shares nanobind's type
// registry with mlx.core: mx.array, mx.Dtype and mx.Stream arguments are
// MLX's own objects, not copies.
#include <functional>
#include <thread>

#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/variant.h>
#include <nanobind/stl/vector.h>

#include "mlx/version.h"

#include "cpu_fill.h"
#include "fused_init.h"
#include "fused_init_math.h"
#include "metal_source.h"
#include "cpu_threads.h"
#include "thread_pool.h"
#include "work_split.h"
#include "x86_features.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

// MLX's StreamOrDevice lists Stream before Device. nanobind's variant caster
// tries the alternatives in order, and with implicit conversions mx.gpu
// becomes a Stream by way of mx.default_stream(), which on a machine without
// a GPU back-end fails with a message that does not say what to do. Listing
// Device first lets the op see the device and explain.
using StreamArg = std::variant<std::monostate, mfi::mx::Device, mfi::mx::Stream>;

mfi::mx::StreamOrDevice to_mlx(const StreamArg& s) {
  if (auto* d = std::get_if<mfi::mx::Device>(&s)) {
    return *d;
  }
  if (auto* st = std::get_if<mfi::mx::Stream>(&s)) {
    return *st;
  }
  return {};
}

} // namespace

#define MFI_STR_(x) #x
#define MFI_STR(x) MFI_STR_(x)

NB_MODULE(_ext, m) {
  m.doc() = "C++ core of mlx-fused-init: the FusedInit and Philox4x32 primitives.";

  m.def(
      "fused_init",
      [](const mfi::mx::array& key,
         std::vector<int64_t> shape,
         mfi::mx::Dtype dtype,
         int kind,
         float scale,
         float shift,
         std::optional<double> low,
         std::optional<double> high,
         uint64_t subsequence,
         std::optional<std::vector<int64_t>> full_shape,
         std::optional<std::vector<int64_t>> start,
         const std::string& name,
         StreamArg s) {
        mfi::InitSpec spec;
        spec.kind = kind;
        spec.scale = scale;
        spec.shift = shift;
        spec.subsequence = subsequence;
        spec.shape = std::move(shape);
        spec.dtype = dtype;
        if (kind == mfi::kUniform) {
          if (!low || !high) {
            throw std::invalid_argument("[" + name + "] a uniform draw needs low= and high=.");
          }
          mfi::set_uniform_bounds(spec, *low, *high, name);
        }
        if (kind == mfi::kTruncatedNormal) {  // N(shift, scale^2) on [low, high]
          if (!low || !high) {
            throw std::invalid_argument(
                "[" + name + "] a truncated normal draw needs low= and high=.");
          }
          mfi::set_truncated_normal(spec, shift, scale, *low, *high, name);
        }
        if (full_shape || start) {
          spec.full_shape = full_shape ? *full_shape : spec.shape;
          spec.start = start ? *start : std::vector<int64_t>(spec.shape.size(), 0);
        }
        return mfi::fused_init(key, std::move(spec), name, to_mlx(s));
      },
      "key"_a,
      "shape"_a,
      "dtype"_a,
      nb::kw_only(),
      "kind"_a,
      "scale"_a = 1.0f,
      "shift"_a = 0.0f,
      "low"_a = nb::none(),
      "high"_a = nb::none(),
      "subsequence"_a = 0,
      "full_shape"_a = nb::none(),
      "start"_a = nb::none(),
      "name"_a = "fused_init",
      "stream"_a = nb::none(),
      R"(Low-level fused initializer node (use the initializers instead).

Builds a lazy array holding elements of the stream of docs/spec.md section 3:
kind 0 is normal (scale * z, or fma(scale, z, shift) when shift != 0; scale
and shift rounded to float32),
kind 1 uniform on [low, high) (low and high rounded to dtype, as MLX does),
kind 3 normal with mean shift and std scale truncated to [low, high].)");

  m.def(
      "philox4x32_10",
      [](const mfi::mx::array& counters, const mfi::mx::array& key, StreamArg s) {
        return mfi::philox4x32_10(counters, key, to_mlx(s));
      },
      "counters"_a,
      "key"_a,
      nb::kw_only(),
      "stream"_a = nb::none(),
      R"(Raw Philox4x32-10 blocks, exactly as Random123 computes them.

Args:
    counters (array): uint32 array of shape ``(n, 4)``.
    key (array): uint32 array of shape ``(2,)``.
    stream (Stream or Device, optional): where to compute.

Returns:
    array: uint32 array of shape ``(n, 4)``.)");

  m.def(
      "uniform_bounds",
      [](double low, double high, mfi::mx::Dtype dtype) {
        mfi::InitSpec spec;
        spec.dtype = dtype;
        mfi::set_uniform_bounds(spec, low, high, "uniform_bounds");
        return std::make_tuple(spec.shift, spec.scale, spec.upper);
      },
      "low"_a, "high"_a, "dtype"_a,
      "(shift, scale, upper) of a uniform draw on [low, high): values are "
      "min(fma(scale, v, shift), upper), v = (x >> 8) * 2^-24, in float32.");

  m.def(
      "truncation_constants",
      [](double mean, double std, double a, double b, mfi::mx::Dtype dtype,
         const std::string& name) {
        mfi::InitSpec spec;
        spec.dtype = dtype;
        mfi::set_truncated_normal(spec, mean, std, a, b, name);
        return std::make_tuple(spec.scale, spec.shift, spec.lower, spec.upper, spec.p_lo,
                               spec.c_hi, spec.width);
      },
      "mean"_a, "std"_a, "a"_a, "b"_a, "dtype"_a, "name"_a = "truncation_constants",
      "(scale, shift, lower, upper, p_lo, c_hi, width) of a truncated normal draw "
      "(docs/spec.md section 3): float32 values the kernels use.");

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
          mfi::cpu::parallel_for(n, [&](int i) {
            runs[i] += 1;
            who[i] = std::hash<std::thread::id>{}(std::this_thread::get_id());
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
      [](int64_t total, int threads) {
        const mfi::cpu::SplitPlan p = mfi::cpu::plan_split(total, threads);
        return std::make_tuple(p.threads, p.chunk, p.chunks);
      },
      "total"_a, "threads"_a, "(threads, chunk, chunks) for a fill of `total` elements.");
  m.def(
      "_cpu_split_test_hook",
      [](int stall_task, int slow_task, int slow_us, int64_t chunk, bool trace) {
        if (slow_us < 0 || chunk < 0) {
          throw std::invalid_argument("[_cpu_split_test_hook] slow_us and chunk must be >= 0.");
        }
        mfi::cpu::set_split_test_hook({stall_task, slow_task, slow_us, chunk, trace});
      },
      nb::kw_only(), "stall_task"_a = -1, "slow_task"_a = -1, "slow_us"_a = 0,
      "chunk"_a = 0, "trace"_a = false,
      "Test hook of the CPU work split (all defaults: off). stall_task claims no "
      "chunk until every chunk is taken; slow_task sleeps slow_us before each "
      "claim; chunk > 0 replaces the planned chunk size; trace records claims.");
  m.def(
      "_cpu_split_trace",
      [] {
        auto [plan, claims] = mfi::cpu::last_split_trace();
        return std::make_tuple(std::make_tuple(plan.threads, plan.chunk, plan.chunks), claims);
      },
      "((threads, chunk, chunks), [(task, chunk index), ...]) of the last "
      "traced fill, claims in order.");
  m.def("set_num_threads", &mfi::cpu::set_num_threads, "n"_a,
        "Threads per CPU evaluation; 0 means the default (all cores; the performance cores on Apple silicon; MLX_FUSED_INIT_NUM_THREADS when set).");
  m.def("num_threads", &mfi::cpu::num_threads,
        "Threads per CPU evaluation.");
  m.def("built_with_metal", &mfi::built_with_metal,
        "Whether this build carries the Metal kernels.");
  m.def("metal_kernel_source", [] { return std::string(mfi::metal_kernel_source()); },
        "The self-contained Metal kernel source (metal/fused_init.metal with its "
        "headers inlined), generated at build time on every platform: what the "
        "GPU path compiles at run time when it has no metallib.");
  m.def(
      "metal_kernel_origin",
      [] {
        mfi::KernelOrigin o = mfi::metal_kernel_origin();
        return std::make_tuple(o.kind, o.detail);
      },
      "(kind, detail): where the GPU kernels come from in this process: "
      "'metallib' (detail: its path), 'jit' (compiled at first use from "
      "metal_kernel_source(); detail: why) or 'none' (no Metal back-end).");

  m.attr("mlx_version_built_against") = MFI_STR(MLX_VERSION_MAJOR) "." MFI_STR(
      MLX_VERSION_MINOR) "." MFI_STR(MLX_VERSION_PATCH);
}
