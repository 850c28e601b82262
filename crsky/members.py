"""Which cosmic rays came from a source: the per-cosmic-ray task.

The simulator keeps, for every cosmic ray, which source it came from (``source_id``, -1
for the isotropic background). A network with one output per cosmic ray
(:func:`crsky.models.build_member_model`) and the classical per-cosmic-ray baseline
(:func:`crsky.baseline.fit_member_baseline`) each give every cosmic ray a score; this
module turns scores and truth into the figures of merit and trains the network:

- :func:`member_targets`: the truth, 1 for a source's cosmic ray, 0 for background;
- :func:`member_auc`: the ROC AUC over all cosmic rays of the maps with sources;
- :func:`top_per_map`: purity and efficiency of each map's ``n`` highest-scored cosmic rays;
- :func:`purity_at_efficiency`: purity at a given efficiency (one score threshold for all maps);
- :func:`compare_at_baseline_efficiency`: a method against the baseline at the baseline's efficiency.

Purity: the fraction of the selected cosmic rays that came from a source. Efficiency: the
fraction of the source cosmic rays that were selected. Both are pooled over maps.
"""

import time

import numpy as np
from sklearn.metrics import roc_auc_score

N_PER_MAP = 25  # the cosmic rays selected per map: a signal map of the course's preset holds 25 on average
MODEL_FILE = "members.keras"


def member_targets(source_id):
    """Per-cosmic-ray truth from ``source_id`` ``(n, P)`` (-1 background, >= 0 a source's
    index): float32 ``(n, P)``, 1 for a source's cosmic ray, 0 for background."""
    source_id = np.asarray(source_id)
    if source_id.ndim != 2:
        raise ValueError(f"source_id must have shape (n_maps, n_events), got {source_id.shape}.")
    return (source_id >= 0).astype(np.float32)


def _check(targets, scores):
    targets, scores = np.asarray(targets), np.asarray(scores, dtype=np.float64)
    if scores.ndim == 3 and scores.shape[-1] == 1:  # a network's (n, P, 1)
        scores = scores[..., 0]
    if targets.shape != scores.shape or targets.ndim != 2:
        raise ValueError(f"targets and scores must both have shape (n_maps, n_events), got {targets.shape} and "
                         f"{scores.shape}.")
    if not np.all(np.isfinite(scores)):
        raise ValueError("the scores hold NaN or infinite values.")
    return targets > 0.5, scores


def member_auc(targets, scores):
    """ROC AUC of per-cosmic-ray ``scores`` ``(n, P)`` (or ``(n, P, 1)``) against ``targets``
    ``(n, P)``, over every cosmic ray of the ``n`` maps."""
    truth, scores = _check(targets, scores)
    return float(roc_auc_score(truth.reshape(-1), scores.reshape(-1)))


def top_per_map(targets, scores, n=N_PER_MAP):
    """Select each map's ``n`` highest-scored cosmic rays.

    Returns a dict: ``purity`` (source cosmic rays among the selected), ``efficiency``
    (selected among all source cosmic rays), ``selected`` (bool ``(n_maps, P)``).
    """
    truth, scores = _check(targets, scores)
    n = int(n)
    if not 0 < n <= truth.shape[1]:
        raise ValueError(f"n must be between 1 and {truth.shape[1]}, got {n}.")
    order = np.argsort(-scores, axis=1, kind="stable")[:, :n]
    selected = np.zeros_like(truth)
    np.put_along_axis(selected, order, True, axis=1)
    found = np.sum(selected & truth)
    return {"purity": float(found / selected.sum()), "efficiency": float(found / max(truth.sum(), 1)),
            "selected": selected}


def purity_efficiency_curve(targets, scores):
    """Purity against efficiency when every cosmic ray above one score threshold is
    selected: ``(efficiency, purity, threshold)``, efficiency rising."""
    from sklearn.metrics import precision_recall_curve

    truth, scores = _check(targets, scores)
    purity, efficiency, threshold = precision_recall_curve(truth.reshape(-1), scores.reshape(-1))
    # precision_recall_curve ends at efficiency 0; drop that end point, then order by efficiency.
    purity, efficiency = purity[:-1][::-1], efficiency[:-1][::-1]
    return efficiency, purity, threshold[::-1]


