// A CPU stand-in for MLX's mlx/backend/cuda/device/utils.cuh, the header
// that mx.fast.cuda_kernel puts in front of every kernel text
// (mlx/backend/cuda/custom_kernel.cpp, `default_header`). Found under the
// same include path, so the generated text compiles unmodified as C++.
// Just enough CUDA for the portable kernel, with the same bits where bits
// are decided:
//   * __fmaf_rn: correctly rounded fma (std::fma on floats);
//   * __fsqrt_rn: correctly rounded sqrt (IEEE std::sqrt);
//   * __umulhi: the high word of the 64-bit product;
//   * __float_as_uint / __uint_as_float: bit copies;
//   * __half and __nv_bfloat16: 2-byte types (cuda_fp16.h, cuda_bf16.h)
//     with no conversions at all: the kernel writes their bits itself, so a
//     conversion used by mistake fails to compile here;
//   * threadIdx, blockIdx, blockDim, gridDim: per-thread globals, set by
//     tests/cuda_shim/driver.cpp before each call;
//   * namespace mlx::core::cu, which the generated text opens (MLX's
//     Shape/Strides live there; no portable kernel takes them).
// It also defines MFI_CUDA_SHIM, so that fused_init_math.h takes its CUDA
// branch (NVRTC defines __CUDACC__ instead).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#define MFI_CUDA_SHIM 1

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __grid_constant__

struct __half {
  uint16_t bits;
};
struct __nv_bfloat16 {
  uint16_t bits;
};
static_assert(sizeof(__half) == 2 && sizeof(__nv_bfloat16) == 2, "16-bit types");

inline float __fmaf_rn(float a, float b, float c) {
  return std::fma(a, b, c);
}
inline float __fsqrt_rn(float x) {
  return std::sqrt(x);
}
inline unsigned int __umulhi(unsigned int a, unsigned int b) {
  return static_cast<unsigned int>((static_cast<uint64_t>(a) * b) >> 32);
}
inline float __uint_as_float(unsigned int x) {
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}
inline unsigned int __float_as_uint(float f) {
  unsigned int x;
  std::memcpy(&x, &f, 4);
  return x;
}

struct mfi_shim_dim3 {
  unsigned int x, y, z;
};
inline thread_local mfi_shim_dim3 threadIdx{0, 0, 0};
inline thread_local mfi_shim_dim3 blockIdx{0, 0, 0};
inline thread_local mfi_shim_dim3 blockDim{1, 1, 1};
inline thread_local mfi_shim_dim3 gridDim{1, 1, 1};

namespace mlx::core::cu {}
