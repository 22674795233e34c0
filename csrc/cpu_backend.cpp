// CPU evaluation of the primitives.
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "mlx/allocator.h"
#include "mlx/backend/cpu/encoder.h"

#include "cpu_fill.h"
#include "fused_init.h"
#include "fused_init_math.h"

namespace mfi {

namespace {

// A fresh output is written exactly once, and on Linux MLX's CPU allocator
// hands out new mmap'd memory for large arrays, so first-touch page faults
// cost about a third of the time of a large draw. Ask for transparent huge
// pages (2 MiB, 512x fewer faults) where the system leaves it to madvise.
// Advice only: values cannot change, and failure is ignored.
void advise_huge_pages(void* p, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  if (bytes < 2 * kHuge) {
    return;
  }
  uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(kHuge - 1);
  if (end > begin) {
    madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
  }
#else
  (void)p;
  (void)bytes;
#endif
}

// MLX's CPU allocator returns a null buffer when malloc fails (and MLX's
// own ops then crash writing to it); refuse with an error instead.
void allocate(mx::array& out, const char* name) {
  out.set_data(mx::allocator::malloc(out.nbytes()));
  if (out.nbytes() > 0 && out.data<uint8_t>() == nullptr) {
    throw std::runtime_error(
        std::string("[") + name + "] Unable to allocate " + std::to_string(out.nbytes()) +
        " bytes for the output.");
  }
}

// A strided (or broadcast) w, gathered into the row-major out: the
// perturbation then reads and writes out in place.
void gather(const uint8_t* src, const mx::Shape& shape, const mx::Strides& strides,
            size_t itemsize, uint8_t* dst) {
  const int nd = static_cast<int>(shape.size());
  int64_t n = 1;
  for (int d : shape) {
    n *= d;
  }
  std::vector<int64_t> idx(nd, 0);
  int64_t off = 0;  // in elements, the offset of idx
  for (int64_t e = 0; e < n; ++e) {
    std::memcpy(dst + e * itemsize, src + off * static_cast<int64_t>(itemsize), itemsize);
    for (int d = nd - 1; d >= 0; --d) {
      if (++idx[d] < shape[d]) {
        off += strides[d];
        break;
      }
      off -= strides[d] * (shape[d] - 1);
      idx[d] = 0;
    }
  }
}

} // namespace

void FusedInit::eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) {
  const mx::array& key = inputs[0];
  auto& encoder = mx::cpu::get_command_encoder(stream());
  encoder.set_input_array(key);
  if (inputs.size() == 2) {
    eval_perturb_cpu(inputs, out);
    return;
  }
  allocate(out, "FusedInit");
  encoder.set_output_array(out);
  // The key's values are read inside the task: the task that computes them
  // may itself still be queued on this stream.
  encoder.dispatch([key_ptr = key.data<uint32_t>(),
                    key_stride = key.strides()[0],
                    out_ptr = out.data<uint8_t>(),
                    spec = spec_]() {
    uint32_t k0 = key_ptr[0];
    uint32_t k1 = key_ptr[key_stride];
    RunLayout layout = make_run_layout(spec.full_shape, spec.start, spec.shape);
    advise_huge_pages(out_ptr, static_cast<size_t>(layout.size()) * out_type_size(spec.dtype));
    cpu::fill_all(stream_params(spec, k0, k1), layout, spec.dtype, out_ptr);
  });
}

// The perturbation: out = fma(scale, z, w * w_scale), written over w's own
// buffer when MLX may donate it (nothing else refers to w), so that
// `w = perturb(w, ...)` in a loop does not grow memory.
void FusedInit::eval_perturb_cpu(const std::vector<mx::array>& inputs, mx::array& out) {
  const mx::array& key = inputs[0];
  const mx::array& w = inputs[1];
  auto& encoder = mx::cpu::get_command_encoder(stream());
  const bool contiguous = w.flags().row_contiguous;
  if (contiguous && w.is_donatable() && w.itemsize() == out.itemsize()) {
    out.copy_shared_buffer(w);
  } else {
    allocate(out, "FusedInit");
  }
  encoder.set_input_array(w);
  encoder.set_output_array(out);
  encoder.dispatch([key_ptr = key.data<uint32_t>(),
                    key_stride = key.strides()[0],
                    w_ptr = w.data<uint8_t>(),
                    contiguous,
                    shape = w.shape(),
                    strides = w.strides(),
                    itemsize = w.itemsize(),
                    out_ptr = out.data<uint8_t>(),
                    spec = spec_]() {
    uint32_t k0 = key_ptr[0];
    uint32_t k1 = key_ptr[key_stride];
    const uint8_t* in = w_ptr;
    if (!contiguous) {
      gather(w_ptr, shape, strides, itemsize, out_ptr);
      in = out_ptr;
    }
    RunLayout layout = make_run_layout(spec.full_shape, spec.start, spec.shape);
    cpu::fill_all(stream_params(spec, k0, k1), layout, spec.dtype, out_ptr, in);
  });
}

void Philox4x32::eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) {
  const mx::array& counters = inputs[0];
  const mx::array& key = inputs[1];
  allocate(out, "Philox4x32");
  auto& encoder = mx::cpu::get_command_encoder(stream());
  encoder.set_input_array(counters);
  encoder.set_input_array(key);
  encoder.set_output_array(out);
  encoder.dispatch([c = counters.data<uint32_t>(),
                    cs0 = counters.strides()[0],
                    cs1 = counters.strides()[1],
                    key_ptr = key.data<uint32_t>(),
                    key_stride = key.strides()[0],
                    o = out.data<uint32_t>(),
                    n = out.shape(0)]() {
    uint32_t k0 = key_ptr[0];
    uint32_t k1 = key_ptr[key_stride];
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t* ci = c + i * cs0;
      mfi::Block b{ci[0], ci[cs1], ci[2 * cs1], ci[3 * cs1]};
      b = mfi::philox4x32_10(b, k0, k1);
      o[4 * i + 0] = b.x0;
      o[4 * i + 1] = b.x1;
      o[4 * i + 2] = b.x2;
      o[4 * i + 3] = b.x3;
    }
  });
}

} // namespace mfi
