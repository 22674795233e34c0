"""What MLX compiles for an mx.fast.metal_kernel / mx.fast.cuda_kernel call:
a line-by-line Python port of MLX's own source generators, so that the
shim tests compile the kernel text exactly as wrapped on a GPU.

Ported from the MLX sources at commit
846d176227a0ac13d2667e58d2bb68b322109ab0 (0.32.2-dev, 2026-08-22; the
mirror /work/.mirror/ml-explore+mlx/repo), checked against v0.31.0:
  * Metal: mlx/backend/common/metal_kernel.cpp, `write_signature`,
    `write_template`, `make_template_hash` and the kernel-name and explicit-
    instantiation code of `metal_kernel`; the Metal back-end then compiles
    `metal::utils() + source` (mlx/backend/metal/custom_kernel.cpp,
    CustomKernel::eval_gpu). v0.31.0's write_signature is the same; its
    kernel name lacks the dtype suffixes (harmless: the name is only an
    identifier), and test_portable_gpu_shim.py checks this port against the
    running MLX's own generator where it can print it.
  * CUDA: mlx/backend/cuda/custom_kernel.cpp, `default_header`,
    `template_arguments_hash`, `build_kernel`, and the grid -> block math of
    CustomKernel::eval_gpu (block = min(t, g), blocks = ceil(g / t) per
    axis). v0.31.0's default header also defines a macro `inf`
    (legacy_inf_macro=True reproduces it). No way to run MLX's CUDA
    generator without an NVIDIA GPU, so the port is all there is here.

Inputs are described as (dtype name, size, ndim) triples, MLX Dtype names
("uint32", "float32", "float16", "bfloat16").
"""

# mlx/backend/common/compiled.cpp, get_type_string (Metal's type names).
METAL_TYPE = {"float32": "float", "float16": "float16_t", "bfloat16": "bfloat16_t",
              "uint32": "uint32_t", "int32": "int32_t", "uint16": "uint16_t",
              "uint64": "uint64_t", "int64": "int64_t"}
# mlx/backend/cuda/utils.cpp, dtype_to_cuda_type.
CUDA_TYPE = {"float32": "float", "float16": "__half", "bfloat16": "__nv_bfloat16",
             "uint32": "uint32_t", "int32": "int32_t", "uint16": "uint16_t",
             "uint64": "uint64_t", "int64": "int64_t"}

# metal_kernel.cpp: inputs with fewer elements go to the constant space.
MAX_CONSTANT_ARRAY_SIZE = 8

# metal_kernel.cpp, metal_kernel(): the attributes MLX adds to the
# signature when the source names them, in this order.
METAL_ATTRIBUTES = [
    ("dispatch_quadgroups_per_threadgroup", "uint"),
    ("dispatch_simdgroups_per_threadgroup", "uint"),
    ("dispatch_threads_per_threadgroup", "uint3"),
    ("grid_origin", "uint3"),
    ("grid_size", "uint3"),
    ("quadgroup_index_in_threadgroup", "uint"),
    ("quadgroups_per_threadgroup", "uint"),
    ("simdgroup_index_in_threadgroup", "uint"),
    ("simdgroups_per_threadgroup", "uint"),
    ("thread_execution_width", "uint"),
    ("thread_index_in_quadgroup", "uint"),
    ("thread_index_in_simdgroup", "uint"),
    ("thread_index_in_threadgroup", "uint"),
    ("thread_position_in_grid", "uint3"),
    ("thread_position_in_threadgroup", "uint3"),
    ("threadgroup_position_in_grid", "uint3"),
    ("threadgroups_per_grid", "uint3"),
    ("threads_per_grid", "uint3"),
    ("threads_per_simdgroup", "uint"),
    ("threads_per_threadgroup", "uint3"),
]


