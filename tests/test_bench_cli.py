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
