// The CPU kernels: one build of csrc/cpu_fill_impl.h per instruction set,
// chosen at run time, and the threads that share one evaluation.
#pragma once

#include <cstdint>
#include <string>

#include "fill_job.h"

namespace mfi::cpu {

// Fill output elements [e0, e1) of `layout` into out (the whole output's
// buffer; element e goes to out[e]). A perturbation (p.kind == kPerturb)
// reads element e of its input from in[e] (same type as out; in may be
// out itself: each element is read before it is written, by one thread);
// every other kind ignores in.
using FillFn = void (*)(
    const StreamParams& p,
    const RunLayout& layout,
    OutType type,
    int64_t e0,
    int64_t e1,
    void* out,
    const void* in);

// The kernel builds. Each is the same source; only compiler flags differ.
namespace scalar {
void fill(const StreamParams&, const RunLayout&, OutType, int64_t, int64_t, void*, const void*);
}
namespace avx512 {  // x86-64 with AVX-512 F+VL+BW+DQ, 512-bit vectors
void fill(const StreamParams&, const RunLayout&, OutType, int64_t, int64_t, void*, const void*);
}
namespace avx2 {  // x86-64 with AVX2 and FMA
void fill(const StreamParams&, const RunLayout&, OutType, int64_t, int64_t, void*, const void*);
}
namespace neon {  // arm64, where NEON and FMA are always present
void fill(const StreamParams&, const RunLayout&, OutType, int64_t, int64_t, void*, const void*);
}

// "auto" (the fastest this CPU supports), "scalar", "avx2", "avx512" or
// "neon".
// Throws std::invalid_argument for a kernel this build or CPU lacks.
void set_kernel(const std::string& name);
std::string kernel_name();          // the one in use
std::string available_kernels();    // comma-separated

// Threads used by one evaluation: n >= 1, or 0 for the default
// (choose_thread_count in cpu_threads.h).
void set_num_threads(int n);
int num_threads();

// Fill the whole output with the selected kernel and threads (in: the
// perturbation's input, as for FillFn).
void fill_all(
    const StreamParams& p,
    const RunLayout& layout,
    OutType type,
    void* out,
    const void* in = nullptr);

} // namespace mfi::cpu
