"""The pair-count statistic and the command lines."""

import numpy as np
import pytest

from crsky.baseline import best_threshold, evaluate_pair_count, isotropic_expectation, pair_counts
from crsky.sky import angular_distance
from crsky.simulate import simulate


def test_pair_counts_match_an_explicit_double_loop():
    maps = simulate("easy", 3, seed=1)["data"][:, :80]
    counts = pair_counts(maps, [4.0, 10.0])
    for m in range(3):
        vectors = maps[m, :, :3].astype(float)
        angles = [np.degrees(angular_distance(vectors[i], vectors[j])) for i in range(80) for j in range(i + 1, 80)]
        assert counts[m, 0] == np.sum(np.array(angles) < 4.0)
        assert counts[m, 1] == np.sum(np.array(angles) < 10.0)
    assert pair_counts(maps, 4.0).shape == (3,)


def test_isotropic_maps_have_the_expected_number_of_pairs():
    sim = simulate("textbook", 500, seed=2)
    iso = sim["data"][sim["label"] == 0]
    counts = pair_counts(iso, [4.0, 6.0, 10.0])
    expected = isotropic_expectation(np.array([4.0, 6.0, 10.0]))
    np.testing.assert_allclose(expected, [152, 342, 948], rtol=0.01)
    np.testing.assert_allclose(counts.mean(axis=0), expected, rtol=0.03)


def test_best_threshold_separates_perfectly_separable_scores():
    assert best_threshold(np.array([1, 2, 3, 10, 11, 12]), np.array([0, 0, 0, 1, 1, 1])) == 3


def test_easy_preset_is_easy_for_the_baseline():
    sim = simulate("easy", 500, seed=3)
    x, y = sim["data"], sim["label"]
    result = evaluate_pair_count(x[:250], y[:250], x[250:], y[250:])
    assert result["auc"] > 0.97 and result["accuracy"] > 0.9


def test_simulate_and_baseline_command_lines(tmp_path, capsys):
    from crsky import baseline
    from crsky import simulate as simulate_module

    path = tmp_path / "sky.npz"
    simulate_module.main(["--preset", "easy", "--n-maps", "300", "--seed", "2", "-o", str(path)])
    assert "wrote 300 maps (easy, seed 2)" in capsys.readouterr().out
    baseline.main([str(path), "--psi", "4", "6"])
    out = capsys.readouterr().out
    assert "60 test maps" in out and "psi   4.0 deg: AUC" in out and "chosen on training maps" in out


def test_simulate_command_line_refuses_an_unknown_preset(tmp_path):
    from crsky import simulate as simulate_module

    with pytest.raises(SystemExit):
        simulate_module.main(["--preset", "nope", "-o", str(tmp_path / "x.npz")])
