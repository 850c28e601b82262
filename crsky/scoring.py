"""The scoring rule of a saved model: its accuracy on held-out sky maps, against the
pair-count baseline on the same maps, turned into points.

Students meet it in the test cell of the training notebook and in the self-check: the model
saved in ``dgcnn.keras`` is scored on maps of the course's preset simulated with the public
held-out seed, which nobody trains on. The grader applies the same rule
(:func:`full_marks_accuracy`, :func:`accuracy_points`) to the probabilities its own trusted
process writes (:mod:`crsky.grading.scoring`, ``python -m crsky.grading.scoring``), on hidden
maps whose labels never enter a student's kernel; under nbgrader's autograde the test cell
scores nothing and only says so (:func:`grader_scores_outside`).
"""

import os
import warnings
from pathlib import Path

import numpy as np

from crsky import course, experiment

MODEL_FILE = "dgcnn.keras"


class ModelFileError(ValueError):
    """A submitted model is missing, cannot be loaded or does not give probabilities."""


def held_out_maps(preset=experiment.PRESET, n_maps=experiment.HELD_OUT_MAPS, seed=experiment.HELD_OUT_PUBLIC_SEED):
    """Held-out maps and labels: ``(x (n, 500, 4), y (n,))``. Students get the public seed."""
    from crsky.simulate import held_out_simulation

    sim = held_out_simulation(preset, n_maps, seed)
    return sim["data"], sim["label"]


def load_submitted_model(path):
    """Load a saved ``.keras`` model for scoring (safe mode: no code in the file runs), with a
    clear error for every way it can fail."""
    import keras

    import crsky.models  # noqa: F401  (registers EnergyScaling for loading)
    import edgeconv  # noqa: F401  (registers EdgeConv for loading)

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"no trained model at {path}: run the training cells, which save it with "
                             f"model.save({str(path)!r}), and submit the file with the notebook.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as error:
        raise ModelFileError(f"the model file {path} cannot be loaded ({type(error).__name__}: "
                             f"{str(error)[:300]}). Save it again with model.save({str(path)!r}).") from error


def predict_signal_probability(model, x, batch_size=250):
    """Signal probability ``(n,)`` of a two-class model on maps ``x`` ``(n, 500, 4)`` (inference mode)."""
    from crsky.models import model_inputs

    out = []
    for start in range(0, len(x), batch_size):
        try:
            probability = np.asarray(model.predict_on_batch(model_inputs(x[start:start + batch_size])))
        except Exception as error:
            raise ModelFileError(f"the model cannot be applied to [points (n, 500, 3), features (n, 500, 4)] "
                                 f"({type(error).__name__}: {str(error)[:300]}).") from error
        if probability.ndim != 2 or probability.shape[1] != 2:
            raise ModelFileError(f"the model must output (n, 2) class probabilities, got shape {probability.shape}.")
        out.append(probability[:, 1])
    probability = np.concatenate(out)
    if not np.all(np.isfinite(probability)):
        raise ModelFileError("the model predicts NaN or infinite values: retrain it (lower the learning rate).")
    return probability


def baseline_accuracy(x, y, preset=experiment.PRESET):
    """Accuracy of the pair-count baseline on maps ``x (n, 500, 4)`` with labels ``y``, its
    angle and threshold chosen on the course's first ``BASELINE_MAX_TRAIN`` public training
    maps (the first maps of the data set, whatever its size)."""
    from crsky.baseline import evaluate_pair_count
    from crsky.simulate import simulate

    train = simulate(preset, experiment.BASELINE_MAX_TRAIN, seed=experiment.DATA_SEED)
    return float(evaluate_pair_count(train["data"], train["label"], x, y)["accuracy"])


def full_marks_accuracy(baseline):
    """The held-out accuracy that earns all of a model's points: the pair-count baseline's
    accuracy on the same maps plus ``experiment.FULL_MARKS_MARGIN`` (at most 0.99)."""
    return min(0.99, baseline + experiment.FULL_MARKS_MARGIN)


def held_out_accuracy(probability, y):
    """Accuracy of signal probabilities ``(n,)`` against integer labels ``(n,)``: a map is
    called signal above 0.5, as everywhere in the course."""
    return float(np.mean((np.asarray(probability) > 0.5) == np.asarray(y)))


