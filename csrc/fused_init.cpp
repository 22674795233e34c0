// The op functions (graph nodes) and the backend-independent parts of the
// primitives. Validation of the draw itself lives in init_spec.cpp, shared
// with the portable module, which must not link MLX.
#include "fused_init.h"

#include <sstream>
#include <stdexcept>

#include "mlx/device.h"
#include "mlx/ops.h"

#include "fused_init_math.h"
#include "metal_dispatch.h"

namespace mfi {

namespace {

std::string dtype_str(mx::Dtype t) {
  std::ostringstream os;
  os << t;
  return os.str();
}

[[noreturn]] void fail(const std::string& name, const std::string& msg) {
  throw std::invalid_argument("[" + name + "] " + msg);
}

} // namespace

void check_key(const mx::array& key, const std::string& name) {
  if (key.dtype() != mx::uint32 || key.shape() != mx::Shape{2}) {
    std::ostringstream os;
    os << "key must be a uint32 array of shape (2,) as made by "
          "mx.random.key(seed), but got dtype "
       << key.dtype() << " and shape " << key.shape() << ".";
    fail(name, os.str());
  }
}

namespace {

// The key as the GPU kernels get it: through MLX's Contiguous, so that
// key[::-1], key[::2] or a broadcast key reach the kernel as two adjacent
// words. Always the node, never a test of key.strides() here: a lazy
// view's strides are known only once it is evaluated. Contiguous shares
// the buffer of a key that already is contiguous, so it costs nothing. The
// kernels' key_stride is signed as well (metal_dispatch.h), so that any
// stride that did reach them would still be read correctly.
mx::array gpu_key(const mx::array& key, const mx::Stream& stream) {
  return stream.device == mx::Device::gpu ? mx::contiguous(key, false, stream) : key;
}

// Resolves the stream, refusing a GPU one before MLX's to_stream() does
// (which, on a CPU-only MLX, fails without saying what to do instead).
mx::Stream checked_stream(mx::StreamOrDevice s, const std::string& name) {
  mx::Device device = mx::default_device();
  if (auto* st = std::get_if<mx::Stream>(&s)) {
    device = st->device;
  } else if (auto* dev = std::get_if<mx::Device>(&s)) {
    device = *dev;
  }
  if (device.type == mx::Device::gpu && !built_with_metal()) {
    throw std::runtime_error(
        "[" + name + "] This build of mlx-fused-init has no GPU kernel (it was "
        "built without Metal). Pass stream=mx.cpu, or call "
        "mx.set_default_device(mx.cpu).");
  }
  return mx::to_stream(s);
}

} // namespace

OutType checked_out_type(mx::Dtype dtype, const std::string& name) {
  if (dtype == mx::float32) {
    return OutType::Float32;
  }
  if (dtype == mx::float16) {
    return OutType::Float16;
  }
  if (dtype == mx::bfloat16) {
    return OutType::BFloat16;
  }
  fail(name, "dtype must be float32, float16 or bfloat16, but got " + dtype_str(dtype) + ".");
}

mx::Dtype mlx_dtype(OutType t) {
  return t == OutType::Float16 ? mx::float16 : t == OutType::BFloat16 ? mx::bfloat16 : mx::float32;
}

mx::array fused_init(
    const mx::array& key,
    InitSpec spec,
    const std::string& name,
    mx::StreamOrDevice s) {
  check_key(key, name);
  check_spec(spec, name);
  mx::Stream stream = checked_stream(s, name);
  if (stream.device == mx::Device::gpu) {
    check_gpu_limits(spec, name);
  }
  mx::Shape out_shape(spec.shape.begin(), spec.shape.end());
  mx::Dtype dtype = mlx_dtype(spec.dtype);
  return mx::array(
      std::move(out_shape),
      dtype,
      std::make_shared<FusedInit>(stream, std::move(spec)),
      {gpu_key(key, stream)});
}

mx::array fused_perturb(
    const mx::array& key,
    const mx::array& w,
    InitSpec spec,
    const std::string& name,
    mx::StreamOrDevice s) {
  check_key(key, name);
  if (spec.kind != kPerturb || mlx_dtype(spec.dtype) != w.dtype() ||
      mx::Shape(spec.shape.begin(), spec.shape.end()) != w.shape()) {
    fail(name, "internal error: the perturbation's spec does not describe w.");
  }
  check_spec(spec, name);
  mx::Stream stream = checked_stream(s, name);
  if (stream.device == mx::Device::gpu) {
    check_gpu_limits(spec, name);
  }
  // The GPU kernels read w as one row-major run (Contiguous shares the
  // buffer of a w that already is); the CPU path gathers a strided w itself.
  mx::array in = stream.device == mx::Device::gpu ? mx::contiguous(w, false, stream) : w;
  return mx::array(
      w.shape(),
      w.dtype(),
      std::make_shared<FusedInit>(stream, std::move(spec)),
      {gpu_key(key, stream), std::move(in)});
}

mx::array philox4x32_10(
    const mx::array& counters,
    const mx::array& key,
    mx::StreamOrDevice s) {
  const std::string name = "philox4x32_10";
  check_key(key, name);
  if (counters.dtype() != mx::uint32 || counters.ndim() != 2 ||
      counters.shape(1) != 4) {
    std::ostringstream os;
    os << "counters must be a uint32 array of shape (n, 4), but got dtype "
       << counters.dtype() << " and shape " << counters.shape() << ".";
    fail(name, os.str());
  }
  mx::Stream stream = checked_stream(s, name);
  // The GPU kernel reads rows of four consecutive words.
  mx::array c = stream.device == mx::Device::gpu
      ? mx::contiguous(counters, false, stream)
      : counters;
  return mx::array(
      counters.shape(),
      mx::uint32,
      std::make_shared<Philox4x32>(stream),
      {c, gpu_key(key, stream)});
}

// ------------------------------------------------------------ transforms
std::vector<mx::array> RandomPrimitive::jvp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>&,
    const std::vector<int>&) {
  return {mx::zeros(output_shapes(primals)[0], output_dtype(), stream())};
}

