"""The grader's trusted scoring process: a submitted model's probabilities on maps whose
labels it never sees.

The grader never scores inside the student's notebook. It runs this module as a separate,
clean, sandboxed process (``python -m crsky.grading.scoring``) that loads only the submitted
model file (Keras safe mode) and writes one signal probability per map (``--task maps``,
notebook 3) or one per cosmic ray (``--task members``, notebook 5); the grader turns them
into an accuracy or a purity and points with the course's rule (:mod:`crsky.scoring`). The
hidden seed, the hidden maps and their labels never enter a student's kernel.
"""

import argparse
import json
import sys

import numpy as np

# The rule lives in crsky.scoring; its names stay importable from here for notebooks
# released before it moved (``from crsky.grading.scoring import score_saved_model``).
from crsky.scoring import (MODEL_FILE, ModelFileError, accuracy_points, baseline_accuracy,  # noqa: F401
                           describe, full_marks_accuracy, grader_scores_outside, held_out_accuracy, held_out_maps,
                           load_submitted_model, predict_signal_probability, public_maps_to_score, score_saved_model)

TASKS = ("maps", "members")  # one probability per map (notebook 3), one per cosmic ray (notebook 5)


def predict_member_probability(model, x):
    """Per-cosmic-ray probabilities ``(n, P)`` of a member model on maps ``x`` ``(n, P, 4)``,
    every failure a :class:`ModelFileError` that says what was expected."""
    from crsky.models import predict_per_cosmic_ray

    try:
        return predict_per_cosmic_ray(model, np.asarray(x))
    except ValueError as error:
        raise ModelFileError(f"{error} Save the model whose output is one probability per cosmic ray.") from error
    except Exception as error:
        raise ModelFileError(f"the model cannot be applied to [points (n, 500, 3), features (n, 500, 4)] "
                             f"({type(error).__name__}: {str(error)[:300]}).") from error


def predict_file(model_path, maps_path, out_path, task="maps"):
    """Load the model at ``model_path``, predict the maps in ``maps_path`` (an ``.npy`` of shape
    ``(n, 500, 4)``, no labels) and write its probabilities to ``out_path``: the signal
    probabilities ``(n,)`` (``task="maps"``) or the per-cosmic-ray ones ``(n, 500)``
    (``task="members"``). Returns the number of maps."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
    x = np.load(maps_path, allow_pickle=False, mmap_mode="r")
    model = load_submitted_model(model_path)
    probability = predict_signal_probability(model, x) if task == "maps" else predict_member_probability(model, x)
    np.save(out_path, probability.astype(np.float64), allow_pickle=False)
    return len(probability)


def read_probabilities(path, shape):
    """The probabilities a scoring process wrote, checked: an array of ``shape`` (an int
    ``n_maps`` for ``(n_maps,)``), finite float64 values in [0, 1]."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    try:
        probability = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ModelFileError(f"the scoring process wrote no readable result ({type(error).__name__}).") from error
    if probability.shape != shape or probability.dtype != np.float64:
        raise ModelFileError(f"the scoring process wrote {probability.shape} {probability.dtype}, "
                             f"expected {shape} float64.")
    if not np.all(np.isfinite(probability)) or probability.min() < 0 or probability.max() > 1:
        raise ModelFileError("the model's outputs are not probabilities between 0 and 1.")
    return probability


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m crsky.grading.scoring",
                                     description="The grader's scoring process: a saved model's "
                                                 "probabilities on maps (no labels).")
    parser.add_argument("--model", required=True, help="the submitted .keras file")
    parser.add_argument("--maps", required=True, help=".npy file of maps (n, 500, 4)")
    parser.add_argument("--out", required=True, help=".npy file for the probabilities: (n,) or (n, 500)")
    parser.add_argument("--task", choices=TASKS, default="maps",
                        help="maps: one signal probability per map; members: one per cosmic ray")
    args = parser.parse_args(argv)
    from crsky import course

    course.quiet()
    try:
        n_maps = predict_file(args.model, args.maps, args.out, task=args.task)
    except ModelFileError as error:
        print(json.dumps({"error": str(error)}))
        return 2
    print(json.dumps({"maps": n_maps}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