def accuracy_points(accuracy, points, full_marks_at, zero_at=0.5):
    """Points for a test accuracy: all of them from ``full_marks_at``, none at or below
    ``zero_at`` (chance), linear in between."""
    fraction = (accuracy - zero_at) / (full_marks_at - zero_at)
    return float(points * np.clip(fraction, 0.0, 1.0))


def describe(accuracy, n_maps, score, points, full_marks_at, baseline):
    """The line a student reads about the score of the saved model."""
    return (f"test accuracy on {n_maps} held-out maps: {accuracy:.3f} -> {score:.2f} of {points:g} points "
            f"(full points from {full_marks_at:.3f}: the pair count's {baseline:.3f} on the same maps "
            f"+ {experiment.FULL_MARKS_MARGIN:.3f})")


def grader_scores_outside(measure):
    """True under nbgrader's autograde, where the grader scores a saved model outside the
    notebook: the cell says so (the feedback shows the ``measure`` and the points) and scores nothing."""
    if os.environ.get("NBGRADER_EXECUTION") != "autograde":
        return False
    print("The grader scores your saved model outside this notebook, on hidden held-out maps; "
          f"your feedback shows the {measure} and the points.")
    return True


def public_maps_to_score(n_maps=None, check_maps=1_000):
    """How many public held-out maps a notebook's model cell scores: ``n_maps``, by default
    all ``experiment.HELD_OUT_MAPS``, except under nbgrader's Validate and the self-check,
    which give a cell ``crsky.limits.CELL_TIMEOUT_S``, and at the small size
    (``CRSKY_SIZE=small``, a quick try whose model is no measure of the recipe): there the
    first ``check_maps``, and a line says so."""
    if n_maps is not None:
        return n_maps
    if os.environ.get("NBGRADER_EXECUTION") == "validate":
        why = ("to fit the time Validate and the self-check give a cell (the grader uses as many hidden maps; "
               "run this cell in the notebook for all of them).")
    elif course.requested_size() == "small":
        why = "at the small size (CRSKY_SIZE=small, a quick try); at the CPU and GPU sizes this cell scores all of them."
    else:
        return experiment.HELD_OUT_MAPS
    n_maps = min(check_maps, experiment.HELD_OUT_MAPS)
    print(f"Scored on the first {n_maps:,} of the {experiment.HELD_OUT_MAPS:,} public held-out maps, {why}")
    return n_maps


def score_saved_model(path=MODEL_FILE, points=4, preset=experiment.PRESET, n_maps=None, check_maps=1_000):
    """Score the model saved at ``path`` on the public held-out maps against the pair-count
    baseline on the same maps (:func:`full_marks_accuracy`, the grading rule); prints the
    accuracy and the rule and returns the points (the value nbgrader reads as partial credit).

    ``n_maps``: how many of the ``experiment.HELD_OUT_MAPS`` public held-out maps; by default
    all of them, except under nbgrader's Validate and the self-check (``NBGRADER_EXECUTION ==
    "validate"``), which run every cell of the notebook within the grader's time per cell
    (``crsky.limits.CELL_TIMEOUT_S``), and at the small size: there the first ``check_maps``
    (about 10 s on 2 idle CPU cores, a minute on a busy machine, where all 5,000 take 40-75 s
    idle) and a line says so (:func:`public_maps_to_score`).

    Under nbgrader's autograde nothing is scored here: the grader scores the submitted file
    outside the notebook, and this returns 0 so that no points come from inside the kernel."""
    if grader_scores_outside("accuracy"):
        return 0
    model = load_submitted_model(path)
    x, y = held_out_maps(preset, n_maps=public_maps_to_score(n_maps, check_maps))
    probability = predict_signal_probability(model, x)
    accuracy = held_out_accuracy(probability, y)
    baseline = baseline_accuracy(x, y, preset)
    full_marks_at = full_marks_accuracy(baseline)
    score = accuracy_points(accuracy, points, full_marks_at)
    print(describe(accuracy, len(y), score, points, full_marks_at, baseline))
    return round(score, 2)