def purity_at_efficiency(targets, scores, efficiency):
    """The purity of the selection (one score threshold over all maps) that reaches at
    least ``efficiency`` of the source cosmic rays. Returns ``(purity, threshold)``."""
    curve_efficiency, purity, threshold = purity_efficiency_curve(targets, scores)
    index = int(np.searchsorted(curve_efficiency, efficiency, side="left"))
    index = min(index, len(purity) - 1)
    return float(purity[index]), float(threshold[index])


def compare_at_baseline_efficiency(targets, scores, baseline_scores, n=N_PER_MAP):
    """A method's per-cosmic-ray scores against the baseline's on the same maps.

    The baseline's ``n`` highest-scored cosmic rays per map set the efficiency; both
    methods are then compared at that efficiency with one threshold over all maps, and
    also with ``n`` per map each (equal numbers selected).

    Returns a dict of floats: ``auc``, ``baseline_auc``, ``efficiency`` (the baseline's, top
    ``n`` per map), ``purity`` and ``baseline_purity`` at that efficiency (one threshold),
    ``purity_top_n`` and ``baseline_purity_top_n`` (``n`` per map), ``purity_gain``
    (``purity - baseline_purity``) and ``purity_top_n_gain_se`` (the standard error of
    ``purity_top_n - baseline_purity_top_n`` from the paired per-map differences).
    """
    truth = np.asarray(targets) > 0.5
    top = top_per_map(targets, scores, n)
    base_top = top_per_map(targets, baseline_scores, n)
    efficiency = base_top["efficiency"]
    purity = purity_at_efficiency(targets, scores, efficiency)[0]
    baseline_purity = purity_at_efficiency(targets, baseline_scores, efficiency)[0]
    per_map = (np.sum(top["selected"] & truth, axis=1) - np.sum(base_top["selected"] & truth, axis=1)) / n
    se = float(np.std(per_map, ddof=1) / np.sqrt(len(per_map))) if len(per_map) > 1 else float("nan")
    return {"auc": member_auc(targets, scores), "baseline_auc": member_auc(targets, baseline_scores),
            "efficiency": efficiency, "purity": purity, "baseline_purity": baseline_purity,
            "purity_top_n": top["purity"], "baseline_purity_top_n": base_top["purity"],
            "purity_gain": purity - baseline_purity, "purity_top_n_gain_se": se}


def signal_split(arrays, n_test_maps=None):
    """The course's split (:func:`crsky.experiment.split`) of a data set (a dict with
    ``data``, ``label`` and ``source_id``), keeping the maps with sources (label 1) of each
    part: a :class:`crsky.experiment.Split` of ``(x (m, P, 4), source_id (m, P))``. The
    per-cosmic-ray task is posed on them: an isotropic map holds no source cosmic ray."""
    from crsky import experiment

    if "source_id" not in arrays:
        raise ValueError("these maps carry no source_id (the truth per cosmic ray): use the simulation.")
    label, source_id = np.asarray(arrays["label"]), np.asarray(arrays["source_id"])
    index = experiment.split({"data": arrays["data"], "label": np.arange(len(label))}, n_test_maps)
    parts = []
    for x, i in index:
        signal = label[i] == 1
        parts.append((np.asarray(x)[signal], source_id[i][signal]))
    return experiment.Split(*parts)


def predict_members(model, x, batch_size=250):
    """Per-cosmic-ray probabilities ``(n, P)`` of a member model on maps ``x`` ``(n, P, 4)``
    (:func:`crsky.models.predict_per_cosmic_ray`: inference mode; ValueError for another
    output shape or non-finite values)."""
    from crsky.models import predict_per_cosmic_ray

    return predict_per_cosmic_ray(model, x, batch_size)


