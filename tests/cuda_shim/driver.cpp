// Runs one mx.fast.cuda_kernel text on the CPU: the source MLX generates
// around python/mlx_fused_init/_gpu.py's header and body
// (tests/mlx_kernel_text.py), compiled as C++ with include/ standing in for
// the CUDA and MLX headers it includes, and called once for every thread
// of the launch MLX makes of the call's grid and threadgroup.
//
// Compiled by tests/portable_shim.py with
//   -DMFI_SHIM_KERNEL_SOURCE="path"  the generated text, verbatim;
//   -DMFI_SHIM_LAUNCH="path"         defines MFI_CALL(in, out): the
//                                    __global__ function called with the
//                                    input pointers and the output.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "../shim_common/guarded.h"

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
    // CustomKernel::eval_gpu (mlx/backend/cuda/custom_kernel.cpp):
    //   dim3 block(min(tx, gx), min(ty, gy), min(tz, gz));
    //   dim3 grid((gx + tx - 1) / tx, (gy + ty - 1) / ty, (gz + tz - 1) / tz);
    // in whole blocks, so up to a block's worth of threads beyond the
    // call's grid run too (the kernel must ignore them).
    unsigned int block[3], blocks[3];
    for (int a = 0; a < 3; ++a) {
      block[a] = unsigned(std::min(group[a], grid[a]));
      blocks[a] = unsigned((grid[a] + group[a] - 1) / group[a]);
    }
    // CUDA's own limits on a launch: a kernel that needs more does not run.
    if (blocks[1] > 65535u || blocks[2] > 65535u || block[0] * block[1] * block[2] > 1024u) {
      throw std::runtime_error("launch beyond CUDA's limits (grid y/z <= 65535 blocks, "
                               "<= 1024 threads per block)");
    }
    blockDim = {block[0], block[1], block[2]};
    gridDim = {blocks[0], blocks[1], blocks[2]};
    for (unsigned bz = 0; bz < blocks[2]; ++bz)
      for (unsigned by = 0; by < blocks[1]; ++by)
        for (unsigned bx = 0; bx < blocks[0]; ++bx)
          for (unsigned tz = 0; tz < block[2]; ++tz)
            for (unsigned ty = 0; ty < block[1]; ++ty)
              for (unsigned tx = 0; tx < block[0]; ++tx) {
                blockIdx = {bx, by, bz};
                threadIdx = {tx, ty, tz};
                MFI_CALL(in, o);
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
