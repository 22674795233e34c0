// A stand-alone driver of the CPU kernel builds (csrc/cpu_fill_<isa>.cpp),
// without MLX, so that the arm64 NEON build can be cross-compiled and run
// under qemu on an x86-64 machine (tests/test_neon_cross.py).
//   fill_main <isa> <out_type> <kind> <k0> <k1> <scale> <shift> <upper> <ndim> full... start... shape...
// writes the raw output to stdout. A perturbation (kind 4) reads its input
// w from stdin (raw, the output's type and size) and perturbs it in place.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cpu_fill.h"

int main(int argc, char** argv) {
  if (argc < 10) {
    std::fprintf(stderr, "usage: see the comment in fill_main.cpp\n");
    return 2;
  }
  std::string isa = argv[1];
  auto type = static_cast<mfi::OutType>(std::atoi(argv[2]));
  mfi::StreamParams p;
  p.kind = std::atoi(argv[3]);
  p.k0 = static_cast<uint32_t>(std::strtoul(argv[4], nullptr, 10));
  p.k1 = static_cast<uint32_t>(std::strtoul(argv[5], nullptr, 10));
  p.scale = std::strtof(argv[6], nullptr);
  p.shift = std::strtof(argv[7], nullptr);
  p.upper = std::strtof(argv[8], nullptr);
  int ndim = std::atoi(argv[9]);
  if (argc != 10 + 3 * ndim) {
    return 2;
  }
  std::vector<int64_t> full, start, shape;
  for (int d = 0; d < ndim; ++d) {
    full.push_back(std::atoll(argv[10 + d]));
    start.push_back(std::atoll(argv[10 + ndim + d]));
    shape.push_back(std::atoll(argv[10 + 2 * ndim + d]));
  }
  mfi::RunLayout layout = mfi::make_run_layout(full, start, shape);
  size_t item = type == mfi::OutType::Float32 ? 4 : 2;
  std::vector<unsigned char> out(static_cast<size_t>(layout.size()) * item);
  const bool perturb = p.kind == 4;
  if (perturb && std::fread(out.data(), 1, out.size(), stdin) != out.size()) {
    std::fprintf(stderr, "fill_main: expected %zu bytes of w on stdin\n", out.size());
    return 2;
  }
  const void* in = perturb ? out.data() : nullptr;
  // Two halves, as two threads would split it.
  int64_t mid = layout.size() / 2;
  auto fill = isa == "scalar" ? &mfi::cpu::scalar::fill
#if defined(__aarch64__)
                              : &mfi::cpu::neon::fill;
#else
                              : &mfi::cpu::scalar::fill;
#endif
  fill(p, layout, type, 0, mid, out.data(), in);
  fill(p, layout, type, mid, layout.size(), out.data(), in);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}