def shape_infos(input_names, source):
    # metal_kernel() and cuda_kernel(): (name_shape, name_strides, name_ndim)
    # are passed when the source text contains them anywhere.
    return [(n + "_shape" in source, n + "_strides" in source, n + "_ndim" in source)
            for n in input_names]


def _template_value(arg, type_names):
    if isinstance(arg, bool):  # before int: bool is an int in Python
        return "true" if arg else "false"
    if isinstance(arg, int):
        return str(arg)
    return type_names[arg]


# ------------------------------------------------------------------ Metal
def metal_write_template(template):
    # write_template: "<a, b>". A bool prints as 1/0 there (ostream <<).
    vals = [str(int(a)) if isinstance(a, bool) else _template_value(a, METAL_TYPE)
            for _, a in template]
    return "<" + ", ".join(vals) + ">"


def metal_make_template_hash(template_def):
    # make_template_hash: '<' and '>' become '_', ", " becomes '_'; the
    # last character dropped.
    out, i = [], 0
    while i < len(template_def):
        c = template_def[i]
        if c in "<>":
            out.append("_")
        elif c == "," and i + 1 < len(template_def) and template_def[i + 1] == " ":
            out.append("_")
            i += 1
        else:
            out.append(c)
        i += 1
    return "".join(out)[:-1]


def metal_kernel_name(name, inputs, output_dtypes, template):
    kernel_name = "custom_kernel_" + name
    if template:
        kernel_name += "_" + metal_make_template_hash(metal_write_template(template))
    for dtype, size, ndim in inputs:
        kernel_name += "_" + METAL_TYPE[dtype]
        if ndim == 0:
            kernel_name += "s"
        elif size < MAX_CONSTANT_ARRAY_SIZE:
            kernel_name += "c"
    for dtype in output_dtypes:
        kernel_name += "_" + METAL_TYPE[dtype]
    return kernel_name


def metal_write_signature(func_name, header, source, input_names, inputs, output_names,
                          output_dtypes, template, attributes, infos, atomic_outputs=False):
    s = header
    if template:
        params = []
        for name, arg in template:
            kind = "bool" if isinstance(arg, bool) else "int" if isinstance(arg, int) else "typename"
            params.append(f"{kind} {name}")
        s += "template <" + ", ".join(params) + ">\n"
    s += "[[kernel]] void " + func_name + "(\n"
    index = 0
    for name, (dtype, size, ndim), info in zip(input_names, inputs, infos):
        location = "constant" if size < MAX_CONSTANT_ARRAY_SIZE else "device"
        ref = "&" if ndim == 0 else "*"
        s += f"  const {location} {METAL_TYPE[dtype]}{ref} {name} [[buffer({index})]],\n"
        index += 1
        if ndim > 0:
            if info[0]:
                s += f"  const constant int* {name}_shape [[buffer({index})]],\n"
                index += 1
            if info[1]:
                s += f"  const constant int64_t* {name}_strides [[buffer({index})]],\n"
                index += 1
            if info[2]:
                s += f"  const constant int& {name}_ndim [[buffer({index})]],\n"
                index += 1
    for name, dtype in zip(output_names, output_dtypes):
        t = METAL_TYPE[dtype]
        s += "  device " + (f"atomic<{t}>" if atomic_outputs else t) + "* "
        s += f"{name} [[buffer({index})]]"
        # (sic) MLX compares the running buffer index with the count of
        # inputs + outputs, ignoring the shape buffers; with attributes
        # present, as in every kernel here, the branch taken is the same.
        if index < len(inputs) + len(output_names) - 1 or attributes:
            s += ",\n"
        else:
            s += ") {\n"
        index += 1
    for i, attr in enumerate(attributes):
        s += attr
        s += ",\n" if i < len(attributes) - 1 else ") {\n"
    s += source
    s += "\n}\n"
    return s


