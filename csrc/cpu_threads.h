// How many threads a CPU fill uses by default, and at what priority they
// run. No MLX and no standard headers here: csrc/cpu_threads_apple.cpp
// includes this file in a compile checked against stub macOS headers only
// (tests/test_macos_headers.py).
#pragma once

namespace mfi::cpu {

// The default thread count, from the machine's cores and the
// MLX_FUSED_INIT_NUM_THREADS variable (`env`: its text, or null when unset).
//   perf_cores, eff_cores: physical performance and efficiency cores
//     (macOS: hw.perflevel0.physicalcpu, hw.perflevel1.physicalcpu); 0 when
//     unknown or when the machine has one kind of core only.
//   hw_threads: std::thread::hardware_concurrency() (0: unknown).
// A positive integer in `env` wins. Otherwise: the performance cores when
// the machine has both kinds (docs/performance.md, "Threads", says why),
// else every hardware thread. Always >= 1.
int choose_thread_count(int perf_cores, int eff_cores, int hw_threads, const char* env);

// This machine's physical performance / efficiency core counts, as
// choose_thread_count takes them (both 0 off macOS).
struct CoreKinds {
  int perf = 0;
  int eff = 0;
};
CoreKinds core_kinds();

// Priority of the threads of one fill. The caller reads its own class
// (fill_qos()); each worker adopts it (adopt_fill_qos) before taking work,
// so that macOS schedules the workers like the thread that waits for them:
// a fill asked for at user-initiated priority may run on performance cores.
// A caller without a class (UNSPECIFIED) gets QOS_CLASS_USER_INITIATED: a
// fill blocks whoever evaluates the array. No-ops (0) off macOS.
int fill_qos();
void adopt_fill_qos(int qos);

} // namespace mfi::cpu
