// Python bindings of the extension module mlx_fused_init._ext.
//
// The module is built with NB_DOMAIN mlx so that it shares nanobind's type
// registry with mlx.core: mx.array, mx.Dtype and mx.Stream arguments are
// MLX's own objects, not copies.
#include <functional>
#include <thread>

#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/variant.h>
#include <nanobind/stl/vector.h>

#include "mlx/version.h"

#include "cpu_bindings.h"
#include "fused_init.h"
#include "fused_init_math.h"
#include "metal_source.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

// MLX's StreamOrDevice lists Stream before Device. nanobind's variant caster
// tries the alternatives in order, and with implicit conversions mx.gpu
// becomes a Stream by way of mx.default_stream(), which on a machine without
// a GPU back-end fails with a message that does not say what to do. Listing
// Device first lets the op see the device and explain.
using StreamArg = std::variant<std::monostate, mfi::mx::Device, mfi::mx::Stream>;

mfi::mx::StreamOrDevice to_mlx(const StreamArg& s) {
  if (auto* d = std::get_if<mfi::mx::Device>(&s)) {
    return *d;
  }
  if (auto* st = std::get_if<mfi::mx::Stream>(&s)) {
    return *st;
  }
  return {};
}

} // namespace

#define MFI_STR_(x) #x
#define MFI_STR(x) MFI_STR_(x)