def metal_kernel_source(name, input_names, output_names, source, header, inputs,
                        output_dtypes, template):
    """(kernel_name, text): what metal_kernel() generates for one call;
    the Metal back-end compiles metal::utils() + text."""
    infos = shape_infos(input_names, source)
    attributes = [f"  {t} {a} [[{a}]]" for a, t in METAL_ATTRIBUTES if a in source]
    kernel_name = metal_kernel_name(name, inputs, output_dtypes, template)
    text = metal_write_signature(kernel_name, header, source, input_names, inputs,
                                 output_names, output_dtypes, template, attributes, infos)
    if template:
        template_def = kernel_name + metal_write_template(template)
        text += f'\ntemplate [[host_name("{kernel_name}")]] [[kernel]] decltype('
        text += template_def + ") " + template_def + ";\n"
    return kernel_name, text


# ------------------------------------------------------------------- CUDA
CUDA_DEFAULT_HEADER = """
#include "mlx/backend/cuda/device/utils.cuh"

#include <cooperative_groups.h>

"""
# v0.31.0's default header, which also defines `inf`.
CUDA_DEFAULT_HEADER_V031 = CUDA_DEFAULT_HEADER + (
    "#define inf cuda::std::numeric_limits<float>::infinity()\n\n")


def cuda_template_arguments_hash(template):
    out = ""
    for _, arg in template:
        if isinstance(arg, bool):
            out += "_t" if arg else "_f"
        elif isinstance(arg, int):
            out += f"_{arg}"
        else:
            out += "_" + METAL_TYPE[arg]  # get_type_string, as MLX calls it
    return out


def cuda_build_kernel(func_name, header, source, input_names, inputs, output_names,
                      output_dtypes, template, infos, legacy_inf_macro=False):
    s = CUDA_DEFAULT_HEADER_V031 if legacy_inf_macro else CUDA_DEFAULT_HEADER
    s += header
    s += "namespace mlx::core::cu {\n\nnamespace cg = cooperative_groups;\n\n"
    s += "__global__ void " + func_name + "(\n"
    for name, (dtype, _size, ndim), info in zip(input_names, inputs, infos):
        s += f"    const {CUDA_TYPE[dtype]}* {name},\n"
        if ndim > 0:
            if info[0]:
                s += f"    const __grid_constant__ Shape {name}_shape,\n"
            if info[1]:
                s += f"    const __grid_constant__ Strides {name}_strides,\n"
            if info[2]:
                s += f"    const __grid_constant__ int {name}_ndim,\n"
    for i, (name, dtype) in enumerate(zip(output_names, output_dtypes)):
        s += f"    {CUDA_TYPE[dtype]}* {name}"
        s += ",\n" if i < len(output_names) - 1 else ") {\n"
    if template:
        for name, arg in template:
            if isinstance(arg, bool):
                s += f"  constexpr bool {name} = {'true' if arg else 'false'};\n"
            elif isinstance(arg, int):
                s += f"  constexpr int {name} = {arg};\n"
            else:
                s += f"  using {name} = {CUDA_TYPE[arg]};\n"
        s += "\n"
    s += source
    s += "\n}\n\n} // namespace mlx::core::cu\n"
    return s


def cuda_kernel_source(name, input_names, output_names, source, header, inputs,
                       output_dtypes, template, legacy_inf_macro=False):
    """(qualified kernel name, text): what cuda_kernel() generates and
    NVRTC compiles for one call."""
    kernel_name = "custom_kernel_" + name + cuda_template_arguments_hash(template)
    text = cuda_build_kernel(kernel_name, header, source, input_names, inputs, output_names,
                             output_dtypes, template, shape_infos(input_names, source),
                             legacy_inf_macro)
    return "mlx::core::cu::" + kernel_name, text


def cuda_launch(grid, threadgroup):
    """(blocks, block) per axis, as CustomKernel::eval_gpu computes them."""
    block = tuple(min(t, g) for t, g in zip(threadgroup, grid))
    blocks = tuple((g + t - 1) // t for t, g in zip(threadgroup, grid))
    return blocks, block
