// The CPU kernel body. Included once per instruction set by
// cpu_fill_<isa>.cpp inside namespace mfi::cpu::<isa>; the compiler flags of
// that file decide how the block loop is vectorized. Every build computes
// the same IEEE operations in the same order (fused_init_math.h), so they
// give the same bits; tests/test_cpu_paths.py checks that.

namespace {

template <OutType T>
struct Store;
template <>
struct Store<OutType::Float32> {
  using type = float;
  static constexpr uint32_t grid = mfi::kGridFloat32;
  static MFI_INLINE float conv(float v) { return v; }
  static MFI_INLINE float load(float v) { return v; }
};
template <>
struct Store<OutType::Float16> {
  using type = uint16_t;
  static constexpr uint32_t grid = mfi::kGridFloat16;
  static MFI_INLINE uint16_t conv(float v) { return mfi::f32_to_f16_bits(v); }
  static MFI_INLINE float load(uint16_t v) { return mfi::f16_bits_to_f32(v); }
};
template <>
struct Store<OutType::BFloat16> {
  using type = uint16_t;
  static constexpr uint32_t grid = mfi::kGridBFloat16;
  static MFI_INLINE uint16_t conv(float v) { return mfi::f32_to_bf16_bits(v); }
  static MFI_INLINE float load(uint16_t v) { return mfi::bf16_bits_to_f32(v); }
};

// Output element j from stream value v: the value itself, or for a
// perturbation, perturb_value of it and input element j (read before the
// same thread writes out[j], so in may be out).
template <OutType T, int Variant>
struct Finish {
  using V = typename Store<T>::type;
  static MFI_INLINE V apply(float v, const V*, uint64_t, float, float) {
    return Store<T>::conv(v);
  }
};
template <OutType T>
struct Finish<T, mfi::kPerturb> {
  using V = typename Store<T>::type;
  static MFI_INLINE V apply(float z, const V* in, uint64_t j, float scale, float w_scale) {
    return Store<T>::conv(mfi::perturb_value(z, Store<T>::load(in[j]), scale, w_scale));
  }
};

// Stream elements [i0, i0 + n) into out[0 .. n); a perturbation reads
// in[0 .. n).
template <OutType T, int Variant>
void fill_run(const StreamParams& p, uint64_t i0, int64_t n, typename Store<T>::type* out,
              const typename Store<T>::type* in) {
  using S = Store<T>;
  using F = Finish<T, Variant>;
  const uint32_t k0 = p.k0, k1 = p.k1;
  const uint32_t q_lo = static_cast<uint32_t>(p.subsequence);
  const uint32_t q_hi = static_cast<uint32_t>(p.subsequence >> 32);
  const float scale = p.scale, shift = p.shift, upper = p.upper;
  const mfi::Truncation tr{p.lower, p.p_lo, p.c_hi, p.width, p.c4, p.c5, p.narrow};
  const uint64_t i1 = i0 + static_cast<uint64_t>(n);

  // A partial block at either end: compute the block, keep some lanes.
  auto partial = [&](uint64_t b, uint64_t from, uint64_t to) {
    mfi::Block x = mfi::stream_block(
        static_cast<uint32_t>(b), static_cast<uint32_t>(b >> 32), q_lo, q_hi, k0, k1);
    mfi::Quad v = mfi::transform_block(Variant, x, scale, shift, upper, tr, S::grid);
    for (uint64_t i = from; i < to; ++i) {
      out[i - i0] = F::apply(mfi::quad_lane(v, static_cast<uint32_t>(i & 3)), in, i - i0,
                             scale, shift);
    }
  };

  uint64_t b_first = (i0 + 3) >> 2;  // first whole block
  uint64_t b_end = i1 >> 2;          // one past the last whole block
  if (b_first > b_end) {             // inside a single block
    partial(i0 >> 2, i0, i1);
    return;
  }
  if (i0 & 3) {
    partial(i0 >> 2, i0, b_first << 2);
  }
  // Whole blocks, in tiles with a constant high counter word so that the
  // vectorized loop runs on 32-bit lanes only. Each lane goes to its own
  // array first: GCC vectorizes four contiguous stores, not one store of
  // four interleaved lanes; the interleaving copy is cheap next to Philox.
  // A perturbation keeps the tile's z in float32 until it meets w.
  constexpr uint32_t kTile = 256;
  constexpr bool kPerturb = Variant == mfi::kPerturb;
  using V = typename S::type;
  using TileT = std::conditional_t<kPerturb, float, V>;
  alignas(64) TileT t0[kTile], t1[kTile], t2[kTile], t3[kTile];
#if defined(MFI_PHILOX_BLOCKS)
  // This build computes a tile's Philox words with its own routine (see
  // cpu_fill_avx512.cpp); the transform stays the shared code below.
  alignas(64) uint32_t w0[kTile], w1[kTile], w2[kTile], w3[kTile];
#endif
  uint64_t b = b_first;
  while (b < b_end) {
    const uint32_t hi = static_cast<uint32_t>(b >> 32);
    const uint64_t hi_end = (static_cast<uint64_t>(hi) + 1) << 32;
    const uint32_t lo0 = static_cast<uint32_t>(b);
    const uint32_t count =
        static_cast<uint32_t>(std::min<uint64_t>({b_end, hi_end, b + kTile}) - b);
#if defined(MFI_PHILOX_BLOCKS)
    MFI_PHILOX_BLOCKS(lo0, hi, q_lo, q_hi, k0, k1, count, w0, w1, w2, w3);
#endif
    for (uint32_t j = 0; j < count; ++j) {
#if defined(MFI_PHILOX_BLOCKS)
      mfi::Block x{w0[j], w1[j], w2[j], w3[j]};
#else
      mfi::Block x = mfi::stream_block(lo0 + j, hi, q_lo, q_hi, k0, k1);
#endif
      mfi::Quad v = mfi::transform_block(Variant, x, scale, shift, upper, tr, S::grid);
      if constexpr (kPerturb) {
        t0[j] = v.v0;
        t1[j] = v.v1;
        t2[j] = v.v2;
        t3[j] = v.v3;
      } else {
        t0[j] = S::conv(v.v0);
        t1[j] = S::conv(v.v1);
        t2[j] = S::conv(v.v2);
        t3[j] = S::conv(v.v3);
      }
    }
    V* dst = out + ((b << 2) - i0);
    if constexpr (kPerturb) {
      const V* src = in + ((b << 2) - i0);
      for (uint32_t j = 0; j < count; ++j) {
        dst[4 * j + 0] = F::apply(t0[j], src, 4 * j + 0, scale, shift);
        dst[4 * j + 1] = F::apply(t1[j], src, 4 * j + 1, scale, shift);
        dst[4 * j + 2] = F::apply(t2[j], src, 4 * j + 2, scale, shift);
        dst[4 * j + 3] = F::apply(t3[j], src, 4 * j + 3, scale, shift);
      }
    } else {
      for (uint32_t j = 0; j < count; ++j) {
        dst[4 * j + 0] = t0[j];
        dst[4 * j + 1] = t1[j];
        dst[4 * j + 2] = t2[j];
        dst[4 * j + 3] = t3[j];
      }
    }
    b += count;
  }
  if (i1 & 3) {
    partial(b_end, b_end << 2, i1);
  }
}

template <OutType T, int Variant>
void fill_typed(const StreamParams& p, const RunLayout& layout, int64_t e0, int64_t e1,
                void* out_v, const void* in_v) {
  using V = typename Store<T>::type;
  auto* out = static_cast<V*>(out_v);
  const auto* in = static_cast<const V*>(in_v);
  const int64_t L = layout.run_length;
  int64_t e = e0;
  while (e < e1) {
    int64_t run = e / L;
    int64_t off = e % L;
    int64_t n = std::min(L - off, e1 - e);
    fill_run<T, Variant>(p, layout.run_origin(run) + static_cast<uint64_t>(off), n, out + e,
                         in ? in + e : nullptr);
    e += n;
  }
}

template <OutType T>
void fill_variant(const StreamParams& p, const RunLayout& layout, int64_t e0, int64_t e1,
                  void* out, const void* in) {
  switch (mfi::transform_variant(p.kind, p.shift)) {
    case mfi::kUniform:
      return fill_typed<T, mfi::kUniform>(p, layout, e0, e1, out, in);
    case mfi::kShiftedNormal:
      return fill_typed<T, mfi::kShiftedNormal>(p, layout, e0, e1, out, in);
    case mfi::kTruncatedNormal:
      return fill_typed<T, mfi::kTruncatedNormal>(p, layout, e0, e1, out, in);
    case mfi::kPerturb:
      return fill_typed<T, mfi::kPerturb>(p, layout, e0, e1, out, in);
    default:
      return fill_typed<T, mfi::kNormal>(p, layout, e0, e1, out, in);
  }
}

} // namespace

void fill(const StreamParams& p, const RunLayout& layout, OutType type, int64_t e0, int64_t e1,
          void* out, const void* in) {
  if (e1 <= e0) {
    return;
  }
  switch (type) {
    case OutType::Float32:
      return fill_variant<OutType::Float32>(p, layout, e0, e1, out, in);
    case OutType::Float16:
      return fill_variant<OutType::Float16>(p, layout, e0, e1, out, in);
    case OutType::BFloat16:
      return fill_variant<OutType::BFloat16>(p, layout, e0, e1, out, in);
  }
}
