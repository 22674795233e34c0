// An output buffer between two guard regions of canary bytes, for every
// shim driver (tests/metal_shim/driver.cpp, tests/metal_shim/portable_driver.cpp,
// tests/cuda_shim/driver.cpp). Large enough for a whole stray vec<T, 4>
// store and then some; ASan (tests/sanitize.sh) covers anything farther away.
// The output itself starts filled with canary bytes too, as MLX leaves a
// kernel's output uninitialized: an element no thread writes shows up as a
// mismatch with the CPU path; a write outside the output as an error here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace mfi_shim {

class Guarded {
 public:
  static constexpr size_t kGuard = 256;

  explicit Guarded(size_t bytes) : bytes_(bytes), buf_(bytes + 2 * kGuard + 16) {
    for (size_t i = 0; i < buf_.size(); ++i) {
      buf_[i] = canary(i);
    }
  }
  // 16-byte aligned, as vector stores of four floats need (MLX's buffers
  // are aligned far more).
  void* data() {
    return base() + kGuard;
  }
  void check() {
    const unsigned char* b = base();
    for (size_t i = 0; i < kGuard; ++i) {
      size_t before = kGuard - 1 - i, after = kGuard + bytes_ + i;
      if (b[before] != canary(offset() + before)) {
        throw std::runtime_error("out-of-bounds write: byte " + std::to_string(i + 1) +
                                 " before the output changed");
      }
      if (b[after] != canary(offset() + after)) {
        throw std::runtime_error("out-of-bounds write: byte " + std::to_string(i) +
                                 " after the end of the output (" + std::to_string(bytes_) +
                                 " bytes) changed");
      }
    }
  }
  void copy_to(void* out) {
    std::memcpy(out, data(), bytes_);
  }

 private:
  size_t offset() {
    return (16 - reinterpret_cast<uintptr_t>(buf_.data()) % 16) % 16;
  }
  unsigned char* base() {
    return buf_.data() + offset();
  }
  // Not one repeated byte: a stray store is unlikely to reproduce it.
  static unsigned char canary(size_t i) {
    return static_cast<unsigned char>(0xA5u ^ (i * 37u) ^ (i >> 8));
  }
  size_t bytes_;
  std::vector<unsigned char> buf_;
};

} // namespace mfi_shim
