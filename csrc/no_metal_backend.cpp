// The GPU "backend" of a build without Metal (Linux, or macOS without the
// Metal toolchain). The op functions already refuse GPU streams; this only
// guards evaluation paths that bypass them.
#include <stdexcept>

#include "fused_init.h"

namespace mfi {

bool built_with_metal() {
  return false;
}

KernelOrigin metal_kernel_origin() {
  return {"none", "this build has no Metal back-end (MLX without Metal)"};
}

void FusedInit::eval_gpu(const std::vector<mx::array>&, mx::array&) {
  throw std::runtime_error(
      "[FusedInit] This build of mlx-fused-init has no GPU kernel (it was built "
      "without Metal). Pass stream=mx.cpu.");
}

void Philox4x32::eval_gpu(const std::vector<mx::array>&, mx::array&) {
  throw std::runtime_error(
      "[Philox4x32] This build of mlx-fused-init has no GPU kernel (it was "
      "built without Metal). Pass stream=mx.cpu.");
}

} // namespace mfi
