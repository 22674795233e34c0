// Runs one mx.fast.metal_kernel text on the CPU: the source MLX generates
// around python/mlx_fused_init/_gpu.py's header and body
// (tests/mlx_kernel_text.py), compiled as C++ after the stand-in of what
// MLX prepends (include/mlx_metal_utils.h), and called once for every
// position of the grid MLX dispatches.
//
// Compiled by tests/portable_shim.py with
//   -DMFI_SHIM_KERNEL_SOURCE="path"  the generated text, verbatim;
//   -DMFI_SHIM_LAUNCH="path"         defines MFI_CALL(in, out, pos, tpg):
//                                    the kernel's instantiation called with
//                                    the input pointers, the output, and the
//                                    attributes the signature declares.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "../shim_common/guarded.h"

#include "mlx_metal_utils.h"

#include MFI_SHIM_KERNEL_SOURCE
#include MFI_SHIM_LAUNCH

extern "C" {

// in: the (row-contiguous) inputs in the kernel's order; out_bytes: the
// output's size; grid, group: the call's grid and threadgroup tuples.
// Returns 0, or -1 with a message in err.
int mfi_shim_launch(const void* const* in, void* out, uint64_t out_bytes, const int* grid,
                    const int* group, char* err, int err_len) {
  try {
    for (int a = 0; a < 3; ++a) {
      if (grid[a] < 1 || group[a] < 1) {
        throw std::runtime_error("grid and threadgroup sizes must be positive");
      }
    }
    mfi_shim::Guarded buffer(out_bytes);
    void* o = buffer.data();
    // CustomKernel::eval_gpu (mlx/backend/metal/custom_kernel.cpp):
    // dispatch_threads(grid, min(threadgroup, grid)). Non-uniform
    // threadgroups: the threads are exactly the grid's positions, and
    // threads_per_grid is the grid itself.
    const uint3 tpg{uint(grid[0]), uint(grid[1]), uint(grid[2])};
    for (uint z = 0; z < tpg.z; ++z) {
      for (uint y = 0; y < tpg.y; ++y) {
        for (uint x = 0; x < tpg.x; ++x) {
          const uint3 pos{x, y, z};
          MFI_CALL(in, o, pos, tpg);
        }
      }
    }
    buffer.check();
    buffer.copy_to(out);
    return 0;
  } catch (const std::exception& e) {
    std::snprintf(err, err_len, "%s", e.what());
    return -1;
  }
}

} // extern "C"
