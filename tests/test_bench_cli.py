"""benchmarks/bench_init.py writes the committed benchmarks/results/ only when
asked (--save-results); otherwise a folder of the user's or a fresh
temporary one. --quick and --contended are documented in --help."""

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))
import bench_init  # noqa: E402  (benchmarks/, put on the path above)


class Args:
    save_results = False
    out = None


def test_default_is_a_fresh_temporary_folder(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    a, b = bench_init.output_folder(Args()), bench_init.output_folder(Args())
    assert a != b and a.is_dir() and b.is_dir()
    assert a.parent == b.parent == tmp_path and bench_init.RESULTS not in (a, b)


def test_out_and_save_results(tmp_path):
    args = Args()
    args.out = str(tmp_path / "mine")
    assert bench_init.output_folder(args) == tmp_path / "mine"
    assert (tmp_path / "mine").is_dir()
    args = Args()
    args.save_results = True
    assert bench_init.output_folder(args) == bench_init.RESULTS


def test_help_documents_the_modes(capsys):
    with pytest.raises(SystemExit):
        bench_init.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--quick", "--contended", "--save-results", "--out"):
        assert flag in text
    assert "temporary folder" in text


def test_out_and_save_results_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        bench_init.main(["--out", "x", "--save-results"])
    assert "not allowed with" in capsys.readouterr().err


def test_contended_summary_states_the_fresh_array_cost():
    """The --contended summary derives each ratio (with MLX's buffer cache
    on too), and the ms a fresh MLX array costs beyond the reused buffer,
    from the medians of its rows."""
    import contended
    shape = [1000, 1000]  # 10^6 samples: 100 M/s is 10 ms per call
    rates = {"fused x1": 100.0, "fused x2": 150.0, "fused x2 unpinned": 120.0,
             "fused x2 2^17 chunks": 140.0, "fused x2 no take-over": 130.0,
             "fused x2 equal parts": 110.0, "fused x1 reused buffer": 200.0,
             "fused x2 reused buffer": 400.0, "fused x1 MLX cache": 160.0,
             "fused x2 MLX cache": 224.0, "stock": 5.0}
    rows = [{"phase": "busy", "shape": shape, "contestant": k, "msamples_per_s_median": v}
            for k, v in rates.items()]
    r = contended.ratios(rows, "busy", shape)
    assert r["all_over_one"] == pytest.approx(1.5)
    assert r["reused_all_over_one"] == pytest.approx(2.0)
    assert r["cached_all_over_one"] == pytest.approx(1.4)
    assert r["all_over_stock"] == pytest.approx(30.0)
    assert r["fresh_ms_one"] == pytest.approx(10.0 - 5.0)
    assert r["fresh_ms_all"] == pytest.approx(1000 / 150 - 2.5)
    line = contended.summary_line(rows, "busy", shape)
    assert "= 1.50 (meets the 2-core target 1.35)" in line
    assert "with MLX's buffer cache on, all threads / 1 thread = 1.40;" in line
    assert "by 5.0 ms per call on 1 thread, 4.2 ms on all" in line


def test_contended_rounds_vary_the_order():
    """--contended runs each contestant once per round (after one warm-up
    call each), in an order of its own each round, the same orders in every
    run (seeded): no contestant always follows the same one."""
    import contended
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in "abcdef"}
    runs = contended.blocks(fns, rounds=12, seconds=0.0)
    assert calls[:6] == list("abcdef")  # the warm-up, in the given order
    rounds = [calls[6 + 6 * r:12 + 6 * r] for r in range(12)]
    assert all(sorted(r) == list("abcdef") for r in rounds)
    assert all(len(runs[name]) == 12 and all(c == 1 for c, _ in runs[name]) for name in fns)
    before_b = {r[r.index("b") - 1] if r.index("b") > 0 else None for r in rounds}
    assert len(before_b) > 1, f"'b' always follows {before_b}"
    assert len({tuple(r) for r in rounds}) > 1
    again = []
    fns2 = {name: (lambda name=name: again.append(name)) for name in "abcdef"}
    contended.blocks(fns2, rounds=12, seconds=0.0)
    assert again == calls
