// Metal (Apple GPU) evaluation of the primitives. Built only when MLX was
// built with Metal (CMakeLists.txt); the kernels are in metal/.
//
// Where the kernels come from, decided once per process (origin()):
//   * the metallib installed next to this module, when the build had a
//     Metal compiler (MFI_HAVE_METALLIB) and the file is there;
//   * otherwise, or when MLX_FUSED_INIT_METAL_JIT=1, the embedded source
//     (metal_kernel_source(), the same text the metallib was compiled from)
//     compiled at first use by MLX's own runtime compiler, the path of its
//     JIT kernels and mx.fast.metal_kernel: Device::get_library(name,
//     options, builder) caches the library by name, so once per process.
#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "mlx/allocator.h"
#include "mlx/backend/metal/device.h"
#include "mlx/backend/metal/utils.h"

#include "fused_init.h"
#include "metal_dispatch.h"
#include "metal_source.h"

namespace mfi {

namespace {

// The metallib is installed next to this extension module. MLX would look
// next to libmlx instead (MLX issue 2436), so give it the full path.
std::string metallib_path() {
  Dl_info info;
  if (!dladdr(reinterpret_cast<void*>(&metallib_path), &info)) {
    throw std::runtime_error("[mlx_fused_init] Cannot locate the extension binary.");
  }
  return (std::filesystem::path(info.dli_fname).parent_path() / "mlx_fused_init.metallib")
      .string();
}

const KernelOrigin& origin() {
  static const KernelOrigin o = [] {
    const char* jit = std::getenv("MLX_FUSED_INIT_METAL_JIT");
    if (jit != nullptr && std::string(jit) == "1") {
      return KernelOrigin{"jit", "forced by MLX_FUSED_INIT_METAL_JIT=1"};
    }
#if defined(MFI_HAVE_METALLIB)
    std::string path = metallib_path();
    if (std::filesystem::exists(path)) {
      return KernelOrigin{"metallib", path};
    }
    return KernelOrigin{"jit", "the metallib is missing (" + path + ")"};
#else
    return KernelOrigin{"jit", "built without a Metal compiler: no metallib"};
#endif
  }();
  return o;
}

MTL::Library* library(mx::metal::Device& d) {
  const KernelOrigin& o = origin();
  if (o.kind == "metallib") {
    return d.get_library("mlx_fused_init", o.detail);
  }
  // Fast math off (MLX's Safe mode); MLX picks the language version the OS
  // supports (Metal 3.1 or later: bfloat is native). The source also says
  // `#pragma METAL fp contract(off)`, and does not need it.
  mx::CompileOptions options;
  options.math_mode = mx::MathMode::Safe;
  return d.get_library("mlx_fused_init_jit", options,
                       [] { return std::string(metal_kernel_source()); });
}

MTL::ComputePipelineState* kernel(mx::metal::Device& d, const std::string& name) {
  return d.get_kernel(name, library(d));
}

} // namespace

KernelOrigin metal_kernel_origin() {
  return origin();
}

bool built_with_metal() {
  return true;
}

void FusedInit::eval_gpu(const std::vector<mx::array>& inputs, mx::array& out) {
  const mx::array& key = inputs[0];
  auto& s = stream();
  auto& d = mx::metal::device(s.device);
  // A perturbation writes over w's buffer when MLX may donate it (the op
  // made w row-contiguous for GPU streams).
  const bool perturb = inputs.size() == 2;
  if (perturb && inputs[1].is_donatable() && inputs[1].flags().row_contiguous &&
      inputs[1].itemsize() == out.itemsize()) {
    out.copy_shared_buffer(inputs[1]);
  } else {
    out.set_data(mx::allocator::malloc(out.nbytes()));
  }
  if (out.size() == 0) {
    return;
  }
  RunLayout layout = make_run_layout(spec_.full_shape, spec_.start, spec_.shape);
  // k0, k1 are read by the kernel: the key lives in GPU memory.
  StreamParams sp = stream_params(spec_, 0, 0);
  MetalParams params = make_metal_params(sp, layout, key_word_stride(key.strides()[0]));
  auto* pipeline = kernel(
      d, metal_kernel_name(spec_.dtype, transform_variant(sp.kind, sp.shift)));

  auto& enc = mx::metal::get_command_encoder(s);
  enc.set_compute_pipeline_state(pipeline);
  enc.set_output_array(out, 0);
  enc.set_bytes(params, 1);
  enc.set_vector_bytes(layout.outer_extent, 2);
  enc.set_vector_bytes(layout.outer_stride, 3);
  enc.set_input_array(key, 4);
  if (perturb) {
    enc.set_input_array(inputs[1], 5);
  }
  DispatchPlan plan = plan_fused_init(params.size, pipeline->maxTotalThreadsPerThreadgroup());
  enc.dispatch_threads(MTL::Size(plan.threads, 1, 1), MTL::Size(plan.group, 1, 1));
}

void Philox4x32::eval_gpu(const std::vector<mx::array>& inputs, mx::array& out) {
  // The op function made the counters row-contiguous for GPU streams.
  const mx::array& counters = inputs[0];
  const mx::array& key = inputs[1];
  auto& s = stream();
  auto& d = mx::metal::device(s.device);
  out.set_data(mx::allocator::malloc(out.nbytes()));
  uint32_t rows = static_cast<uint32_t>(out.shape(0));
  if (rows == 0) {
    return;
  }
  int32_t key_stride = key_word_stride(key.strides()[0]);
  auto* pipeline = kernel(d, "philox4x32_10_blocks");
  auto& enc = mx::metal::get_command_encoder(s);
  enc.set_compute_pipeline_state(pipeline);
  enc.set_output_array(out, 0);
  enc.set_input_array(counters, 1);
  enc.set_input_array(key, 2);
  enc.set_bytes(key_stride, 3);
  enc.set_bytes(rows, 4);
  DispatchPlan plan = plan_philox(rows, pipeline->maxTotalThreadsPerThreadgroup());
  enc.dispatch_threads(MTL::Size(plan.threads, 1, 1), MTL::Size(plan.group, 1, 1));
}

} // namespace mfi