def fit_members_unless_grading(model, train, val, size, save_as=MODEL_FILE, verbose="auto", handed_in=True):
    """Train the compiled member ``model`` on ``train = (x (n, P, 4), targets (n, P))``,
    validating on ``val`` (the same form), for ``size.epochs`` epochs in batches of
    ``size.batch_size`` (a :class:`crsky.experiment.Size`), then save it to ``save_as``.
    Returns ``(model, history)``. ``handed_in``: whether the student submits the saved file.

    While nbgrader runs the notebook (autograde or Validate) nothing is trained: the model
    saved at ``save_as`` is loaded when it is there (else the untrained ``model`` stays) and
    the history is None. On a CPU the sky graph of every map is computed once before
    training (:func:`crsky.training.fixed_graph_trainer`): the same model, less work per step.
    """
    from crsky.training import fit_unless_grading

    return fit_unless_grading(model, train, val, size, save_as=save_as,
                              encode=lambda targets: np.asarray(targets, np.float32), verbose=verbose,
                              handed_in=handed_in)


# The held-out score of a saved member model: full points from the classical baseline's
# purity on the same maps plus this margin, at the baseline's efficiency; none at the purity
# of a random selection (the fraction of source cosmic rays in the maps). The member DGCNN
# trained at the CPU size beats the baseline by 4.5 points of purity at its efficiency
# (docs/physics.md, "Which cosmic rays came from the source?"): 2 points above it is a margin
# a student's own network reaches at that size, and that the baseline itself does not.
FULL_MARKS_MARGIN = 0.02
BASELINE_FIT_MAPS = 1_000  # signal maps of the public training set the baseline is fitted on


def member_points(purity, baseline_purity, chance, points=4, margin=FULL_MARKS_MARGIN):
    """Points for a held-out purity: all from ``baseline_purity + margin`` (at most 0.99),
    none at or below ``chance``, linear in between."""
    full = min(0.99, baseline_purity + margin)
    if full <= chance:
        return float(points)
    return float(points * np.clip((purity - chance) / (full - chance), 0.0, 1.0))


def score_scores(scores, truth, baseline_scores, points=4, margin=FULL_MARKS_MARGIN):
    """Points of per-cosmic-ray ``scores`` ``(n, P)`` on maps with sources, against the
    classical baseline's scores ``(n, P)`` on the same maps, with the truth ``(n, P)``: the
    purity at the baseline's efficiency (its :data:`N_PER_MAP` per map) turned into points
    by :func:`member_points`. Returns ``(points, result)``, ``result`` the dict of
    :func:`compare_at_baseline_efficiency` plus ``full_marks_at`` and ``chance``."""
    result = compare_at_baseline_efficiency(truth, scores, baseline_scores)
    result["chance"] = float(np.mean(np.asarray(truth) > 0.5))
    result["full_marks_at"] = min(0.99, result["baseline_purity"] + margin)
    return member_points(result["purity"], result["baseline_purity"], result["chance"], points, margin), result


def score_member_model(model, maps, truth, baseline_scores, points=4, margin=FULL_MARKS_MARGIN):
    """:func:`score_scores` of a member model's predictions on ``maps`` ``(n, P, 4)``."""
    return score_scores(predict_members(model, np.asarray(maps)), truth, baseline_scores, points, margin)


def describe(result, n_maps, score, points):
    """The line a student reads about the score of a saved member model (``result`` from
    :func:`score_scores`)."""
    return (f"purity on {n_maps} held-out maps with sources, at the baseline's efficiency {result['efficiency']:.3f}: "
            f"{result['purity']:.3f} -> {score:.2f} of {points:g} points (full points from "
            f"{result['full_marks_at']:.3f}: the classical baseline's {result['baseline_purity']:.3f} on the same "
            f"maps + {FULL_MARKS_MARGIN:.3f}; none at {result['chance']:.3f}, a random choice)")


def public_member_baseline(preset=None):
    """The classical member baseline fitted on the first :data:`BASELINE_FIT_MAPS` maps with
    sources of the course's public data set (``preset``: default the course's)."""
    from crsky import experiment
    from crsky.baseline import fit_member_baseline
    from crsky.simulate import simulate

    train = simulate(preset or experiment.PRESET, 2 * BASELINE_FIT_MAPS + 100, seed=experiment.DATA_SEED)
    signal = train["label"] == 1
    return fit_member_baseline(train["data"][signal], member_targets(train["source_id"][signal]),
                               max_maps=BASELINE_FIT_MAPS)


