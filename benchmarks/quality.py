"""Statistical quality of the stream.

(a) raw Philox4x32-10 words through dieharder (Debian's package, installed
    here with apt-get when missing), resolve-ambiguity mode -Y 1, every
    test's assessment;
(b) the normal output: Kolmogorov-Smirnov and Anderson-Darling on >= 10^8
    samples spread over many keys with a second-level test of the
    p-values, tail frequencies beyond 3, 4 and 5 sigma against theory,
    moments to the 4th, lag-1 correlation along rows, between the two
    members of each Box-Muller pair, and between streams of adjacent keys
    from mx.random.split;
(c) the transform over all 2^32 values of the radius word and of the angle
    word against float64: maximum error in ulps, NaN/Inf, the largest |z|
    (benchmarks/quality/transform_scan.cpp, compiled here).

    python benchmarks/quality.py                    # (b) and (c), ~10 min
    python benchmarks/quality.py --dieharder        # + (a), hours
    python benchmarks/quality.py --quick            # small, < 1 min

Writes benchmarks/results/quality.{json,md} (--quick: quality_quick.*; a
dieharder-only run, --skip-normal --skip-transform --dieharder: dieharder.*).
"""

import argparse
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlx.core as mx
import numpy as np
from scipy import stats

import mlx_fused_init as mfi
from _common import RESULTS, machine, write_json

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


# ------------------------------------------------------------ (a) dieharder
def ensure_dieharder() -> str:
    exe = shutil.which("dieharder")
    if exe:
        return exe
    print("installing dieharder (apt-get)...", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "dieharder"], check=True)
    return shutil.which("dieharder")


def philox_words(chunk_blocks: int, start_block: int, key) -> bytes:
    """Raw words of consecutive Philox4x32-10 blocks (counter = block index)."""
    b = mx.arange(start_block, start_block + chunk_blocks, dtype=mx.uint32)
    zeros = mx.zeros_like(b)
    counters = mx.stack([b, zeros, zeros, zeros], axis=1)
    out = mfi.philox4x32_10(counters, key, stream=mx.cpu)
    return np.array(out).tobytes()


def run_dieharder(tests: str) -> list:
    exe = ensure_dieharder()
    key = mx.array([0x243F6A88, 0x85A308D3], dtype=mx.uint32)
    args = [exe, "-g", "200", "-Y", "1"] + (["-a"] if tests == "all" else ["-d", tests])
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=False)
    chunk = 1 << 20
    block = 0
    out_lines = []
    import threading

    def reader():
        for line in proc.stdout:
            text = line.decode(errors="replace").rstrip()
            out_lines.append(text)
            if "|" in text:
                print("  " + text, flush=True)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        while proc.poll() is None:
            if block + chunk >= 2**32:
                block = 0  # 2^32 blocks = 64 GiB: then the counter's word 1
            proc.stdin.write(philox_words(chunk, block, key))
            block += chunk
    except (BrokenPipeError, OSError):
        pass
    proc.wait()
    t.join(timeout=10)
    rows = []
    for line in out_lines:
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 6 and parts[0] not in ("test_name", ""):
            rows.append({"test": parts[0], "ntup": parts[1], "tsamples": parts[2],
                         "psamples": parts[3], "p_value": parts[4], "assessment": parts[5]})
    return rows


# ------------------------------------------------------- (b) normal output
def anderson_darling(z: np.ndarray) -> float:
    """A^2 of a sample against the fully specified N(0, 1)."""
    z = np.sort(z)
    n = z.size
    logcdf = stats.norm.logcdf(z)
    logsf = stats.norm.logsf(z[::-1])
    i = np.arange(1, n + 1)
    return float(-n - np.sum((2 * i - 1) * (logcdf + logsf)) / n)


def ad_pvalue(a2: float) -> float:
    """Marsaglia & Marsaglia (2004)'s asymptotic CDF of A^2 (n large)."""
    if a2 < 2:
        cdf = a2 ** -0.5 * math.exp(-1.2337141 / a2) * (
            2.00012 + (0.247105 - (0.0649821 - (0.0347962 - (0.011672 - 0.00168691 * a2) * a2) * a2) * a2) * a2)
    else:
        cdf = math.exp(-math.exp(1.0776 - (2.30695 - (0.43424 - (0.082433 - (0.008056 - 0.0003146 * a2) * a2) * a2) * a2) * a2))
    return 1.0 - cdf


