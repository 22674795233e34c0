"""Helpers shared by the benchmark scripts: optional peers, machine info,
timing of interleaved contestants."""

import json
import math
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import mlx.core as mx

import mlx_fused_init as mfi

RESULTS = Path(__file__).resolve().parent / "results"


def optional(module: str):
    """The module if it is installed, else None (peers are never required)."""
    try:
        return __import__(module)
    except Exception:  # ImportError, or a broken install
        return None


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "mlx": mx.__version__,
        "mlx_fused_init": mfi.__version__,
        "default_device": str(mx.default_device()),
        "cpu_kernel": mfi.cpu_kernel(),
        "threads": mfi.num_threads(),
        "metal": mfi.built_with_metal(),
    }


def warm_memory(gigabytes: float = 2.0) -> None:
    """Touch and free some memory first: on a VM, the first use of fresh
    memory is slower, and that would penalize whichever contestant runs
    first."""
    import numpy as np

    np.ones(int(gigabytes * 2**30) // 8, dtype=np.float64).sum()


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleave(contestants: dict, reps: int, warmup: int = 1, settle: float = 0.1,
               cpu_times: dict | None = None) -> dict:
    """Run every contestant once per round, ``reps`` rounds after
    ``warmup`` untimed ones, so that drifts of the machine hit all alike.
    Before each timed call, wait ``settle`` seconds (untimed): PyTorch's
    OpenMP and JAX's Eigen worker threads spin for a while after their work,
    and would otherwise steal the cores from whichever contestant comes
    next. Returns name -> list of seconds. If ``cpu_times`` is a dict, it
    receives name -> list of the process's CPU seconds per call (all its
    threads): on a shared machine, a one-thread contestant's CPU time is
    its cost per core, whatever else the cores were doing."""
    for _ in range(warmup):
        for fn in contestants.values():
            fn()
    times = {name: [] for name in contestants}
    if cpu_times is not None:
        cpu_times.update({name: [] for name in contestants})
    for _ in range(reps):
        for name, fn in contestants.items():
            time.sleep(settle)
            c0 = time.process_time()
            times[name].append(timed(fn))
            if cpu_times is not None:
                cpu_times[name].append(time.process_time() - c0)
    return times


def summarize(times: list, n: int) -> dict:
    best, med = min(times), statistics.median(times)
    return {
        "min_s": best,
        "median_s": med,
        "msamples_per_s": n / best / 1e6,
        "msamples_per_s_median": n / med / 1e6,
    }


def write_json(name: str, payload: dict, folder: Path = RESULTS) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    return path


def fmt(x: float, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:,.{digits}f}"


def add_output_options(parser, note: str = "") -> None:
    """--out DIR or --save-results (exclusive), read by output_folder."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", metavar="DIR", default=None,
                       help="folder for the results (default: a new temporary folder)")
    where.add_argument("--save-results", action="store_true",
                       help=f"write the committed results in {RESULTS}{note}")


def output_folder(args, prefix: str) -> Path:
    """--save-results: the committed results; --out: that folder; else a new
    temporary one (a run never overwrites what the docs quote by accident)."""
    if args.save_results:
        return RESULTS
    if args.out:
        folder = Path(args.out)
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
