// Runs the Metal kernel source on the CPU: compiled with include/metal_stdlib
// in place of Metal's, it calls the kernel function once for every thread
// of the dispatch that the host code (csrc/metal_dispatch.h) plans, and
// exposes a C API that tests/test_metal_shim.py calls through ctypes.
//
// The kernel source is metal/fused_init.metal, or, with
// -DMFI_SHIM_KERNEL_SOURCE="path", any other file: the tests pass the
// embedded source of the extension (_ext.metal_kernel_source(), written to
// a file), the very text the GPU path compiles at run time.
//
// Every output buffer the kernels write lies between two guard regions
// filled with canary bytes; a dispatch that changes one fails with an
// "out-of-bounds write" error (an index one past the end, say).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

// The output buffer between canary guards (shared with the portable
// kernels' drivers).
#include "../shim_common/guarded.h"

// The shim, after every standard header (it defines `device`, `constant`
// and `thread`) and before anything that includes fused_init_math.h, so
// that the header takes its Metal branch everywhere in this file.
#include <metal_stdlib>

namespace mfi {
struct MetalParams;
struct DispatchPlan;
}

namespace {

// The truncated normal's constants for the next mfi_shim_fused_init call
// (mfi_shim_set_truncation), kept apart so that its signature stays.
float g_truncation[6] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
uint32_t g_narrow = 0u;

using Launch = void (*)(void* out, const mfi::MetalParams& p, const int64_t* extent,
                        const uint64_t* stride, const uint32_t* key, const mfi::DispatchPlan& plan);

std::map<std::string, Launch>& registry() {
  static std::map<std::string, Launch> r;
  return r;
}

bool register_kernel(const char* name, Launch fn) {
  registry()[name] = fn;
  return true;
}

template <typename T, int V>
void run_grid(void* out, const mfi::MetalParams& p, const int64_t* extent,
              const uint64_t* stride, const uint32_t* key, const mfi::DispatchPlan& plan);

// The perturbation kernels take their input w as well.
using PerturbLaunch = void (*)(void* out, const void* in, const mfi::MetalParams& p,
                               const int64_t* extent, const uint64_t* stride,
                               const uint32_t* key, const mfi::DispatchPlan& plan);

std::map<std::string, PerturbLaunch>& perturb_registry() {
  static std::map<std::string, PerturbLaunch> r;
  return r;
}

bool register_perturb(const char* name, PerturbLaunch fn) {
  perturb_registry()[name] = fn;
  return true;
}

template <typename T>
void run_perturb_grid(void* out, const void* in, const mfi::MetalParams& p,
                      const int64_t* extent, const uint64_t* stride, const uint32_t* key,
                      const mfi::DispatchPlan& plan);

} // namespace