def normal_output(keys: int, per_key: int) -> dict:
    init = mfi.normal(0.0, 1.0)
    rows = int(math.sqrt(per_key))
    shape = (rows, per_key // rows)
    ks_p, ad_p, ad_stats = [], [], []
    n_total = 0
    moments = np.zeros(4)
    tails = {3: 0, 4: 0, 5: 0}
    max_abs = 0.0
    lag_row, pair = [], []
    master = mx.random.key(20261129)
    all_keys = mx.random.split(master, keys)
    prev = None
    cross = []
    for i in range(keys):
        z = np.array(init(mx.zeros(shape), key=all_keys[i])).astype(np.float64)
        flat = z.ravel()
        n_total += flat.size
        ks_p.append(stats.kstest(flat, "norm").pvalue)
        a2 = anderson_darling(flat)
        ad_stats.append(a2)
        ad_p.append(ad_pvalue(a2))
        moments += [np.sum(flat), np.sum(flat**2), np.sum(flat**3), np.sum(flat**4)]
        for k in tails:
            tails[k] += int(np.sum(np.abs(flat) > k))
        max_abs = max(max_abs, float(np.abs(flat).max()))
        lag_row.append(np.corrcoef(z[:, :-1].ravel(), z[:, 1:].ravel())[0, 1])
        pair.append(np.corrcoef(flat[0::2], flat[1::2])[0, 1])
        if prev is not None:
            cross.append(np.corrcoef(prev, flat)[0, 1])
        prev = flat
        print(f"  key {i + 1}/{keys}: KS p={ks_p[-1]:.3f} AD A2={a2:.3f}", flush=True)
    m1, m2, m3, m4 = moments / n_total
    var = m2 - m1**2
    skew = (m3 - 3 * m1 * m2 + 2 * m1**3) / var**1.5
    kurt = (m4 - 4 * m1 * m3 + 6 * m1**2 * m2 - 3 * m1**4) / var**2 - 3
    expect = {k: n_total * 2 * stats.norm.sf(k) for k in tails}
    return {
        "samples": n_total,
        "keys": keys,
        "ks_second_level_p": float(stats.kstest(ks_p, "uniform").pvalue),
        "ks_min_p": float(min(ks_p)),
        "ad_second_level_p": float(stats.kstest(ad_p, "uniform").pvalue),
        "ad_max_A2": float(max(ad_stats)),
        "mean": float(m1), "mean_se": 1 / math.sqrt(n_total),
        "variance": float(var), "variance_se": math.sqrt(2 / n_total),
        "skewness": float(skew), "skewness_se": math.sqrt(6 / n_total),
        "excess_kurtosis": float(kurt), "excess_kurtosis_se": math.sqrt(24 / n_total),
        "tails": {f">{k} sigma": {"observed": tails[k], "expected": expect[k],
                                  "z_score": (tails[k] - expect[k]) / math.sqrt(expect[k])}
                  for k in tails},
        "max_abs_z": max_abs,
        "lag1_row_corr_max_abs": float(np.max(np.abs(lag_row))),
        "pair_corr_max_abs": float(np.max(np.abs(pair))),
        "adjacent_key_corr_max_abs": float(np.max(np.abs(cross))) if cross else None,
        "corr_se": 1 / math.sqrt(per_key),
    }


# -------------------------------------------------------- (c) the transform
def transform_scan(stride: int) -> dict:
    import json

    cxx = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "transform_scan"
        subprocess.run([cxx, "-std=c++20", "-O2", "-ffp-contract=off", "-pthread",
                        f"-I{REPO / 'metal'}", str(HERE / "quality" / "transform_scan.cpp"),
                        "-o", str(exe)], check=True)
        out = subprocess.run([str(exe), str(stride)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def markdown(result: dict, command: str) -> str:
    meta = result["machine"]
    lines = [f"Machine: {meta['cpu']}, {meta['cores']} cores. Command: `{command}`.", ""]
    if "transform" in result:
        t = result["transform"]
        lines += [
            f"**Transform over {t['words']:,} words** (stride {t['stride']}) against float64:",
            "",
            "| quantity | max error (ulp) | worst word |",
            "|---|---:|---:|",
            f"| radius r = sqrt(-2 ln u) | {t['radius_max_ulp']:.3f} | {t['radius_worst_word']} |",
            f"| cospi(t) | {t['cospi_max_ulp']:.3f} | {t['cospi_worst_word']} |",
            f"| sinpi(t) | {t['sinpi_max_ulp']:.3f} | {t['sinpi_worst_word']} |",
            "",
            f"Largest radius (= largest |z|): {t['radius_max']:.7f}; NaN/Inf: {t['nonfinite']}; "
            f"largest absolute angle error: {t['angle_max_abs_error']:.3g}.",
            "",
        ]
    if "normal" in result:
        n = result["normal"]
        lines += [
            f"**Normal output, {n['samples']:,} samples over {n['keys']} keys** (split from one key):",
            "",
            "| statistic | value | expected / bound |",
            "|---|---:|---:|",
            f"| KS, second-level p (uniformity of {n['keys']} p-values) | {n['ks_second_level_p']:.3f} | > 0.001 |",
            f"| KS, smallest per-key p | {n['ks_min_p']:.4f} | |",
            f"| Anderson-Darling, second-level p | {n['ad_second_level_p']:.3f} | > 0.001 |",
            f"| Anderson-Darling, largest A² | {n['ad_max_A2']:.3f} | 6.0 (p ≈ 0.001) |",
            f"| mean | {n['mean']:.2e} | 0 ± {n['mean_se']:.1e} |",
            f"| variance | {n['variance']:.6f} | 1 ± {n['variance_se']:.1e} |",
            f"| skewness | {n['skewness']:.2e} | 0 ± {n['skewness_se']:.1e} |",
            f"| excess kurtosis | {n['excess_kurtosis']:.2e} | 0 ± {n['excess_kurtosis_se']:.1e} |",
        ]
        for k, v in n["tails"].items():
            lines.append(f"| count beyond {k} | {v['observed']:,} | {v['expected']:,.0f} (z = {v['z_score']:+.2f}) |")
        lines += [
            f"| max \\|z\\| | {n['max_abs_z']:.4f} | ≤ 6.7637 |",
            f"| lag-1 correlation along rows, max \\|r\\| over keys | {n['lag1_row_corr_max_abs']:.2e} | sd {n['corr_se']:.1e} |",
            f"| Box-Muller pair correlation, max \\|r\\| | {n['pair_corr_max_abs']:.2e} | sd {n['corr_se'] * math.sqrt(2):.1e} |",
            f"| adjacent split keys, max \\|r\\| | {n['adjacent_key_corr_max_abs']:.2e} | sd {n['corr_se']:.1e} |",
            "",
        ]
    if "dieharder" in result:
        rows = result["dieharder"]
        counts = {}
        for r in rows:
            counts[r["assessment"]] = counts.get(r["assessment"], 0) + 1
        lines += ["**dieharder -Y 1 on raw Philox words**: " +
                  ", ".join(f"{v} {k}" for k, v in sorted(counts.items())), "",
                  "| test | ntup | p-value | assessment |", "|---|---:|---:|---|"]
        lines += [f"| {r['test']} | {r['ntup']} | {r['p_value']} | {r['assessment']} |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes (< 1 min)")
    p.add_argument("--dieharder", nargs="?", const="all", default=None,
                   help="run dieharder: 'all' (-a, hours) or one test number (-d)")
    p.add_argument("--skip-normal", action="store_true")
    p.add_argument("--skip-transform", action="store_true")
    args = p.parse_args(argv)
    result = {"machine": machine()}
    t0 = time.time()
    if not args.skip_transform:
        stride = 4099 if args.quick else 1
        print(f"(c) transform scan, stride {stride}...", flush=True)
        result["transform"] = transform_scan(stride)
        print(f"    {result['transform']}", flush=True)
    if not args.skip_normal:
        keys, per_key = (10, 1 << 20) if args.quick else (100, 1 << 20)
        print(f"(b) normal output: {keys} keys x {per_key} samples...", flush=True)
        result["normal"] = normal_output(keys, per_key)
    if args.dieharder:
        print(f"(a) dieharder ({args.dieharder})...", flush=True)
        result["dieharder"] = run_dieharder(args.dieharder)
    result["seconds"] = time.time() - t0
    command = "python benchmarks/quality.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    result["command"] = command
    # Each kind of run writes its own files: a dieharder-only run must not
    # replace the transform and normal-output results.
    name = "quality_quick" if args.quick else (
        "dieharder" if args.skip_normal and args.skip_transform else "quality")
    write_json(name, result)
    (RESULTS / f"{name}.md").write_text(markdown(result, command))
    print(markdown(result, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