NB_MODULE(_ext, m) {
  m.doc() = "C++ core of mlx-fused-init: the FusedInit and Philox4x32 primitives.";

  m.def(
      "fused_init",
      [](const mfi::mx::array& key,
         std::vector<int64_t> shape,
         mfi::mx::Dtype dtype,
         int kind,
         float scale,
         float shift,
         std::optional<double> low,
         std::optional<double> high,
         uint64_t subsequence,
         std::optional<std::vector<int64_t>> full_shape,
         std::optional<std::vector<int64_t>> start,
         const std::string& name,
         StreamArg s) {
        mfi::OutType type = mfi::checked_out_type(dtype, name);
        mfi::check_key(key, name);
        mfi::InitSpec spec = mfi::make_spec(
            std::move(shape), type, kind, scale, shift, low, high, subsequence,
            std::move(full_shape), std::move(start), name);
        return mfi::fused_init(key, std::move(spec), name, to_mlx(s));
      },
      "key"_a,
      "shape"_a,
      "dtype"_a,
      nb::kw_only(),
      "kind"_a,
      "scale"_a = 1.0f,
      "shift"_a = 0.0f,
      "low"_a = nb::none(),
      "high"_a = nb::none(),
      "subsequence"_a = 0,
      "full_shape"_a = nb::none(),
      "start"_a = nb::none(),
      "name"_a = "fused_init",
      "stream"_a = nb::none(),
      R"(Low-level fused initializer node (use the initializers instead).

Builds a lazy array holding elements of the stream of docs/spec.md section 3:
kind 0 is normal (scale * z, or fma(scale, z, shift) when shift != 0; scale
and shift rounded to float32),
kind 1 uniform on [low, high) (low and high rounded to dtype, as MLX does),
kind 3 normal with mean shift and std scale truncated to [low, high].)");

  m.def(
      "fused_perturb",
      [](const mfi::mx::array& key,
         const mfi::mx::array& w,
         float scale,
         float weight_scale,
         uint64_t subsequence,
         std::optional<std::vector<int64_t>> full_shape,
         std::optional<std::vector<int64_t>> start,
         const std::string& name,
         StreamArg s) {
        mfi::OutType type = mfi::checked_out_type(w.dtype(), name);
        mfi::check_key(key, name);
        mfi::InitSpec spec = mfi::make_spec(
            std::vector<int64_t>(w.shape().begin(), w.shape().end()), type, mfi::kPerturb,
            scale, weight_scale, std::nullopt, std::nullopt, subsequence,
            std::move(full_shape), std::move(start), name);
        return mfi::fused_perturb(key, w, std::move(spec), name, to_mlx(s));
      },
      "key"_a,
      "w"_a,
      nb::kw_only(),
      "scale"_a,
      "weight_scale"_a = 1.0f,
      "subsequence"_a = 0,
      "full_shape"_a = nb::none(),
      "start"_a = nb::none(),
      "name"_a = "perturb",
      "stream"_a = nb::none(),
      R"(Low-level fused perturbation node (use mlx_fused_init.perturb instead).

fma(scale, z, w * weight_scale) per element in float32, rounded to w's
dtype, z the normal(0, 1) stream of docs/spec.md section 3 for the key,
subsequence and window; written over w's buffer when MLX may donate it.)");

  m.def(
      "philox4x32_10",
      [](const mfi::mx::array& counters, const mfi::mx::array& key, StreamArg s) {
        return mfi::philox4x32_10(counters, key, to_mlx(s));
      },
      "counters"_a,
      "key"_a,
      nb::kw_only(),
      "stream"_a = nb::none(),
      R"(Raw Philox4x32-10 blocks, exactly as Random123 computes them.

Args:
    counters (array): uint32 array of shape ``(n, 4)``.
    key (array): uint32 array of shape ``(2,)``.
    stream (Stream or Device, optional): where to compute.

Returns:
    array: uint32 array of shape ``(n, 4)``.)");

  m.def(
      "uniform_bounds",
      [](double low, double high, mfi::mx::Dtype dtype) {
        mfi::InitSpec spec;
        spec.dtype = mfi::checked_out_type(dtype, "uniform_bounds");
        mfi::set_uniform_bounds(spec, low, high, "uniform_bounds");
        return std::make_tuple(spec.shift, spec.scale, spec.upper);
      },
      "low"_a, "high"_a, "dtype"_a,
      "(shift, scale, upper) of a uniform draw on [low, high): values are "
      "min(fma(scale, v, shift), upper), v = (x >> 8) * 2^-24, in float32, then down to the "
      "dtype's grid.");

  m.def(
      "truncation_constants",
      [](double mean, double std, double a, double b, mfi::mx::Dtype dtype,
         const std::string& name) {
        mfi::InitSpec spec;
        spec.dtype = mfi::checked_out_type(dtype, name);
        mfi::set_truncated_normal(spec, mean, std, a, b, name);
        return std::make_tuple(spec.scale, spec.shift, spec.lower, spec.upper, spec.p_lo,
                               spec.c_hi, spec.width, spec.c4, spec.c5, spec.narrow);
      },
      "mean"_a, "std"_a, "a"_a, "b"_a, "dtype"_a, "name"_a = "truncation_constants",
      "(scale, shift, lower, upper, p_lo, c_hi, width, c4, c5, mapping) of a truncated "
      "normal draw (docs/spec.md section 3): the float32 values the kernels use, and the "
      "mapping word (0: inverse CDF, 0xFFFFFFFF: narrow, 1 or 2: tail, upper or lower).");

  mfi::bind_cpu_controls(m);
  m.def("built_with_metal", &mfi::built_with_metal,
        "Whether this build carries the Metal kernels.");
  m.def("metal_kernel_source", [] { return std::string(mfi::metal_kernel_source()); },
        "The self-contained Metal kernel source (metal/fused_init.metal with its "
        "headers inlined), generated at build time on every platform: what the "
        "GPU path compiles at run time when it has no metallib.");
  m.def(
      "metal_kernel_origin",
      [] {
        mfi::KernelOrigin o = mfi::metal_kernel_origin();
        return std::make_tuple(o.kind, o.detail);
      },
      "(kind, detail): where the GPU kernels come from in this process: "
      "'metallib' (detail: its path), 'jit' (compiled at first use from "
      "metal_kernel_source(); detail: why) or 'none' (no Metal back-end).");

  m.attr("mlx_version_built_against") = MFI_STR(MLX_VERSION_MAJOR) "." MFI_STR(
      MLX_VERSION_MINOR) "." MFI_STR(MLX_VERSION_PATCH);
}
