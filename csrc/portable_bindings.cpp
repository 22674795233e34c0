// The portable module mlx_fused_init._kernels: the CPU kernels, the
// validation and the GPU argument packing, with no MLX in it (no MLX
// header, no libmlx), so that it loads under any MLX release. The Python
// layer (python/mlx_fused_init/_portable.py) hands it the output's buffer:
// an evaluated mx.array, written in place through the buffer protocol.
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include "cpu_bindings.h"
#include "cpu_fill.h"
#include "fused_init_math.h"
#include "init_spec.h"
#include "metal_dispatch.h"
#include "metal_source.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

mfi::OutType out_type(int code) {
  if (code < 0 || code > 2) {
    throw std::invalid_argument("[_kernels] dtype code must be 0, 1 or 2.");
  }
  return static_cast<mfi::OutType>(code);
}

// A C-contiguous buffer of exactly `bytes` bytes (writable unless asked
// otherwise), held for the lifetime of this object.
class WritableBuffer {
 public:
  WritableBuffer(nb::handle obj, size_t bytes, const std::string& name,
                 const char* what = "output", bool writable = true) {
    if (PyObject_GetBuffer(obj.ptr(), &view_, (writable ? PyBUF_WRITABLE : 0) | PyBUF_STRIDES) !=
        0) {
      throw nb::python_error();
    }
    held_ = true;
    if (!PyBuffer_IsContiguous(&view_, 'C') || static_cast<size_t>(view_.len) != bytes) {
      throw std::invalid_argument(
          "[" + name + "] the " + what + " buffer must be C-contiguous and hold " +
          std::to_string(bytes) + " bytes, but it holds " + std::to_string(view_.len) + ".");
    }
  }
  ~WritableBuffer() {
    if (held_) {
      PyBuffer_Release(&view_);
    }
  }
  WritableBuffer(const WritableBuffer&) = delete;
  WritableBuffer& operator=(const WritableBuffer&) = delete;
  void* data() const {
    return view_.buf;
  }

 private:
  Py_buffer view_{};
  bool held_ = false;
};

mfi::InitSpec spec_from(
    std::vector<int64_t> shape, int dtype, int kind, float scale, float shift,
    std::optional<double> low, std::optional<double> high, uint64_t subsequence,
    std::optional<std::vector<int64_t>> full_shape, std::optional<std::vector<int64_t>> start,
    const std::string& name) {
  return mfi::make_spec(std::move(shape), out_type(dtype), kind, scale, shift, low, high,
                        subsequence, std::move(full_shape), std::move(start), name);
}

} // namespace