def held_out_member_maps(n_maps=1_000, seed=None, preset=None):
    """Maps with sources of the held-out simulation of ``n_maps`` maps (default: the public
    held-out seed): ``(x (m, P, 4), targets (m, P))``, m about ``n_maps / 2``."""
    from crsky.simulate import held_out_simulation

    sim = held_out_simulation(preset, n_maps, seed)
    signal = sim["label"] == 1
    return sim["data"][signal], member_targets(sim["source_id"][signal])


def score_saved_member_model(path=MODEL_FILE, points=4, n_maps=None, check_maps=1_000):
    """Print and return the held-out score of the member model saved at ``path`` on public
    held-out maps (:func:`score_scores`, the grading rule), for students to see where they
    stand; the grader applies the same rule to hidden maps.

    ``n_maps``: how many of the ``experiment.HELD_OUT_MAPS`` public held-out maps (about
    half of them hold sources); by default all, except under nbgrader's Validate and the
    self-check, which give a cell ``crsky.limits.CELL_TIMEOUT_S``, and at the small size:
    there the first ``check_maps``, and a line says so. Under nbgrader's autograde nothing
    is scored here: the grader scores the submitted file outside the notebook, and this
    returns 0."""
    from crsky.baseline import member_baseline_scores
    from crsky.scoring import grader_scores_outside, load_submitted_model, public_maps_to_score

    if grader_scores_outside("purity"):
        return 0
    model = load_submitted_model(path)
    x, truth = held_out_member_maps(public_maps_to_score(n_maps, check_maps))
    score, result = score_member_model(model, x, truth, member_baseline_scores(public_member_baseline(), x),
                                       points=points)
    print(describe(result, len(x), round(score, 2), points))
    return round(score, 2)


XLA_MIN_STEPS = 200  # below this many training steps XLA's compile time (tens of seconds on 2 cores) is not repaid


def compile_members(model, steps, learning_rate=3e-3, loss="binary_crossentropy"):
    """Compile a member model: Adam with a cosine decay of the learning rate to zero over
    ``steps`` steps, and ``loss`` (default the binary cross-entropy averaged over every
    cosmic ray of the batch). XLA (:func:`crsky.training.fast_jit_compile`) only for a
    training of at least :data:`XLA_MIN_STEPS` steps: compiling the model with XLA takes
    longer than a short training (the small size's few steps) runs without it."""
    import keras

    from crsky.training import fast_jit_compile

    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, steps))
    model.compile(loss=loss, optimizer=keras.optimizers.Adam(schedule, weight_decay=1e-4),
                  jit_compile=fast_jit_compile() if steps >= XLA_MIN_STEPS else "auto")
    return model


def compare(size_name="cpu", seed=1, n_baseline_maps=2_000, epochs=None, learning_rate=None, save_as=None,
            **model_options):
    """The member DGCNN against the classical member baseline on the same test maps.

    The course's data set at ``size_name`` (:data:`crsky.experiment.SIZES`) and split; the
    task is posed on its signal maps. The baseline is fitted on the first
    ``n_baseline_maps`` signal training maps, the network (``model_options`` to
    :func:`crsky.models.build_member_model`) trained on all of them with the size's epochs,
    batch size and learning rate (or ``epochs``, ``learning_rate``), seed ``seed``.
    Returns the dict of :func:`compare_at_baseline_efficiency` plus ``n_train``, ``n_test``
    (signal maps), ``train_seconds``, ``seconds_per_epoch``. ``save_as``: where to keep the
    trained model (default: nowhere).
    """
    import dataclasses

    from crsky import experiment
    from crsky.dataset import load_sky_maps

    size = experiment.SIZES[size_name]
    size = dataclasses.replace(size, epochs=epochs or size.epochs, learning_rate=learning_rate or size.learning_rate)
    arrays = load_sky_maps(n_maps=size.n_maps, progress=False)
    return compare_on(*signal_split(arrays), size, seed=seed, n_baseline_maps=n_baseline_maps, save_as=save_as,
                      **model_options)


