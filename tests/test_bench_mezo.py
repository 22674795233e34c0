"""benchmarks/bench_mezo.py runs end to end (a tiny model, one small
shape), writes its results where asked, and documents its modes."""

import json
import sys
from pathlib import Path

import pytest

from conftest import MLX_LM_MISSING

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))
import bench_mezo  # noqa: E402  (benchmarks/, put on the path above)


def test_runs_end_to_end_and_writes_where_asked(tmp_path, capsys):
    pytest.importorskip("mlx_lm", reason=MLX_LM_MISSING)
    out = tmp_path / "res"
    assert bench_mezo.main(["--models", "tiny", "--shapes", "128", "--reps", "1",
                            "--out", str(out)]) == 0
    data = json.loads((out / "bench_mezo.json").read_text())
    assert (out / "bench_mezo.md").read_text().startswith("Machine: ")
    assert data["machine"]["perturb"] in ("fused", "python stand-in (normal draw + arithmetic)")
    assert {r["contestant"] for r in data["perturbation"]} == {
        "mfi.perturb", "mfi.perturb, in place", "stock"}
    steps = {(r["dtype"], r["contestant"]): r for r in data["steps"]}
    assert len(steps) == 10  # 2 dtypes x 5 contestants
    for r in steps.values():
        assert r["peak_bytes"] >= r["param_bytes"] and r["seconds"] > 0, r
        assert "peak_over_inference" in r and "peak_over_adamw" in r
    # Backpropagation with AdamW holds gradients and two moments: several
    # times the parameters; stock MeZO holds z and a perturbed copy.
    for dtype in ("float32", "bfloat16"):
        assert steps[dtype, "AdamW"]["peak_bytes"] > 3 * steps[dtype, "AdamW"]["param_bytes"]
        assert steps[dtype, "stock MeZO"]["peak_over_inference"] > 1.5
    assert "bench_mezo.json" in capsys.readouterr().out


def test_skips_what_does_not_fit(tmp_path):
    pytest.importorskip("mlx_lm", reason=MLX_LM_MISSING)
    bench_mezo.main(["--models", "tiny", "--dtypes", "float32", "--no-throughput",
                     "--max-gib", "1e-9", "--out", str(tmp_path)])
    rows = json.loads((tmp_path / "bench_mezo.json").read_text())["steps"]
    assert len(rows) == 5 and all("skipped" in r for r in rows)


def test_help_and_output_folders(tmp_path, capsys, monkeypatch):
    with pytest.raises(SystemExit):
        bench_mezo.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--quick", "--save-results", "--out", "--max-gib", "temporary folder"):
        assert flag in text

    class Args:
        save_results, out = False, None

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    a, b = bench_mezo.output_folder(Args()), bench_mezo.output_folder(Args())
    assert a != b and a.parent == tmp_path and bench_mezo.RESULTS not in (a, b)
    Args.save_results = True
    assert bench_mezo.output_folder(Args()) == bench_mezo.RESULTS
    with pytest.raises(SystemExit):
        bench_mezo.main(["--out", "x", "--save-results"])
