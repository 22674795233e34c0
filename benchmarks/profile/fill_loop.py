"""A loop of fused glorot_normal draws, for `perf stat` / `perf record`
(benchmarks/profile/run_perf.sh).

    python fill_loop.py THREADS KERNEL DTYPE fresh|reused [N] [SIDE]

fresh: MLX's allocator cache is off, so every output is new memory from the
OS (first-touch page faults, as for a model's weights initialized once);
reused: the cache keeps the previous output's buffer (no faults).
"""

import sys
import time

import mlx.core as mx

import mlx_fused_init as mfi

threads, kernel, dtype_name, memory = sys.argv[1:5]
n_draws = int(sys.argv[5]) if len(sys.argv) > 5 else 20
side = int(sys.argv[6]) if len(sys.argv) > 6 else 4096
mfi.set_num_threads(int(threads))
mfi.set_cpu_kernel(kernel)
mx.set_cache_limit(0 if memory == "fresh" else 1 << 34)
dtype = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}[dtype_name]
a = mx.zeros((side, side), dtype=dtype)
init = mfi.glorot_normal(dtype=dtype)
for _ in range(2):
    mx.eval(init(a))
t0 = time.perf_counter()
for _ in range(n_draws):
    mx.eval(init(a))
dt = time.perf_counter() - t0
print(f"{threads} thr {kernel} {dtype_name} {memory}: {side * side * n_draws / dt / 1e6:.0f} M/s wall")
