// The fused initializer kernels for Apple GPUs.
//
// One thread per group of four output elements. Where those four are one
// whole Philox block of the stream (always, for a full tensor), the thread
// computes that block once and writes it with one vector store; otherwise
// (window edges, tails) it computes element by element, reusing a block
// its elements share. All math comes from fused_init_math.h, shared with
// the CPU path; the CPU shim test (tests/test_metal_shim.py) runs this file,
// and the self-contained source the build generates from it (the metallib's
// source and the runtime-compiled one), on the CPU and compares bits.
#include <metal_stdlib>

#include "fused_init_math.h"
#include "fused_init_params.h"

using namespace metal;

// The stream index of output element e (RunLayout::run_origin in
// csrc/fill_job.h, for at most num_outer outer dimensions).
inline uint64_t stream_index(
    uint64_t e,
    constant mfi::MetalParams& p,
    constant int64_t* extent,
    constant uint64_t* stride) {
  if (p.num_outer == 0) {
    return p.origin + e;
  }
  uint64_t run = e / p.run_length;
  uint64_t idx = p.origin + (e - run * p.run_length);
  for (int d = int(p.num_outer) - 1; d >= 0; --d) {
    uint64_t ext = uint64_t(extent[d]);
    uint64_t i = run % ext;
    run /= ext;
    idx += i * stride[d];
  }
  return idx;
}

inline mfi::Quad stream_quad(int variant, uint64_t b, constant mfi::MetalParams& p,
                             uint32_t k0, uint32_t k1) {
  mfi::Block x = mfi::stream_block(
      uint32_t(b), uint32_t(b >> 32), p.q_lo, p.q_hi, k0, k1);
  mfi::Truncation tr;
  tr.lower = p.lower;
  tr.p_lo = p.p_lo;
  tr.c_hi = p.c_hi;
  tr.width = p.width;
  return mfi::transform_block(variant, x, p.scale, p.shift, p.upper, tr);
}

template <typename T, int Variant>
[[kernel]] void fused_init(
    device T* out [[buffer(0)]],
    constant mfi::MetalParams& p [[buffer(1)]],
    constant int64_t* extent [[buffer(2)]],
    constant uint64_t* stride [[buffer(3)]],
    const device uint32_t* key [[buffer(4)]],
    uint gid [[thread_position_in_grid]]) {
  const uint64_t e0 = uint64_t(gid) * 4;
  if (e0 >= p.size) {
    return;
  }
  const uint32_t k0 = key[0];
  const uint32_t k1 = key[p.key_stride];  // signed: reversed keys read key[-1]
  const uint64_t i0 = stream_index(e0, p, extent, stride);
  const bool whole_block = e0 + 4 <= p.size && (i0 & 3) == 0 &&
      (p.num_outer == 0 || (e0 % p.run_length) + 4 <= p.run_length);
  if (whole_block) {
    mfi::Quad v = stream_quad(Variant, i0 >> 2, p, k0, k1);
    *reinterpret_cast<device vec<T, 4>*>(out + e0) = vec<T, 4>(
        static_cast<T>(v.v0), static_cast<T>(v.v1), static_cast<T>(v.v2),
        static_cast<T>(v.v3));
    return;
  }
  uint64_t cached = ~uint64_t(0);
  mfi::Quad v;
  for (uint j = 0; j < 4 && e0 + j < p.size; ++j) {
    uint64_t i = j == 0 ? i0 : stream_index(e0 + j, p, extent, stride);
    if ((i >> 2) != cached) {
      cached = i >> 2;
      v = stream_quad(Variant, cached, p, k0, k1);
    }
    out[e0 + j] = static_cast<T>(mfi::quad_lane(v, uint32_t(i & 3)));
  }
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
