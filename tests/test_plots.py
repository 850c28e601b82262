"""Every line of every course figure has a colour and line style of its own: curves can be
told apart by colour-blind readers and in grey-scale print (crsky.plots, as the notebooks
and the main job call it)."""

import inspect

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from crsky import plots  # noqa: E402
from crsky.baseline import BASELINE_LABELS  # noqa: E402

RNG = np.random.default_rng(5)


def sky_maps(n=2, points=60):
    vectors = RNG.normal(size=(n, points, 3))
    vectors /= np.linalg.norm(vectors, axis=-1, keepdims=True)
    energy = RNG.uniform(0.96, 1.0, size=(n, points, 1))  # log10(E / eV) / 20.5 for 40-160 EeV
    return np.concatenate([vectors, energy], axis=-1).astype("float32")


def scored(n=400, strength=1.0):
    labels = RNG.integers(0, 2, n)
    return labels, RNG.normal(size=n) + strength * labels


def member_truth(n_maps=3, points=60):
    targets = (RNG.random((n_maps, points)) < 0.2).astype("float32")
    return targets, RNG.normal(size=(n_maps, points)) + targets


def _roc_notebook_3():
    # Notebook 3 and the main job: the DGCNN against every classical statistic.
    return plots.roc_curves({"DGCNN": scored(strength=2.0)}
                            | {label: scored(strength=1.0 + i / 4) for i, label in enumerate(BASELINE_LABELS.values())})


def _roc_notebook_1():
    fig, axes = plt.subplots(1, 2)
    axes[0].axvline(3.0, color="k", ls=":", label="isotropic expectation")  # as notebook 1 draws beside it
    plots.roc_curves({"pair count, ψ = 4°": scored()}, ax=axes[1])
    return fig


def _graph_on_sky():
    maps = sky_maps(1)
    graph = nx.DiGraph((i, (i * 7 + 3) % 60) for i in range(60))
    return plots.graph_on_sky(graph, maps[0, :, :3], node_color=maps[0, :, 3], title="EdgeConv 1")


def _training():
    return plots.training_curves({"loss": [0.7, 0.5, 0.4], "val_loss": [0.72, 0.55, 0.5],
                                  "accuracy": [0.5, 0.7, 0.8], "val_accuracy": [0.5, 0.68, 0.75]})


# Every public plotting function of crsky.plots, drawn as the course draws it.
FIGURES = {
    "skymap": lambda: plots.skymap(sky_maps(1)[0], source_id=np.r_[np.zeros(10), -np.ones(50)], title="a map"),
    "skymap_pair": lambda: plots.skymap_pair(*sky_maps(2), np.r_[np.zeros(10), -np.ones(50)]),
    "energy_histogram": lambda: plots.energy_histogram(sky_maps(2)[..., 3]),
    "training_curves": _training,
    "roc_curves": _roc_notebook_3,
    "roc_curves (notebook 1)": _roc_notebook_1,
    "graph_on_sky": _graph_on_sky,
    "member_roc_curves": lambda: plots.member_roc_curves({"DGCNN": member_truth(), "pair count": member_truth(),
                                                         "energy": member_truth()}),
    "purity_efficiency": lambda: plots.purity_efficiency({"DGCNN": member_truth(), "pair count": member_truth()},
                                                         marks={"DGCNN": (0.5, 0.5)}),
    "member_skymap": lambda: plots.member_skymap(sky_maps(1)[0], member_truth(1)[0][0], RNG.random(60) < 0.3),
}


def _figure(made):
    return made if isinstance(made, matplotlib.figure.Figure) else made.figure


def line_styles(fig):
    """``(label, colour, dash pattern)`` of every drawn line of ``fig`` (markers alone are not lines)."""
    return [style for ax in fig.axes for style in line_styles_of(ax)]


def line_styles_of(ax):
    found = []
    for line in ax.get_lines():
        if not line.get_visible() or line.get_linestyle() in ("None", " ", "") or len(line.get_xdata()) < 2:
            continue
        offset, dashes = line._unscaled_dash_pattern  # the pattern drawn ('--' and (0, (5, 2)) alike read '--')
        found.append((line.get_label(), matplotlib.colors.to_rgba(line.get_color()),
                      (offset, tuple(dashes) if dashes else None)))
    return found


def test_every_plotting_function_is_drawn_here():
    public = {name for name, f in inspect.getmembers(plots, inspect.isfunction)
              if f.__module__ == plots.__name__ and not name.startswith("_") and name != "curve_styles"}
    assert public <= {name.split(" ")[0] for name in FIGURES}, f"figures not tested here: {public - set(FIGURES)}"


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_every_line_of_a_course_figure_has_its_own_colour_and_style(name):
    if not hasattr(plots, name.split(" ")[0]):
        pytest.skip(f"crsky.plots has no {name.split(' ')[0]}")
    fig = _figure(FIGURES[name]())
    try:
        for ax in fig.axes:  # in one panel, no two lines alike
            styles = line_styles_of(ax)
            pairs = [(colour, dashes) for _, colour, dashes in styles]
            repeated = sorted({label for label, colour, dashes in styles if pairs.count((colour, dashes)) > 1})
            assert not repeated, f"{name}: lines with the same colour and line style: {repeated}"
        meaning = {}  # across panels, one look is one curve (training loss and training accuracy share it)
        for label, colour, dashes in line_styles(fig):
            meaning.setdefault((colour, dashes), set()).add(label)
        shared = [sorted(labels) for labels in meaning.values() if len(labels) > 1]
        assert not shared, f"{name}: different curves drawn alike: {shared}"
    finally:
        plt.close(fig)


def test_the_roc_figure_of_notebook_3_has_four_curves_apart_in_colour_and_in_style():
    fig = _figure(_roc_notebook_3())
    try:
        styles = line_styles(fig)
        assert len(styles) == 1 + len(BASELINE_LABELS) + 1, styles  # the DGCNN, the statistics, the diagonal
        assert len({colour for _, colour, _ in styles}) == len(styles)
        assert len({dashes for _, _, dashes in styles}) == len(styles)
    finally:
        plt.close(fig)


def test_curve_styles_never_repeat():
    k = len(plots.CURVE_STYLES)
    first = plots.curve_styles(k)
    assert len({c for c, _ in first}) == k and len({str(s) for _, s in first}) == k
    assert plots.CHANCE_STYLE["linestyle"] not in [s for _, s in first]
    many = plots.curve_styles(k * k)
    assert len({(c, str(s)) for c, s in many}) == k * k
    with pytest.raises(ValueError, match=f"at most {k * k} curves"):
        plots.curve_styles(k * k + 1)


@pytest.mark.parametrize("name", ["acc", "categorical_accuracy", "my_accuracy"])
def test_training_curves_find_the_accuracy_under_the_name_it_was_compiled_with(name):
    fig = plots.training_curves({"loss": [0.7, 0.5], "val_loss": [0.72, 0.55], name: [0.5, 0.7], "val_" + name: [0.5, 0.6]})
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", name]
    assert all(len(ax.get_lines()) == 2 for ax in fig.axes)


def test_training_curves_without_an_accuracy_draw_the_loss():
    fig = plots.training_curves({"loss": [0.7, 0.5], "auc": [0.5, 0.6]})
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss"]
