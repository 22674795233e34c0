// The Metal kernel source, self-contained (metal/fused_init.metal with the
// headers it includes inlined), generated at build time on every platform
// by cmake/embed_metal_source.py. The GPU path compiles it at run time when
// it has no metallib; tests compile it through the CPU shim.
#pragma once

namespace mfi {

const char* metal_kernel_source();

} // namespace mfi
