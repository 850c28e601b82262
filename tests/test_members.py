"""The per-cosmic-ray task: the truth from source_id, the figures of merit on hand-made
examples, the classical member baseline on simulated maps, the member DGCNN's shapes and
equivariance, and the plots."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from crsky import members  # noqa: E402
from crsky.simulate import simulate  # noqa: E402


@pytest.fixture(scope="module")
def sky():
    return simulate(n_maps=250, seed=7)


def test_member_targets_mark_every_source():
    source_id = np.array([[-1, 0, 4, -1], [2, -1, -1, -1]], dtype=np.int8)
    targets = members.member_targets(source_id)
    assert targets.dtype == np.float32
    np.testing.assert_array_equal(targets, [[0, 1, 1, 0], [1, 0, 0, 0]])
    with pytest.raises(ValueError, match="n_maps, n_events"):
        members.member_targets(source_id[0])


def test_top_per_map_counts_purity_and_efficiency_over_maps():
    targets = np.array([[1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=np.float32)
    scores = np.array([[0.9, 0.1, 0.8, 0.2, 0.0], [0.5, 0.6, 0.1, 0.2, 0.3]])
    top = members.top_per_map(targets, scores, n=2)
    # map 0 selects CRs 0 and 2 (one member), map 1 selects 1 and 0 (one member): 2 of 4, 2 of 3
    assert top["purity"] == pytest.approx(0.5) and top["efficiency"] == pytest.approx(2 / 3)
    np.testing.assert_array_equal(top["selected"], [[1, 0, 1, 0, 0], [1, 1, 0, 0, 0]])
    assert members.top_per_map(targets, scores[..., None], n=2)["purity"] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        members.top_per_map(targets, scores, n=6)


def test_purity_at_efficiency_uses_one_threshold_over_all_maps():
    targets = np.array([[1, 0, 1, 0], [0, 1, 0, 0]], dtype=np.float32)
    scores = np.array([[0.9, 0.8, 0.7, 0.1], [0.85, 0.6, 0.2, 0.0]])
    # ordered: 0.9 (m), 0.85 (b), 0.8 (b), 0.7 (m), 0.6 (m)
    assert members.purity_at_efficiency(targets, scores, 1 / 3)[0] == pytest.approx(1.0)
    assert members.purity_at_efficiency(targets, scores, 2 / 3)[0] == pytest.approx(0.5)
    purity, threshold = members.purity_at_efficiency(targets, scores, 1.0)
    assert purity == pytest.approx(0.6) and threshold == pytest.approx(0.6)
    # member-background pairs ordered right: 5 + 3 + 3 of 3 x 5
    assert members.member_auc(targets, scores) == pytest.approx(11 / 15)


def test_compare_at_baseline_efficiency_a_perfect_score_gains():
    rng = np.random.default_rng(0)
    targets = (rng.random((40, 100)) < 0.1).astype(np.float32)
    noisy = targets + rng.normal(0, 0.7, targets.shape)
    result = members.compare_at_baseline_efficiency(targets, targets + 0.01 * rng.random(targets.shape), noisy, n=10)
    assert result["auc"] == pytest.approx(1.0) and result["purity"] == pytest.approx(1.0)
    assert result["baseline_purity"] < 0.9 and result["purity_gain"] == pytest.approx(1 - result["baseline_purity"])
    same = members.compare_at_baseline_efficiency(targets, noisy, noisy, n=10)
    assert same["purity_gain"] == 0 and same["purity_top_n"] == same["baseline_purity_top_n"]


def test_signal_split_keeps_the_maps_with_sources_and_their_truth(sky):
    parts = members.signal_split(sky)
    from crsky import experiment

    plain = experiment.split(sky)
    for (x, source_id), (x_all, y_all) in zip(parts, plain):
        assert len(x) == int(np.sum(y_all == 1)) and x.shape[1:] == (500, 4) and source_id.shape == x.shape[:2]
        np.testing.assert_array_equal(x, x_all[y_all == 1])
        assert np.all(np.sum(source_id >= 0, axis=1) > 0)
    with pytest.raises(ValueError, match="source_id"):
        members.signal_split({"data": sky["data"], "label": sky["label"]})


def test_classical_member_baseline_finds_source_cosmic_rays(sky):
    from crsky.baseline import MEMBER_RADII_DEG, fit_member_baseline, member_baseline_scores, member_features

    (x_train, id_train), _, (x_test, id_test) = members.signal_split(sky)
    features = member_features(x_test[:3])
    assert features.shape == (3, 500, 3 * len(MEMBER_RADII_DEG) + 1) and np.all(np.isfinite(features))
    targets = members.member_targets(id_test[:3])
    # source cosmic rays have more neighbours within 2 degrees than background ones
    assert features[..., 1][targets == 1].mean() > features[..., 1][targets == 0].mean() + 0.3
    model = fit_member_baseline(x_train, members.member_targets(id_train))
    scores = member_baseline_scores(model, x_test)
    truth = members.member_targets(id_test)
    assert scores.shape == truth.shape
    assert members.member_auc(truth, scores) > 0.9
    assert members.top_per_map(truth, scores)["purity"] > 0.5  # chance: 0.05


@pytest.mark.keras
def test_member_model_gives_one_probability_per_cosmic_ray_and_follows_their_order(sky, tmp_path):
    from crsky.scoring import load_submitted_model
    from crsky.models import build_member_model, model_inputs

    model = build_member_model()
    assert tuple(model.output.shape) == (None, 500)
    assert not [layer for layer in model.layers if "Pooling" in type(layer).__name__]
    x = sky["data"][:2]
    probability = members.predict_members(model, x)  # plain NumPy on every backend
    assert probability.shape == (2, 500) and np.all((probability > 0) & (probability < 1))
    order = np.random.default_rng(1).permutation(500)
    shuffled = members.predict_members(model, x[:, order])
    np.testing.assert_allclose(shuffled, probability[:, order], atol=1e-5)
    members.compile_members(model, steps=6, learning_rate=3e-3)
    targets = members.member_targets(sky["source_id"][:8])
    history = model.fit(model_inputs(sky["data"][:8]), targets, batch_size=4, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]  # it learns from the per-cosmic-ray targets
    model.save(tmp_path / "members.keras")
    loaded = load_submitted_model(tmp_path / "members.keras")
    np.testing.assert_allclose(members.predict_members(loaded, x), members.predict_members(model, x), atol=1e-5)
    with pytest.raises(ValueError, match="one probability per cosmic ray"):
        from crsky.models import build_reference_model

        members.predict_members(build_reference_model(), x)


def test_member_plots_draw_distinct_styles(sky):
    import matplotlib.pyplot as plt

    from crsky import plots

    targets = members.member_targets(sky["source_id"][sky["label"] == 1][:5])
    rng = np.random.default_rng(0)
    curves = {"a": (targets, targets + rng.normal(0, 0.5, targets.shape)),
              "b": (targets, rng.random(targets.shape))}
    ax = plots.member_roc_curves(curves)
    lines = ax.get_lines()[:2]
    assert lines[0].get_color() != lines[1].get_color() and lines[0].get_linestyle() != lines[1].get_linestyle()
    assert "AUC" in ax.get_legend().get_texts()[0].get_text()
    plots.purity_efficiency(curves)
    x = sky["data"][sky["label"] == 1][0]
    selected = members.top_per_map(targets[:1], curves["a"][1][:1])["selected"][0]
    ax = plots.member_skymap(x, targets[0], selected, title="one map")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(label.startswith("from a source, selected") for label in labels)
    plt.close("all")


def test_member_points_run_from_chance_to_the_baseline_plus_margin():
    assert members.member_points(0.05, 0.7, chance=0.05, points=4, margin=0.02) == 0
    assert members.member_points(0.72, 0.7, chance=0.05, points=4, margin=0.02) == pytest.approx(4)
    assert members.member_points(0.385, 0.7, chance=0.05, points=4, margin=0.02) == pytest.approx(2)
    assert members.member_points(0.9, 0.7, chance=0.05, points=4, margin=0.02) == pytest.approx(4)


def test_score_member_model_reads_the_purity_at_the_baselines_efficiency():
    rng = np.random.default_rng(2)
    maps = rng.normal(size=(30, 50, 4)).astype(np.float32)
    truth = (rng.random((30, 50)) < 0.1).astype(np.float32)

    class Oracle:  # a stand-in for a loaded model that scores the truth itself
        def predict_on_batch(self, inputs):
            assert len(inputs[0]) == len(truth)  # the 30 maps come in one batch
            return truth * 0.9 + 0.05

    baseline = truth + rng.normal(0, 0.8, truth.shape)
    score, result = members.score_member_model(Oracle(), maps, truth, baseline, points=4, margin=0.0)
    assert result["purity"] == pytest.approx(1.0) and result["baseline_purity"] < 1.0
    assert score == pytest.approx(4)
    score, result = members.score_member_model(Oracle(), maps, truth, truth, points=4, margin=0.05)
    assert result["purity"] == result["baseline_purity"] == pytest.approx(1.0)
    assert score == pytest.approx(4)  # full points are capped at purity 0.99

