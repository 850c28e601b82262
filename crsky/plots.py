"""Plots: sky maps on the Hammer projection, energy spectra, training curves, ROC curves."""

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
from sklearn.metrics import roc_curve

from crsky.sky import vectors_to_lonlat
from crsky.spectrum import energy_from_feature


#: The colour and line style of each curve of a figure, in order: the curves of one figure
#: differ in both (colour-blind readers, grey-scale print). Colours of Okabe and Ito's
#: colour-blind-safe palette; no style is the dotted line of the chance diagonal.
CURVE_STYLES = (
    ("#0072B2", "-"), ("#E69F00", "--"), ("#009E73", "-."), ("#D55E00", (0, (3, 1, 1, 1, 1, 1))),
    ("#CC79A7", (0, (8, 2))), ("#56B4E9", (0, (3, 1))), ("#000000", (0, (6, 2, 1, 2))),
)
#: The chance diagonal of ROC curves: thin, grey, dotted, and no curve's style.
CHANCE_STYLE = {"color": "0.55", "linestyle": ":", "linewidth": 0.9}


def curve_styles(n):
    """``n`` (colour, linestyle) pairs for the curves of one figure, no two alike: the first
    ``len(CURVE_STYLES)`` differ in colour and in line style, later ones in one of them."""
    k = len(CURVE_STYLES)
    if n > k * k:
        raise ValueError(f"at most {k * k} curves in one figure keep their own colour and line style, got {n}")
    return [(CURVE_STYLES[i % k][0], CURVE_STYLES[(i + i // k) % k][1]) for i in range(n)]


def _sky_axes(ax):
    if ax is None:
        fig = plt.figure(figsize=(8, 4.5))
        ax = fig.add_subplot(111, projection="hammer")
    ax.grid(True, alpha=0.3)
    # Galactic longitude grows to the left, as on astronomers' maps.
    degrees = np.arange(-150, 151, 60)
    ax.set_xticks(np.radians(degrees))
    ax.set_xticklabels([f"{-d % 360}°" for d in degrees], fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    return ax


def skymap(sky_map, source_id=None, ax=None, title=None, colorbar=True, vmin=40, vmax=160):
    """Plot one sky map ``(P, 4)`` in galactic coordinates, energy (EeV) as colour.

    ``source_id`` ``(P,)`` (optional, -1 for background) outlines the cosmic rays that
    came from sources. Returns the axes.
    """
    sky_map = np.asarray(sky_map)
    ax = _sky_axes(ax)
    lon, lat = vectors_to_lonlat(sky_map[:, :3])
    energy = energy_from_feature(sky_map[:, 3])
    order = np.argsort(energy)  # the highest energies on top
    points = ax.scatter(-lon[order], lat[order], c=energy[order], s=9, cmap="viridis",
                        norm=matplotlib.colors.LogNorm(vmin, vmax), linewidths=0)
    if source_id is not None:
        signal = np.asarray(source_id) >= 0
        ax.scatter(-lon[signal], lat[signal], s=40, facecolors="none", edgecolors="red", linewidths=0.8,
                   label="from a source")
        if signal.any():
            ax.legend(loc="lower right", fontsize=7, frameon=False)
    if colorbar:
        plt.colorbar(points, ax=ax, orientation="horizontal", shrink=0.6, pad=0.08, label="energy (EeV)")
    if title:
        ax.set_title(title, fontsize=10, pad=22)
    return ax


def skymap_pair(isotropic_map, signal_map, signal_source_id=None):
    """An isotropic map beside a signal map (sources outlined). Returns the figure."""
    fig = plt.figure(figsize=(13, 4.8))
    skymap(isotropic_map, ax=fig.add_subplot(121, projection="hammer"), title="isotropic (label 0)")
    skymap(signal_map, signal_source_id, ax=fig.add_subplot(122, projection="hammer"),
           title="with streets (label 1)")
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return fig


def energy_histogram(features, ax=None):
    """Histogram of energies (EeV, log axes) from normalised energy features."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    energy = energy_from_feature(np.ravel(features))
    bins = np.logspace(np.log10(energy.min()), np.log10(energy.max()), 40)
    ax.hist(energy, bins=bins, histtype="step")
    ax.set(xscale="log", yscale="log", xlabel="energy (EeV)", ylabel="cosmic rays")
    return ax


ACCURACY_NAMES = ("accuracy", "acc", "categorical_accuracy", "binary_accuracy")


def training_curves(history):
    """Loss and accuracy per epoch, training and validation, from a Keras History or dict.
    ``None`` (nothing was trained in this run) draws nothing and says so; returns None then."""
    if history is None:
        print("No training curves: nothing was trained in this run.")
        return None
    values = getattr(history, "history", history)
    # The accuracy under the name it was compiled with (metrics=["accuracy"], ["acc"], a named metric).
    accuracy = next((name for name in ACCURACY_NAMES if name in values), None) or next(
        (name for name in values if "acc" in name and not name.startswith("val_")), None)
    metrics = ("loss",) if accuracy is None else ("loss", accuracy)
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
    epochs = np.arange(1, len(values["loss"]) + 1)
    (train_colour, train_style), (val_colour, val_style) = curve_styles(2)
    for ax, metric in zip(axes[0], metrics):
        ax.plot(epochs, values[metric], marker="o", color=train_colour, linestyle=train_style, label="training")
        if "val_" + metric in values:
            ax.plot(epochs, values["val_" + metric], marker="s", color=val_colour, linestyle=val_style,
                    label="validation")
        ax.set(xlabel="epoch", ylabel=metric)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def roc_curves(curves, ax=None):
    """ROC curves: ``curves`` maps a name to ``(labels, scores)``; each curve has a colour and
    a line style of its own (:func:`curve_styles`). Returns the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    from sklearn.metrics import roc_auc_score

    for (name, (labels, scores)), (colour, style) in zip(curves.items(), curve_styles(len(curves))):
        false_positive, true_positive, _ = roc_curve(labels, scores)
        ax.plot(false_positive, true_positive, color=colour, linestyle=style,
                label=f"{name} (AUC {roc_auc_score(labels, scores):.3f})")
    ax.plot([0, 1], [0, 1], **CHANCE_STYLE)
    ax.set(xlabel="false positive rate (isotropic maps called signal)",
           ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="lower right", fontsize=8)
    return ax


def graph_on_sky(graph, vectors, ax=None, title=None, node_color=None, edge_color="tab:blue"):
    """Draw a networkx graph whose nodes are cosmic rays on the Hammer projection.

    ``vectors`` ``(P, 3)`` are the node positions (unit vectors); ``node_color`` (P,)
    colours the nodes (e.g. energy). Edges crossing the map's 180° seam are left out.
    """
    import networkx as nx

    ax = _sky_axes(ax)
    lon, lat = vectors_to_lonlat(np.asarray(vectors)[:, :3])
    position = {i: (-lon[i], lat[i]) for i in range(len(lon))}
    edges = [(i, j) for i, j in graph.edges() if abs(lon[i] - lon[j]) < np.pi]
    nx.draw_networkx_edges(graph, position, edgelist=edges, ax=ax, arrows=False, width=0.5,
                           edge_color=edge_color, alpha=0.6)
    ax.scatter(-lon, lat, c=node_color if node_color is not None else "k", s=6, zorder=3, cmap="viridis")
    if title:
        ax.set_title(title, fontsize=10, pad=14)
    return ax



def member_roc_curves(curves, ax=None):
    """Per-cosmic-ray ROC curves: ``curves`` maps a name to ``(targets, scores)``, both
    ``(n_maps, P)`` (targets 1 for a source's cosmic ray, 0 for background). Each curve has
    its own colour and line style (:func:`curve_styles`). Returns the axes."""
    from crsky.members import member_auc

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    for (name, (targets, scores)), (colour, style) in zip(curves.items(), curve_styles(len(curves))):
        targets, scores = np.asarray(targets).reshape(-1), np.asarray(scores).reshape(-1)
        false_positive, true_positive, _ = roc_curve(targets > 0.5, scores)
        ax.plot(false_positive, true_positive, color=colour, linestyle=style,
                label=f"{name} (AUC {member_auc(targets[None], scores[None]):.3f})")
    ax.plot([0, 1], [0, 1], **CHANCE_STYLE)
    ax.set(xlabel="background cosmic rays selected (false positive rate)",
           ylabel="source cosmic rays selected (efficiency)", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="lower right", fontsize=8)
    return ax


def purity_efficiency(curves, ax=None, marks=None):
    """Purity against efficiency, one score threshold over all maps: ``curves`` maps a name
    to ``(targets, scores)`` ``(n_maps, P)``. ``marks`` (optional) maps a name to one
    ``(efficiency, purity)`` point to mark (e.g. each map's 25 highest-scored cosmic rays).
    Returns the axes."""
    from crsky.members import purity_efficiency_curve

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    for (name, (targets, scores)), (colour, style) in zip(curves.items(), curve_styles(len(curves))):
        efficiency, purity, _ = purity_efficiency_curve(targets, scores)
        ax.plot(efficiency, purity, color=colour, linestyle=style, label=name)
        if marks and name in marks:
            ax.plot(*marks[name], "o", color=colour, markersize=6)
    ax.set(xlabel="efficiency (source cosmic rays selected)", ylabel="purity (selected that came from a source)",
           xlim=(0, 1), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return ax


def member_skymap(sky_map, targets, selected, ax=None, title=None):
    """One sky map ``(P, 4)`` in galactic coordinates with the selected cosmic rays against
    the truth: ``targets`` ``(P,)`` (1 from a source) and ``selected`` ``(P,)`` (bool).
    Found members are filled circles, missed members open circles, selected background
    crosses, the rest small grey dots. Returns the axes."""
    sky_map = np.asarray(sky_map)
    truth, selected = np.asarray(targets) > 0.5, np.asarray(selected, dtype=bool)
    ax = _sky_axes(ax)
    lon, lat = vectors_to_lonlat(sky_map[:, :3])
    lon = -lon
    rest = ~truth & ~selected
    ax.scatter(lon[rest], lat[rest], s=4, color="0.6", linewidths=0, label="background")
    groups = (
        (truth & selected, dict(s=30, color="tab:blue", marker="o", linewidths=0), "from a source, selected"),
        (truth & ~selected, dict(s=34, facecolors="none", edgecolors="tab:blue", marker="o", linewidths=1.0),
         "from a source, missed"),
        (~truth & selected, dict(s=30, color="tab:red", marker="x", linewidths=1.2), "background, selected"),
    )
    for mask, style, label in groups:
        ax.scatter(lon[mask], lat[mask], label=f"{label} ({int(mask.sum())})", **style)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, -0.32), ncol=2, fontsize=7, frameon=False)
    if title:
        ax.set_title(title, fontsize=10, pad=14)
    return ax
