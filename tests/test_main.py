"""The main job runs end to end at a small size and writes its plots, model and summary."""

import json

import pytest

from crsky import main as main_module

pytestmark = pytest.mark.keras


def test_main_job_end_to_end(tmp_path, capsys):
    summary = main_module.main(["--n-maps", "500", "--epochs", "1", "--out", str(tmp_path)])
    for name in ("skymaps.png", "training.png", "roc.png", "dgcnn.keras"):
        assert (tmp_path / name).stat().st_size > 10_000, name
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert summary["n_test"] == 100 and summary["n_train"] + summary["n_val"] == 400
    assert 0 <= summary["dgcnn_test_accuracy"] <= 1 and 0 <= summary["pair_count_test_auc"] <= 1
    out = capsys.readouterr().out
    assert "DGCNN       test accuracy" in out and "pair count  test accuracy" in out
