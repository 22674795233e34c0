"""The every-architecture sweep (tests/mlx_lm_sweep.py): each module of
mlx_lm.models that defines Model and ModelArgs must give exactly the row
docs/architectures.md shows, and no row may show a failure."""

from pathlib import Path

import pytest

from conftest import MLX_LM_MISSING

pytest.importorskip("mlx_lm", reason=MLX_LM_MISSING)
import mlx_lm_sweep as sweep  # noqa: E402

DOC = Path(__file__).parent.parent / "docs" / "architectures.md"
ROWS = sweep.documented(DOC)


def test_the_table_lists_every_architecture():
    import importlib

    defined = []
    for arch in sweep.architectures():
        try:
            m = importlib.import_module(f"mlx_lm.models.{arch}")
        except (Exception, SystemExit):  # noqa: BLE001  listed with its reason
            defined.append(arch)
            continue
        if hasattr(m, "Model") and hasattr(m, "ModelArgs"):
            defined.append(arch)
    assert sorted(ROWS) == sorted(defined)
    assert not any("FAIL" in cell for row in ROWS.values() for cell in row.values())


@pytest.mark.parametrize("arch", sorted(ROWS))
def test_architecture(arch):
    row = {k: str(v) for k, v in sweep.sweep(arch).items()}
    assert not any("FAIL" in v for v in row.values()), row
    assert row == {k: v for k, v in ROWS[arch].items() if v != ""}, (
        "docs/architectures.md is stale: python tests/mlx_lm_sweep.py --write "
        "docs/architectures.md")
