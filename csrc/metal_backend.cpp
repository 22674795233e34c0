// Metal (Apple GPU) evaluation of the primitives. Built only when MLX was
// built with Metal (CMakeLists.txt); the kernels are in metal/.
#include <dlfcn.h>

#include <filesystem>
#include <stdexcept>

#include "mlx/allocator.h"
#include "mlx/backend/metal/device.h"
#include "mlx/backend/metal/utils.h"

#include "fused_init.h"
#include "metal_dispatch.h"

namespace mfi {

namespace {

// The metallib is installed next to this extension module. MLX would look
// next to libmlx instead (MLX issue 2436), so give it the full path.
const std::string& metallib_path() {
  static const std::string path = [] {
    Dl_info info;
    if (!dladdr(reinterpret_cast<void*>(&metallib_path), &info)) {
      throw std::runtime_error("[mlx_fused_init] Cannot locate the extension binary.");
    }
    return (std::filesystem::path(info.dli_fname).parent_path() /
            "mlx_fused_init.metallib")
        .string();
  }();
  return path;
}

MTL::ComputePipelineState* kernel(mx::metal::Device& d, const std::string& name) {
  auto* lib = d.get_library("mlx_fused_init", metallib_path());
  return d.get_kernel(name, lib);
}

} // namespace

bool built_with_metal() {
  return true;
}

void FusedInit::eval_gpu(const std::vector<mx::array>& inputs, mx::array& out) {
  const mx::array& key = inputs[0];
  auto& s = stream();
  auto& d = mx::metal::device(s.device);
  out.set_data(mx::allocator::malloc(out.nbytes()));
  if (out.size() == 0) {
    return;
  }
  RunLayout layout = make_run_layout(spec_.full_shape, spec_.start, spec_.shape);
  // k0, k1 are read by the kernel: the key lives in GPU memory.
  StreamParams sp = stream_params(spec_, 0, 0);
  MetalParams params = make_metal_params(sp, layout, key_word_stride(key.strides()[0]));
  auto* pipeline = kernel(
      d, metal_kernel_name(out_type(spec_.dtype), transform_variant(sp.kind, sp.shift)));

  auto& enc = mx::metal::get_command_encoder(s);
  enc.set_compute_pipeline_state(pipeline);
  enc.set_output_array(out, 0);
  enc.set_bytes(params, 1);
  enc.set_vector_bytes(layout.outer_extent, 2);
  enc.set_vector_bytes(layout.outer_stride, 3);
  enc.set_input_array(key, 4);
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