NB_MODULE(_kernels, m) {
  m.doc() =
      "The MLX-free core of mlx-fused-init (portable mode): CPU kernels, validation and "
      "GPU argument packing.";

  m.def(
      "check",
      [](std::vector<int64_t> shape, int dtype, int kind, float scale, float shift,
         std::optional<double> low, std::optional<double> high, uint64_t subsequence,
         std::optional<std::vector<int64_t>> full_shape,
         std::optional<std::vector<int64_t>> start, const std::string& name, bool gpu) {
        mfi::InitSpec spec = spec_from(std::move(shape), dtype, kind, scale, shift, low, high,
                                       subsequence, std::move(full_shape), std::move(start),
                                       name);
        if (gpu) {
          mfi::check_gpu_limits(spec, name);
        }
        mfi::RunLayout layout = mfi::make_run_layout(spec.full_shape, spec.start, spec.shape);
        mfi::StreamParams sp = mfi::stream_params(spec, 0, 0);
        std::vector<uint32_t> args;
        if (gpu) {
          args = mfi::pack_gpu_args(mfi::make_metal_params(sp, layout, 1), layout);
        }
        return std::make_tuple(args, static_cast<uint64_t>(layout.size()),
                               mfi::transform_variant(sp.kind, sp.shift));
      },
      "shape"_a, "dtype"_a, nb::kw_only(), "kind"_a, "scale"_a = 1.0f, "shift"_a = 0.0f,
      "low"_a = nb::none(), "high"_a = nb::none(), "subsequence"_a = 0,
      "full_shape"_a = nb::none(), "start"_a = nb::none(), "name"_a = "fused_init",
      "gpu"_a = false,
      "Validate a draw exactly as the native op does: (args, elements, variant). args "
      "is the portable GPU kernels' uint32 argument array (gpu=True), else empty; "
      "variant the kernel's transform (fused_init_math.h).");

  m.def(
      "fill",
      [](nb::handle out, uint32_t k0, uint32_t k1, std::vector<int64_t> shape, int dtype,
         int kind, float scale, float shift, std::optional<double> low,
         std::optional<double> high, uint64_t subsequence,
         std::optional<std::vector<int64_t>> full_shape,
         std::optional<std::vector<int64_t>> start, const std::string& name,
         nb::handle w) {
        mfi::InitSpec spec = spec_from(std::move(shape), dtype, kind, scale, shift, low, high,
                                       subsequence, std::move(full_shape), std::move(start),
                                       name);
        if ((spec.kind == mfi::kPerturb) != !w.is_none()) {
          throw std::invalid_argument("[" + name + "] w= is given exactly for a perturbation.");
        }
        mfi::RunLayout layout = mfi::make_run_layout(spec.full_shape, spec.start, spec.shape);
        size_t bytes = static_cast<size_t>(layout.size()) * mfi::out_type_size(spec.dtype);
        WritableBuffer buf(out, bytes, name);
        std::optional<WritableBuffer> in;
        if (!w.is_none()) {
          in.emplace(w, bytes, name, "input", false);
        }
        mfi::StreamParams sp = mfi::stream_params(spec, k0, k1);
        nb::gil_scoped_release release;
        mfi::cpu::fill_all(sp, layout, spec.dtype, buf.data(), in ? in->data() : nullptr);
      },
      "out"_a, "k0"_a, "k1"_a, "shape"_a, "dtype"_a, nb::kw_only(), "kind"_a,
      "scale"_a = 1.0f, "shift"_a = 0.0f, "low"_a = nb::none(), "high"_a = nb::none(),
      "subsequence"_a = 0, "full_shape"_a = nb::none(), "start"_a = nb::none(),
      "name"_a = "fused_init", "w"_a = nb::none(),
      "Validate a draw and write it into out (a writable C-contiguous buffer of exactly "
      "the output's bytes: float32, or 16-bit patterns for float16/bfloat16), with the "
      "selected CPU kernel and threads. A perturbation (kind 4) reads w, a C-contiguous "
      "buffer of the same type and size (it may be out itself). The GIL is released "
      "while it runs.");

  m.def(
      "philox",
      [](nb::handle out, nb::handle counters, uint32_t k0, uint32_t k1, size_t rows) {
        WritableBuffer o(out, rows * 16, "philox4x32_10");
        Py_buffer c{};
        if (PyObject_GetBuffer(counters.ptr(), &c, PyBUF_STRIDES) != 0) {
          throw nb::python_error();
        }
        bool ok = PyBuffer_IsContiguous(&c, 'C') && static_cast<size_t>(c.len) == rows * 16;
        if (ok) {
          const auto* in = static_cast<const uint32_t*>(c.buf);
          auto* w = static_cast<uint32_t*>(o.data());
          for (size_t i = 0; i < rows; ++i) {
            mfi::Block b{in[4 * i], in[4 * i + 1], in[4 * i + 2], in[4 * i + 3]};
            b = mfi::philox4x32_10(b, k0, k1);
            w[4 * i] = b.x0;
            w[4 * i + 1] = b.x1;
            w[4 * i + 2] = b.x2;
            w[4 * i + 3] = b.x3;
          }
        }
        PyBuffer_Release(&c);
        if (!ok) {
          throw std::invalid_argument(
              "[philox4x32_10] counters must be a C-contiguous uint32 buffer of shape (n, 4).");
        }
      },
      "out"_a, "counters"_a, "k0"_a, "k1"_a, "rows"_a,
      "Raw Philox4x32-10 blocks of rows counter rows into out (uint32, rows x 4).");

  m.def(
      "uniform_bounds",
      [](double low, double high, int dtype) {
        mfi::InitSpec spec;
        spec.dtype = out_type(dtype);
        mfi::set_uniform_bounds(spec, low, high, "uniform_bounds");
        return std::make_tuple(spec.shift, spec.scale, spec.upper);
      },
      "low"_a, "high"_a, "dtype"_a, "(shift, scale, upper) of a uniform draw on [low, high).");

  m.def(
      "truncation_constants",
      [](double mean, double std, double a, double b, int dtype, const std::string& name) {
        mfi::InitSpec spec;
        spec.dtype = out_type(dtype);
        mfi::set_truncated_normal(spec, mean, std, a, b, name);
        return std::make_tuple(spec.scale, spec.shift, spec.lower, spec.upper, spec.p_lo,
                               spec.c_hi, spec.width, spec.c4, spec.c5, spec.narrow);
      },
      "mean"_a, "std"_a, "a"_a, "b"_a, "dtype"_a, "name"_a = "truncation_constants",
      "(scale, shift, lower, upper, p_lo, c_hi, width, c4, c5, mapping) of a truncated normal "
      "draw: the float32 values the kernels use, and the mapping word.");

  m.def("metal_kernel_source", [] { return std::string(mfi::metal_kernel_source()); },
        "The native Metal kernel source (metal/fused_init.metal, headers inlined).");

  mfi::bind_cpu_controls(m);
}
