// A CPU stand-in for metal::utils(), the text MLX's Metal back-end puts in
// front of every mx.fast.metal_kernel source (mlx/backend/metal/
// custom_kernel.cpp, CustomKernel::eval_gpu: `metal::utils() + source_`).
// MLX's is mlx/backend/metal/kernels/utils.h and what it includes; of it
// the portable kernel relies only on what is here:
//   * <metal_stdlib> (the shim's, include/metal_stdlib) and
//     `using namespace metal` (kernels/bf16.h);
//   * the type names MLX's get_type_string writes into the signature
//     (mlx/backend/common/compiled.cpp): float16_t and bfloat16_t,
//     typedefs of half and bfloat (kernels/utils.h, kernels/bf16.h).
#pragma once

#include <metal_stdlib>

// MLX's signature writer spells read-only arguments `const constant T*`
// and `const device T*`. In C++ `const const` is an error (GCC) where
// Metal has two different words, so here `constant` is dropped: the
// address space means nothing on the CPU, and `const` stays wherever the
// text writes it.
#undef constant
#define constant

using namespace metal;

typedef half float16_t;
typedef bfloat bfloat16_t;