// Each instantiation in the kernel source registers itself under its name,
// whatever the dtypes and transform variants it lists.
#define MFI_INSTANTIATE_FUSED_INIT(tname, T, vname, V) \
  static const bool mfi_registered_##tname##_##vname = \
      register_kernel("fused_init_" #tname "_" #vname, &run_grid<T, V>);
#define MFI_INSTANTIATE_FUSED_PERTURB(tname, T)          \
  static const bool mfi_registered_perturb_##tname =   \
      register_perturb("fused_perturb_" #tname, &run_perturb_grid<T>);

#if defined(MFI_SHIM_KERNEL_SOURCE)
#include MFI_SHIM_KERNEL_SOURCE
#else
#include "fused_init.metal"
#endif

// The host-side code of csrc/, exactly as metal_backend.cpp uses it.
#include "fill_job.h"
#include "metal_dispatch.h"

namespace {

// dispatch_threads semantics: threadgroups of plan.group threads, the last
// one cut short at plan.threads; the kernel sees only its grid position.
// (Not named `thread`: the shim defines Metal's address spaces away.)
template <typename Body>
void for_each_thread(const mfi::DispatchPlan& plan, Body body) {
  uint64_t groups = (plan.threads + plan.group - 1) / plan.group;
  for (uint64_t g = 0; g < groups; ++g) {
    for (uint64_t t = 0; t < plan.group; ++t) {
      uint64_t gid = g * plan.group + t;
      if (gid < plan.threads) {
        body(static_cast<uint>(gid));
      }
    }
  }
}

template <typename T, int V>
void run_grid(void* out, const mfi::MetalParams& p, const int64_t* extent,
              const uint64_t* stride, const uint32_t* key, const mfi::DispatchPlan& plan) {
  for_each_thread(plan, [&](uint gid) {
    fused_init<T, V>(static_cast<T*>(out), p, extent, stride, key, gid);
  });
}

template <typename T>
void run_perturb_grid(void* out, const void* in, const mfi::MetalParams& p,
                      const int64_t* extent, const uint64_t* stride, const uint32_t* key,
                      const mfi::DispatchPlan& plan) {
  for_each_thread(plan, [&](uint gid) {
    fused_perturb<T>(static_cast<T*>(out), p, extent, stride, key, static_cast<const T*>(in),
                     gid);
  });
}

// The host steps of every fused dispatch (metal_backend.cpp): the window's
// layout, the parameter block, the outer extents and strides as the MTL
// encoder gets them, and the grid.
struct Dispatch {
  mfi::RunLayout layout;
  mfi::MetalParams params;
  std::vector<int64_t> extent;
  std::vector<uint64_t> stride;
  mfi::DispatchPlan plan;
};

Dispatch prepare(const mfi::StreamParams& sp, int ndim, const int64_t* full_shape,
                 const int64_t* start, const int64_t* shape, int32_t key_stride,
                 uint64_t max_group) {
  Dispatch d;
  d.layout = mfi::make_run_layout(std::vector<int64_t>(full_shape, full_shape + ndim),
                                  std::vector<int64_t>(start, start + ndim),
                                  std::vector<int64_t>(shape, shape + ndim));
  d.params = mfi::make_metal_params(sp, d.layout, key_stride);
  // MTL encoders get at least one element for an empty vector.
  d.extent = d.layout.outer_extent;
  d.stride = d.layout.outer_stride;
  d.extent.resize(std::max<size_t>(1, d.extent.size()), 1);
  d.stride.resize(std::max<size_t>(1, d.stride.size()), 0);
  d.plan = mfi::plan_fused_init(d.params.size, max_group);
  return d;
}

size_t item_size(mfi::OutType t) {
  return t == mfi::OutType::Float32 ? 4 : 2;
}

} // namespace

extern "C" {

// The steps of FusedInit::eval_gpu (csrc/metal_backend.cpp), on the CPU.
// Returns 0, or -1 with a message in err.
int mfi_shim_fused_init(
    int out_type, int kind, float scale, float shift, float upper, uint64_t subsequence,
    const uint32_t* key, int32_t key_stride, int ndim, const int64_t* full_shape,
    const int64_t* start, const int64_t* shape, uint64_t max_group, void* out,
    char* err, int err_len) {
  try {
    mfi::StreamParams sp;
    sp.subsequence = subsequence;
    sp.kind = kind;
    sp.scale = scale;
    sp.shift = shift;
    sp.upper = upper;
    sp.lower = g_truncation[0];
    sp.p_lo = g_truncation[1];
    sp.c_hi = g_truncation[2];
    sp.width = g_truncation[3];
    sp.c4 = g_truncation[4];
    sp.c5 = g_truncation[5];
    sp.narrow = g_narrow;
    Dispatch d = prepare(sp, ndim, full_shape, start, shape, key_stride, max_group);
    if (d.layout.size() == 0) {
      return 0;
    }
    auto type = static_cast<mfi::OutType>(out_type);
    std::string name = mfi::metal_kernel_name(type, mfi::transform_variant(kind, shift));
    auto it = registry().find(name);
    if (it == registry().end()) {
      throw std::runtime_error("no kernel named " + name + " in the kernel source");
    }
    mfi_shim::Guarded buffer(static_cast<size_t>(d.params.size) * item_size(type));
    it->second(buffer.data(), d.params, d.extent.data(), d.stride.data(), key, d.plan);
    buffer.check();
    buffer.copy_to(out);
    return 0;
  } catch (const std::exception& e) {
    std::snprintf(err, err_len, "%s", e.what());
    return -1;
  }
}

// The steps of FusedInit::eval_gpu for a perturbation of w (row-major,
// the output type's bits): in_place as when MLX donates w's buffer (the
// kernel then reads and writes one buffer). Returns 0, or -1 with a message.
int mfi_shim_fused_perturb(
    int out_type, float scale, float w_scale, uint64_t subsequence, const uint32_t* key,
    int32_t key_stride, int ndim, const int64_t* full_shape, const int64_t* start,
    const int64_t* shape, uint64_t max_group, const void* w, int in_place, void* out,
    char* err, int err_len) {
  try {
    mfi::StreamParams sp;
    sp.subsequence = subsequence;
    sp.kind = mfi::kPerturb;
    sp.scale = scale;
    sp.shift = w_scale;
    Dispatch d = prepare(sp, ndim, full_shape, start, shape, key_stride, max_group);
    if (d.layout.size() == 0) {
      return 0;
    }
    auto type = static_cast<mfi::OutType>(out_type);
    std::string name = mfi::metal_kernel_name(type, mfi::transform_variant(sp.kind, sp.shift));
    auto it = perturb_registry().find(name);
    if (it == perturb_registry().end()) {
      throw std::runtime_error("no kernel named " + name + " in the kernel source");
    }
    const size_t bytes = static_cast<size_t>(d.params.size) * item_size(type);
    mfi_shim::Guarded buffer(bytes);
    const void* in = w;
    if (in_place) {
      std::memcpy(buffer.data(), w, bytes);
      in = buffer.data();
    }
    it->second(buffer.data(), in, d.params, d.extent.data(), d.stride.data(), key, d.plan);
    buffer.check();
    buffer.copy_to(out);
    return 0;
  } catch (const std::exception& e) {
    std::snprintf(err, err_len, "%s", e.what());
    return -1;
  }
}

// lower, p_lo, c_hi, width, c4, c5 and the mapping word (narrow) of
// mfi::Truncation for the next fused_init call.
void mfi_shim_set_truncation(float lower, float p_lo, float c_hi, float width, float c4,
                             float c5, uint32_t mapping) {
  g_truncation[0] = lower;
  g_truncation[1] = p_lo;
  g_truncation[2] = c_hi;
  g_truncation[3] = width;
  g_truncation[4] = c4;
  g_truncation[5] = c5;
  g_narrow = mapping;
}

// Space-separated names of the kernels the source instantiates.
void mfi_shim_registered_names(char* buf, int len) {
  std::string names;
  for (const auto& kv : registry()) {
    names += kv.first + " ";
  }
  for (const auto& kv : perturb_registry()) {
    names += kv.first + " ";
  }
  std::snprintf(buf, len, "%s", names.c_str());
}

// The name the host code asks MLX for ("" if the host refuses).
void mfi_shim_host_name(int out_type, int variant, char* buf, int len) {
  try {
    std::snprintf(buf, len, "%s",
                  mfi::metal_kernel_name(static_cast<mfi::OutType>(out_type), variant).c_str());
  } catch (const std::exception&) {
    std::snprintf(buf, len, "%s", "");
  }
}

// The grid the host plans for `size` elements; -1 where it refuses.
int mfi_shim_plan(uint64_t size, uint64_t max_group, uint64_t* threads, uint64_t* group) {
  try {
    mfi::DispatchPlan plan = mfi::plan_fused_init(size, max_group);
    *threads = plan.threads;
    *group = plan.group;
    return 0;
  } catch (const std::exception&) {
    return -1;
  }
}

// The steps of Philox4x32::eval_gpu. Returns 0, or -1 with a message.
int mfi_shim_philox(const uint32_t* counters, const uint32_t* key, int32_t key_stride,
                    uint32_t rows, uint64_t max_group, uint32_t* out, char* err, int err_len) {
  try {
    mfi::DispatchPlan plan = mfi::plan_philox(rows, max_group);
    mfi_shim::Guarded buffer(static_cast<size_t>(rows) * 4 * sizeof(uint32_t));
    auto* o = static_cast<uint32_t*>(buffer.data());
    for_each_thread(plan, [&](uint gid) {
      philox4x32_10_blocks(o, counters, key, key_stride, rows, gid);
    });
    buffer.check();
    buffer.copy_to(out);
    return 0;
  } catch (const std::exception& e) {
    std::snprintf(err, err_len, "%s", e.what());
    return -1;
  }
}

} // extern "C"
