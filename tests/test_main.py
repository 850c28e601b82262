"""The main job runs end to end at a small size and writes its plots, model and summary; the
summary's figures are what the saved model and the baseline really give on the test maps."""

import json

import numpy as np
import pytest

from crsky import experiment
from crsky import main as main_module

pytestmark = pytest.mark.keras


def test_main_job_end_to_end(tmp_path, capsys):
    summary = main_module.main(["--n-maps", "500", "--epochs", "1", "--out", str(tmp_path)])
    for name in ("skymaps.png", "training.png", "roc.png", "roc_ordering.png", "purity_members.png", "dgcnn.keras"):
        assert (tmp_path / name).stat().st_size > 10_000, name
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert (summary["n_train"], summary["n_val"], summary["n_test"]) == (360, 40, 100)
    assert summary["preset"] == experiment.PRESET and summary["seed"] == experiment.DATA_SEED

    # The reported test accuracy is the saved model's on the test split of the cached data.
    import keras

    from crsky.dataset import load_sky_maps
    from crsky.scoring import load_submitted_model
    from crsky.training import evaluate

    arrays = load_sky_maps(n_maps=500, cache_dir=tmp_path / "data", progress=False)
    _, _, (x_test, y_test) = experiment.split(arrays)
    model = load_submitted_model(tmp_path / "dgcnn.keras")
    accuracy, auc, _ = evaluate(model, x_test, y_test)
    # (The reloaded model's float32 predictions may differ in the last bits: at most one of the
    # 100 test maps can cross the threshold, and the AUC moves by less than 0.005.)
    assert accuracy == pytest.approx(summary["dgcnn_test_accuracy"], abs=0.0101)
    assert auc == pytest.approx(summary["dgcnn_test_auc"], abs=0.005)
    assert keras.backend.backend() == summary["backend"]
    # At this size the pair count (about 0.88 on the default preset) is far above chance:
    # 100 test maps at chance would exceed 0.70 with a probability below 1e-4.
    assert summary["pair_count_test_accuracy"] > 0.70 and summary["pair_count_test_auc"] > 0.75
    assert np.isfinite(summary["train_seconds"]) and summary["train_seconds"] > 0
    assert set(summary["classical"]) == {"pair_count", "multiplet", "energy"}
    best = summary["best_classical"]
    assert summary["classical"][best]["accuracy"] == max(r["accuracy"] for r in summary["classical"].values())
    assert summary["dgcnn_minus_best_classical_accuracy"] == pytest.approx(
        summary["dgcnn_test_accuracy"] - summary["classical"][best]["accuracy"], abs=2e-4)
    assert 0 < summary["dgcnn_minus_best_classical_accuracy_se"] < 0.1

    # The ordering task: every signal test map as it is and permuted, the network next to the
    # energy-aware statistic on those maps; the difference is theirs, with its paired error.
    ordering = summary["ordering"]
    n_signal_test = int(np.sum(y_test == 1))
    assert ordering["n_test"] == 2 * n_signal_test and ordering["epochs"] == experiment.SIDE_TASK_EPOCHS
    assert ordering["dgcnn_minus_energy_aware_accuracy"] == pytest.approx(
        ordering["dgcnn_accuracy"] - ordering["energy_aware_accuracy"], abs=2e-4)
    assert 0 < ordering["dgcnn_minus_energy_aware_accuracy_se"] < 0.2
    # The per-cosmic-ray task on the test maps with sources, against the classical member baseline,
    # whose purity on 25 of 500 cosmic rays per map is far above the 5 % of a random choice.
    member = summary["members"]
    assert member["n_test"] == n_signal_test
    assert member["baseline_purity"] > 0.3 and member["baseline_auc"] > 0.8
    assert member["purity_gain"] == pytest.approx(member["purity"] - member["baseline_purity"], abs=2e-4)
    assert 0 <= summary["dgcnn_permuted_energy_test_accuracy"] <= 1
    out = capsys.readouterr().out
    for line in ("DGCNN ", "DGCNN, energies permuted ", "pair count ", "multiplet counts ", "energy-aware statistic "):
        assert f"  {line}" in out and "test accuracy" in out, line
    assert "DGCNN - best classical" in out
    for line in ("ordering task (", "DGCNN - energy-aware statistic:", "per-cosmic-ray task (", "member DGCNN - baseline:"):
        assert line in out, line