def compare_on(train, val, test, size, seed=1, n_baseline_maps=2_000, save_as=None, keep_scores=False,
               verbose="auto", **model_options):
    """The member DGCNN against the classical member baseline on the same test maps.

    ``train``, ``val``, ``test``: ``(maps (n, P, 4), source_id (n, P))`` of maps with sources
    (:func:`signal_split`); ``size`` a :class:`crsky.experiment.Size` (its epochs, batch size
    and learning rate). The baseline is fitted on the first ``n_baseline_maps`` training maps,
    the network (``model_options`` to :func:`crsky.models.build_member_model`) trained on all
    of them with seed ``seed``. Returns :func:`compare_at_baseline_efficiency`'s dict plus
    ``n_train``, ``n_test``, ``train_seconds``, ``seconds_per_epoch``, ``baseline_seconds``,
    ``parameters``; ``save_as``: where to keep the trained model (default: nowhere).
    ``keep_scores``: also ``curves``, ``{"member DGCNN": (targets, scores), "classical
    baseline": (targets, baseline scores)}`` of the test maps, for the plots. ``verbose``
    goes to ``fit``."""
    import os
    import tempfile

    import keras

    from crsky.baseline import fit_member_baseline, member_baseline_scores
    from crsky.models import build_member_model

    (x_train, id_train), (x_val, id_val), (x_test, id_test) = train, val, test
    train, val, test = (x_train, member_targets(id_train)), (x_val, member_targets(id_val)), \
        (x_test, member_targets(id_test))
    start = time.perf_counter()
    baseline = fit_member_baseline(*train, max_maps=n_baseline_maps)
    baseline_scores = member_baseline_scores(baseline, test[0])
    baseline_seconds = time.perf_counter() - start
    keras.utils.set_random_seed(seed)
    model = build_member_model(num_points=x_train.shape[1], **model_options)
    steps = size.epochs * int(np.ceil(len(train[0]) / size.batch_size))
    compile_members(model, steps, size.learning_rate)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder, _env_without_grading():
        model, _ = fit_members_unless_grading(model, train, val, size,
                                              save_as=save_as or os.path.join(folder, MODEL_FILE), verbose=verbose,
                                              handed_in=False)
    train_seconds = time.perf_counter() - start
    scores = predict_members(model, test[0])
    result = compare_at_baseline_efficiency(test[1], scores, baseline_scores)
    result.update(n_train=len(train[0]), n_test=len(test[0]), train_seconds=train_seconds,
                  seconds_per_epoch=train_seconds / size.epochs, baseline_seconds=baseline_seconds,
                  parameters=int(model.count_params()))
    if keep_scores:
        result["curves"] = {"member DGCNN": (test[1], scores), "classical baseline": (test[1], baseline_scores)}
    return result


class _env_without_grading:
    def __enter__(self):
        import os

        self.saved = os.environ.pop("NBGRADER_EXECUTION", None)

    def __exit__(self, *exc):
        import os

        if self.saved is not None:
            os.environ["NBGRADER_EXECUTION"] = self.saved


def main(argv=None):
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m crsky.members",
                                     description="The member DGCNN against the classical member baseline.")
    parser.add_argument("--size", default="cpu", choices=("small", "cpu", "gpu"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--nodes", type=int, nargs=3, default=None)
    parser.add_argument("--head", type=int, nargs="*", default=None)
    parser.add_argument("--save", default=None, help="keep the trained model in this .keras file")
    args = parser.parse_args(argv)
    options = {key: tuple(value) for key, value in (("nodes", args.nodes), ("head", args.head)) if value is not None}
    result = compare(args.size, seed=args.seed, epochs=args.epochs, learning_rate=args.learning_rate,
                     save_as=args.save, **options)
    print(json.dumps(result, indent=1))
    print(f"member DGCNN: AUC {result['auc']:.3f}, purity {result['purity']:.3f} at the baseline's efficiency "
          f"{result['efficiency']:.3f} ({result['purity_top_n']:.3f} with {N_PER_MAP} per map); classical baseline: "
          f"AUC {result['baseline_auc']:.3f}, purity {result['baseline_purity']:.3f} "
          f"({result['baseline_purity_top_n']:.3f}); gain {100 * result['purity_gain']:+.1f} points "
          f"(25 per map: {100 * (result['purity_top_n'] - result['baseline_purity_top_n']):+.1f}, "
          f"standard error {100 * result['purity_top_n_gain_se']:.1f})")


if __name__ == "__main__":
    main()
