// The fused initializer kernels for Apple GPUs (the native extension's:
// the metallib, or the embedded source MLX compiles at run time). The
// per-thread work is fused_init_kernel.h, shared with the portable kernels
// that go through mx.fast.metal_kernel and mx.fast.cuda_kernel; all math
// comes from fused_init_math.h, shared with the CPU path. The CPU shim test
// (tests/test_metal_shim.py) runs this file, and the self-contained source
// the build generates from it, on the CPU and compares bits.
#include <metal_stdlib>

#include "fused_init_kernel.h"
#include "fused_init_math.h"
#include "fused_init_params.h"

using namespace metal;

template <typename T, int Variant>
[[kernel]] void fused_init(
    device T* out [[buffer(0)]],
    constant mfi::MetalParams& p [[buffer(1)]],
    constant int64_t* extent [[buffer(2)]],
    constant uint64_t* stride [[buffer(3)]],
    const device uint32_t* key [[buffer(4)]],
    uint gid [[thread_position_in_grid]]) {
  // key_stride is signed: reversed keys read key[-1].
  mfi::fill_group<Variant>(out, &p, extent, stride, key[0], key[p.key_stride], uint64_t(gid));
}

// The perturbation out = fma(scale, z, w * w_scale) of w (row-major, T;
// in may be out's own buffer when MLX donated it).
template <typename T>
[[kernel]] void fused_perturb(
    device T* out [[buffer(0)]],
    constant mfi::MetalParams& p [[buffer(1)]],
    constant int64_t* extent [[buffer(2)]],
    constant uint64_t* stride [[buffer(3)]],
    const device uint32_t* key [[buffer(4)]],
    const device T* in [[buffer(5)]],
    uint gid [[thread_position_in_grid]]) {
  // 4: mfi::kPerturb, spelled as the instantiations below spell variants.
  mfi::fill_group<4>(out, in, &p, extent, stride, key[0], key[p.key_stride], uint64_t(gid));
}

// Raw Philox4x32-10 blocks: one thread per (contiguous) counter row.
[[kernel]] void philox4x32_10_blocks(
    device uint32_t* out [[buffer(0)]],
    const device uint32_t* counters [[buffer(1)]],
    const device uint32_t* key [[buffer(2)]],
    constant int32_t& key_stride [[buffer(3)]],
    constant uint32_t& rows [[buffer(4)]],
    uint gid [[thread_position_in_grid]]) {
  if (gid >= rows) {
    return;
  }
  const device uint32_t* c = counters + 4 * uint64_t(gid);
  mfi::Block b;
  b.x0 = c[0];
  b.x1 = c[1];
  b.x2 = c[2];
  b.x3 = c[3];
  b = mfi::philox4x32_10(b, key[0], key[key_stride]);
  device uint32_t* o = out + 4 * uint64_t(gid);
  o[0] = b.x0;
  o[1] = b.x1;
  o[2] = b.x2;
  o[3] = b.x3;
}

// Instantiated by name, as MLX's kernels are: fused_init_<dtype>_<variant>,
// names built on the host by mfi::metal_kernel_name (csrc/metal_dispatch.h).
// Variants: 0 normal, 1 uniform, 2 shifted normal, 3 truncated normal
// (fused_init_math.h). The
// CPU shim predefines this macro to register each instantiation instead.
#ifndef MFI_INSTANTIATE_FUSED_INIT
#define MFI_INSTANTIATE_FUSED_INIT(tname, T, vname, V)                      \
  template [[host_name("fused_init_" #tname "_" #vname)]] [[kernel]] void \
  fused_init<T, V>(                                                        \
      device T * out [[buffer(0)]],                                        \
      constant mfi::MetalParams & p [[buffer(1)]],                         \
      constant int64_t * extent [[buffer(2)]],                             \
      constant uint64_t * stride [[buffer(3)]],                            \
      const device uint32_t* key [[buffer(4)]],                            \
      uint gid [[thread_position_in_grid]]);
#endif

#define MFI_INSTANTIATE_VARIANTS(tname, T)            \
  MFI_INSTANTIATE_FUSED_INIT(tname, T, normal, 0)     \
  MFI_INSTANTIATE_FUSED_INIT(tname, T, uniform, 1)    \
  MFI_INSTANTIATE_FUSED_INIT(tname, T, shifted_normal, 2)  \
  MFI_INSTANTIATE_FUSED_INIT(tname, T, truncated_normal, 3)

MFI_INSTANTIATE_VARIANTS(float32, float)
MFI_INSTANTIATE_VARIANTS(float16, half)
MFI_INSTANTIATE_VARIANTS(bfloat16, bfloat)

// fused_perturb_<dtype> (mfi::metal_kernel_name with variant kPerturb).
#ifndef MFI_INSTANTIATE_FUSED_PERTURB
#define MFI_INSTANTIATE_FUSED_PERTURB(tname, T)                          \
  template [[host_name("fused_perturb_" #tname)]] [[kernel]] void      \
  fused_perturb<T>(                                                    \
      device T * out [[buffer(0)]],                                    \
      constant mfi::MetalParams & p [[buffer(1)]],                     \
      constant int64_t * extent [[buffer(2)]],                         \
      constant uint64_t * stride [[buffer(3)]],                        \
      const device uint32_t* key [[buffer(4)]],                        \
      const device T* in [[buffer(5)]],                                \
      uint gid [[thread_position_in_grid]]);
#endif

MFI_INSTANTIATE_FUSED_PERTURB(float32, float)
MFI_INSTANTIATE_FUSED_PERTURB(float16, half)
MFI_INSTANTIATE_FUSED_PERTURB(bfloat16, bfloat)
