// Ops and primitives of mlx-fused-init.
//
// As in MLX's own ops, the op functions validate their arguments and build a
// graph node; the primitives only evaluate (one backend per file:
// cpu_backend.cpp, metal_backend.cpp or no_metal_backend.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mlx/array.h"
#include "mlx/primitives.h"
#include "mlx/utils.h"

#include "fill_job.h"
#include "fused_init_math.h"
#include "init_spec.h"

namespace mfi {

namespace mx = mlx::core;

// The output type of a draw from MLX's dtype; anything but float32,
// float16 and bfloat16 is a std::invalid_argument naming the dtype.
OutType checked_out_type(mx::Dtype dtype, const std::string& name);
mx::Dtype mlx_dtype(OutType t);

// A key must be uint32 of shape (2,); std::invalid_argument otherwise.
void check_key(const mx::array& key, const std::string& name);

// Builds the node for a spec made by make_spec (init_spec.h). `name`
// prefixes error messages ("[glorot_normal] ..."). Throws
// std::invalid_argument (ValueError in Python) for bad arguments and
// std::runtime_error for a stream this build cannot run on.
mx::array fused_init(
    const mx::array& key,
    InitSpec spec,
    const std::string& name,
    mx::StreamOrDevice s = {});

// The perturbation of w (float32, float16 or bfloat16, any shape and
// strides) by the normal(0, 1) stream of the window in spec (kind
// kPerturb, shape w's, dtype w's; scale the noise's factor, shift w's):
// fma(scale, z, w * shift) per element, rounded to w's dtype. Evaluation
// writes into w's buffer when MLX may donate it (no other reference).
mx::array fused_perturb(
    const mx::array& key,
    const mx::array& w,
    InitSpec spec,
    const std::string& name,
    mx::StreamOrDevice s = {});

// Raw Philox4x32-10 blocks: counters uint32 (n, 4), key uint32 (2,).
mx::array philox4x32_10(
    const mx::array& counters,
    const mx::array& key,
    mx::StreamOrDevice s = {});

// True when this build carries the Metal kernels.
bool built_with_metal();

// Where the GPU kernels come from in this process: kind "metallib"
// (detail: its path), "jit" (compiled at first use from the embedded
// source; detail: why) or "none" (no Metal back-end). Decided once.
struct KernelOrigin {
  std::string kind;
  std::string detail;
};
KernelOrigin metal_kernel_origin();

// A random draw: no input (the key, the counters) moves the output
// differentiably, so every derivative is zero. Returning zeros rather than
// throwing lets mx.grad run through code that initializes weights.
class RandomPrimitive : public mx::UnaryPrimitive {
 public:
  using mx::UnaryPrimitive::UnaryPrimitive;

  std::vector<mx::array> jvp(
      const std::vector<mx::array>& primals,
      const std::vector<mx::array>& tangents,
      const std::vector<int>& argnums) override;
  std::vector<mx::array> vjp(
      const std::vector<mx::array>& primals,
      const std::vector<mx::array>& cotangents,
      const std::vector<int>& argnums,
      const std::vector<mx::array>& outputs) override;

 protected:
  virtual mx::Dtype output_dtype() const = 0;
};

// Inputs: the key, and for a perturbation (kind kPerturb) the weight w,
// through which the output moves with derivative w's factor (spec.shift).
class FusedInit : public RandomPrimitive {
 public:
  FusedInit(mx::Stream stream, InitSpec spec)
      : RandomPrimitive(stream), spec_(std::move(spec)) {}

  std::vector<mx::array> jvp(
      const std::vector<mx::array>& primals,
      const std::vector<mx::array>& tangents,
      const std::vector<int>& argnums) override;
  std::vector<mx::array> vjp(
      const std::vector<mx::array>& primals,
      const std::vector<mx::array>& cotangents,
      const std::vector<int>& argnums,
      const std::vector<mx::array>& outputs) override;

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) override;
  void eval_gpu(const std::vector<mx::array>& inputs, mx::array& out) override;

  const char* name() const override {
    return spec_.kind == kPerturb ? "FusedPerturb" : "FusedInit";
  }
  // Compile's CSE merges equivalent nodes with the same inputs without
  // looking at their shapes or dtypes, so this compares everything.
  bool is_equivalent(const mx::Primitive& other) const override;
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override;

 protected:
  mx::Dtype output_dtype() const override {
    return mlx_dtype(spec_.dtype);
  }

 private:
  void eval_perturb_cpu(const std::vector<mx::array>& inputs, mx::array& out);

  InitSpec spec_;
};

class Philox4x32 : public RandomPrimitive {
 public:
  explicit Philox4x32(mx::Stream stream) : RandomPrimitive(stream) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) override;
  void eval_gpu(const std::vector<mx::array>& inputs, mx::array& out) override;

  const char* name() const override {
    return "Philox4x32";
  }
  bool is_equivalent(const mx::Primitive&) const override {
    return true;  // no parameters: same inputs give the same output
  }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override {
    return {inputs[0].shape()};
  }

 protected:
  mx::Dtype output_dtype() const override {
    return mx::uint32;
  }
};

} // namespace mfi
