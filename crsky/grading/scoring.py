"""Scoring a student's saved model on held-out sky maps (used by the autograder's tests).

The held-out maps come from the course's preset (:mod:`crsky.experiment`) and a seed
students never trained on. An instructor hides the real one from students by setting
``CRSKY_GRADING_SEED`` (and optionally ``CRSKY_GRADING_N_MAPS``) on the grading machine
only; without it the public seed is used, so students can check their work.
"""

import os
import warnings
from pathlib import Path

import numpy as np

from crsky import experiment


class ModelFileError(ValueError):
    """A submitted model is missing, cannot be loaded or does not give probabilities."""


def held_out_maps(preset=experiment.PRESET, n_maps=None, seed=None):
    """Held-out maps and labels: ``(x (n, 500, 4), y (n,))``."""
    from crsky.simulate import simulate

    seed = int(os.environ.get("CRSKY_GRADING_SEED", experiment.HELD_OUT_PUBLIC_SEED)) if seed is None else seed
    n_maps = int(os.environ.get("CRSKY_GRADING_N_MAPS", experiment.HELD_OUT_MAPS)) if n_maps is None else n_maps
    sim = simulate(preset, n_maps, seed=seed)
    return sim["data"], sim["label"]


def load_submitted_model(path):
    """Load a saved ``.keras`` model for scoring, with a clear error for every way it can fail."""
    import keras

    import edgeconv  # noqa: F401  (registers EdgeConv for loading)

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"no trained model at {path}: run the training cells, which save it with "
                             f"model.save({str(path)!r}), and submit the file with the notebook.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return keras.models.load_model(path, compile=False)
    except Exception as error:
        raise ModelFileError(f"the model file {path} cannot be loaded ({type(error).__name__}: "
                             f"{str(error)[:300]}). Save it again with model.save({str(path)!r}).") from error


def predict_signal_probability(model, x, batch_size=200):
    """Signal probability ``(n,)`` of a two-class model on maps ``x`` (inference mode)."""
    from crsky.models import model_inputs

    out = []
    for start in range(0, len(x), batch_size):
        try:
            probability = np.asarray(model(model_inputs(x[start:start + batch_size]), training=False))
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


def accuracy_points(accuracy, points, full_marks_at, zero_at=0.5):
    """Points for a test accuracy: all of them from ``full_marks_at``, none at or below
    ``zero_at`` (chance), linear in between."""
    fraction = (accuracy - zero_at) / (full_marks_at - zero_at)
    return float(points * np.clip(fraction, 0.0, 1.0))


def score_saved_model(path="dgcnn.keras", points=4, full_marks_at=0.85, preset=experiment.PRESET):
    """Score the model saved at ``path`` on held-out maps; prints the accuracy, returns the points."""
    model = load_submitted_model(path)
    x, y = held_out_maps(preset)
    probability = predict_signal_probability(model, x)
    accuracy = float(np.mean((probability > 0.5) == y))
    score = accuracy_points(accuracy, points, full_marks_at)
    print(f"test accuracy on {len(y)} held-out maps: {accuracy:.3f} -> {score:.2f} of {points} points "
          f"(full points from {full_marks_at:.2f})")
    return round(score, 2)
