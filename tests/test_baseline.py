"""The classical baselines (pair counts, multiplet counts, energy-aware multiplets) and the command lines."""

import numpy as np
import pytest

from crsky.baseline import (best_threshold, classical_features, close_pairs, energy_pair_counts, evaluate_baselines,
                            evaluate_pair_count, inverse_energy, isotropic_expectation, multiplet_correlations,
                            multiplet_counts, pair_counts)
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
    assert "multiplet counts + logistic regression: test AUC" in out and "energy-aware multiplets" in out


def test_simulate_command_line_refuses_an_unknown_preset(tmp_path):
    from crsky import simulate as simulate_module

    with pytest.raises(SystemExit):
        simulate_module.main(["--preset", "nope", "-o", str(tmp_path / "x.npz")])


# ------------------------------------------------------------ multiplet statistics

def _angles(maps):
    vectors = maps[..., :3].astype(float)
    cosine = np.clip(np.einsum("npc,nqc->npq", vectors, vectors), -1, 1)
    return np.degrees(np.arccos(cosine))


def test_close_pairs_finds_every_pair_once():
    maps = simulate("textbook", 4, seed=1)["data"]
    m, i, j, cosine = close_pairs(maps[..., :3], 6.0)
    angles = _angles(maps)
    for k in range(4):
        expected = {(a, b) for a in range(500) for b in range(a + 1, 500) if angles[k, a, b] < 6.0}
        assert set(zip(i[m == k].tolist(), j[m == k].tolist())) == expected
    np.testing.assert_allclose(np.degrees(np.arccos(np.clip(cosine, -1, 1))), angles[m, i, j], atol=1e-3)


def test_multiplet_counts_match_an_explicit_count():
    maps = simulate("easy", 3, seed=2)["data"]
    counts = multiplet_counts(maps, angles_deg=(2.0, 5.0, 10.0), max_neighbours=3)
    angles = _angles(maps)
    np.fill_diagonal(angles[0], 180), np.fill_diagonal(angles[1], 180), np.fill_diagonal(angles[2], 180)
    for k in range(3):
        for a, psi in enumerate((2.0, 5.0, 10.0)):
            neighbours = np.minimum((angles[k] < psi).sum(axis=1), 3)
            np.testing.assert_array_equal(counts[k, a], np.bincount(neighbours, minlength=4))
    assert np.all(counts.sum(axis=2) == 500)


def test_energy_pair_counts_match_an_explicit_count():
    maps = simulate("easy", 2, seed=3)["data"]
    counts = energy_pair_counts(maps, angle_edges_deg=(0, 3, 8), inverse_energy_edges=(0, 0.1, 1.01))
    angles, u = _angles(maps), inverse_energy(maps)
    for k in range(2):
        upper = np.triu(np.ones((500, 500), bool), 1)
        du = np.abs(u[k][:, None] - u[k][None, :])
        for a, (lo, hi) in enumerate(((0, 3), (3, 8))):
            for b, (ulo, uhi) in enumerate(((0, 0.1), (0.1, 1.01))):
                expected = upper & (angles[k] >= lo) & (angles[k] < hi) & (du >= ulo) & (du < uhi)
                assert counts[k, a, b] == expected.sum()


def test_a_street_has_correlation_one_and_shuffled_energies_do_not():
    """Six cosmic rays on a line at distances proportional to 1/E: every multiplet of the
    street correlates perfectly with 1/E; with the energies shuffled, it does not."""
    from crsky.sky import move_along
    from crsky.spectrum import energy_feature

    rng = np.random.default_rng(0)
    maps = np.empty((2, 500, 4))
    maps[..., :3] = isotropic_directions_far_from_pole(rng, 500)
    energy = np.array([40.0, 50.0, 60.0, 80.0, 100.0, 150.0])
    source = np.array([1.0, 0.0, 0.0])
    street = move_along(np.tile(source, (6, 1)), np.tile([0.0, 1.0, 0.0], (6, 1)), np.radians(200.0 / energy))
    maps[:, :6, :3] = street
    maps[:, :, 3] = energy_feature(rng.uniform(40, 60, 500))
    maps[0, :6, 3] = energy_feature(energy)
    maps[1, :6, 3] = energy_feature(energy[[3, 0, 5, 1, 4, 2]])
    counts = multiplet_correlations(maps, radii_deg=(6.0,), correlation_edges=(0, 0.9, 0.99, 1.01), sizes=(6,))
    assert counts[0, 0, 0, 2] >= 5  # most street members see all six and a perfect correlation
    assert counts[1, 0, 0, 2] == 0


def isotropic_directions_far_from_pole(rng, n):
    """Background cosmic rays kept 20 deg away from the test street near (1, 0, 0)."""
    from crsky.sky import isotropic_directions

    vectors = isotropic_directions(rng, (4 * n,))
    return vectors[vectors[:, 0] < np.cos(np.radians(20))][:n]


def test_classical_baselines_on_the_easy_preset():
    sim = simulate("easy", 1000, seed=4)
    x, y = sim["data"], sim["label"]
    results = evaluate_baselines(x[:600], y[:600], x[600:], y[600:])
    assert set(results) == {"pair_count", "multiplet", "energy"}
    for result in results.values():
        assert result["auc"] > 0.97 and result["accuracy"] > 0.9
    assert classical_features(x[:3], "multiplet").shape == (3, 63)
    assert classical_features(x[:3], "energy").shape == (3, 63 + 80 + 54)
    with pytest.raises(ValueError, match="method must be one of"):
        classical_features(x[:3], "neural")