std::vector<mx::array> RandomPrimitive::vjp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>&,
    const std::vector<int>& argnums,
    const std::vector<mx::array>&) {
  std::vector<mx::array> out;
  for (int i : argnums) {
    out.push_back(mx::zeros_like(primals[i], stream()));
  }
  return out;
}

// The perturbation is w * w_scale + noise: derivative w_scale in w, zero
// in the key. The other kinds have only the key.
std::vector<mx::array> FusedInit::jvp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& tangents,
    const std::vector<int>& argnums) {
  mx::array out = mx::zeros(output_shapes(primals)[0], output_dtype(), stream());
  for (size_t i = 0; i < argnums.size(); ++i) {
    if (argnums[i] == 1) {
      mx::array t = mx::astype(tangents[i], output_dtype(), stream());
      out = spec_.shift == 1.0f
          ? t
          : mx::multiply(t, mx::array(spec_.shift, output_dtype()), stream());
    }
  }
  return {out};
}

std::vector<mx::array> FusedInit::vjp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& cotangents,
    const std::vector<int>& argnums,
    const std::vector<mx::array>&) {
  std::vector<mx::array> out;
  for (int i : argnums) {
    if (i == 1) {
      const mx::array& c = cotangents[0];
      out.push_back(spec_.shift == 1.0f
                        ? c
                        : mx::multiply(c, mx::array(spec_.shift, c.dtype()), stream()));
    } else {
      out.push_back(mx::zeros_like(primals[i], stream()));
    }
  }
  return out;
}

bool FusedInit::is_equivalent(const mx::Primitive& other) const {
  return spec_ == static_cast<const FusedInit&>(other).spec_;
}

std::vector<mx::Shape> FusedInit::output_shapes(const std::vector<mx::array>&) {
  return {mx::Shape(spec_.shape.begin(), spec_.shape.end())};
}

} // namespace mfi
