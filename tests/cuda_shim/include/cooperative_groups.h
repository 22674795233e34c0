// A CPU stand-in for CUDA's <cooperative_groups.h>, which mx.fast.cuda_kernel
// includes before every kernel text (its generated code then writes
// `namespace cg = cooperative_groups;`). The portable kernels use none of it.
#pragma once

namespace cooperative_groups {}
