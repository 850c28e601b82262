"""The course's experiment set-up in one place: which sky maps, how many, how they are split.

The notebooks, the main job, the grader and the benchmarks import these names; change
the set-up here and nowhere else.
"""

import dataclasses
from typing import NamedTuple

import numpy as np

PRESET = "textbook"  # the simulator preset of the notebooks, the main job and the grader
DATA_SEED = 1  # the seed of the course's (public) data set
N_MAPS = 50_000  # the textbook's data set: 50,000 maps ...
N_TEST_MAX = 10_000  # ... of which the last 10,000 are the test set,
TEST_FRACTION = 0.2  # or the last fifth of a smaller set
VALIDATION_FRACTION = 0.1  # the last tenth of the training maps is held back for validation
BASELINE_MAX_TRAIN = 5_000  # the classical baseline is fitted on the first 5,000 training maps
# The main job's ordering and per-cosmic-ray tasks train on this many signal maps of the
# training split for this many epochs: both tasks in about 3 minutes on 2 CPU cores, beside
# the map task's 6 (docs/physics.md, "The main job's three comparisons").
SIDE_TASK_MAPS = 3_000
SIDE_TASK_EPOCHS = 2

# The grader's held-out maps: the same preset, a seed nobody trains on. Students check
# their model with the public seed; the grader uses a hidden one (grading/README.md).
HELD_OUT_PUBLIC_SEED = 20240601
HELD_OUT_MAPS = 5_000  # standard error of an accuracy near 0.9: 0.004
# A saved model earns all its points when its held-out accuracy beats the pair-count
# baseline (notebook 1's statistic, its angle and threshold chosen on the first
# BASELINE_MAX_TRAIN public training maps) on the same maps by this margin; partial credit
# falls linearly to none at chance (0.5). Honest CPU-size models beat the pair count by
# 2-3 points (docs/physics.md, "Grading against the baseline"), so they earn full points
# whichever seed they trained with, and a model that learned only to count pairs does not.
FULL_MARKS_MARGIN = 0.01


@dataclasses.dataclass(frozen=True)
class Size:
    """How much data and training a notebook uses: ``n_maps`` simulated, ``epochs``, ``batch_size``,
    and the ``learning_rate`` at which the cosine decay starts."""

    name: str
    n_maps: int
    epochs: int
    batch_size: int = 64
    learning_rate: float = 3e-3


SIZES = {
    # A few hundred maps and one epoch: CI executes every notebook this way.
    "small": Size("small", n_maps=600, epochs=1),
    # Batches of 32 on a CPU: this small network learns per update, and two CPU cores make twice
    # as many updates of half the size in the same time (0.920 vs 0.859 test accuracy, both ~7 min).
    # Three epochs from twice the learning rate, with the sky graph computed once per map
    # (crsky.training.fit_unless_grading), reach the accuracy of five epochs from 3e-3 in half
    # the training time (docs/performance.md, "Training on CPU").
    "cpu": Size("cpu", n_maps=30_000, epochs=3, batch_size=32, learning_rate=6e-3),
    # The textbook's full size.
    "gpu": Size("gpu", n_maps=N_MAPS, epochs=10),
}


def side_task_size(size):
    """The :class:`Size` of the ordering and per-cosmic-ray tasks beside the map task at
    ``size``: the same maps simulated, at most ``SIDE_TASK_EPOCHS`` epochs in ``size``'s
    batches from its learning rate (each task trains on at most ``SIDE_TASK_MAPS`` signal
    maps of the training split)."""
    return dataclasses.replace(size, name=f"{size.name}, side task", epochs=min(size.epochs, SIDE_TASK_EPOCHS))


def n_test(n_maps):
    """Test maps of a data set of ``n_maps``: 10,000 of 50,000, a fifth of a smaller set."""
    return min(N_TEST_MAX, int(n_maps * TEST_FRACTION))


class Split(NamedTuple):
    """Training, validation and test maps ``(x (n, P, 4), y (n,))`` of one data set."""

    train: tuple
    val: tuple
    test: tuple


def split(arrays, n_test_maps=None, validation_fraction=VALIDATION_FRACTION):
    """Split a data set (a dict with ``data`` and ``label``) the textbook's way: the last
    ``n_test_maps`` maps (default :func:`n_test`) are the test set, the last
    ``validation_fraction`` of the rest (at least one map, none if the fraction is 0) the
    validation set. Returns a :class:`Split` of ``(x, y)`` pairs, views of the arrays.
    """
    data, label = arrays["data"], arrays["label"]
    n_maps = len(label)
    n_test_maps = n_test(n_maps) if n_test_maps is None else int(n_test_maps)
    if not 0 < n_test_maps < n_maps:
        raise ValueError(f"the test set must hold between 1 and {n_maps - 1} of the {n_maps} maps, "
                         f"got {n_test_maps}.")
    n_rest = n_maps - n_test_maps
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction!r}.")
    n_val = max(1, int(round(n_rest * validation_fraction))) if validation_fraction > 0 else 0
    if n_rest - n_val < 1:
        raise ValueError(f"{n_maps} maps leave no training maps after {n_test_maps} test and {n_val} "
                         f"validation maps: simulate more maps.")
    n_train = n_rest - n_val
    return Split(train=(data[:n_train], label[:n_train]), val=(data[n_train:n_rest], label[n_train:n_rest]),
                 test=(data[n_rest:], label[n_rest:]))


def baseline_subset(x_train, y_train):
    """The training maps the classical baseline is fitted on (the first ``BASELINE_MAX_TRAIN``)."""
    return np.asarray(x_train)[:BASELINE_MAX_TRAIN], np.asarray(y_train)[:BASELINE_MAX_TRAIN]


def paired_difference(correct_a, correct_b):
    """Accuracy difference of two classifiers on the same maps (``correct_*``: booleans ``(n,)``,
    whether each map was classified right) and its paired standard error: a dict of
    ``difference`` and ``se``."""
    difference = np.asarray(correct_a, float) - np.asarray(correct_b, float)
    return {"difference": float(difference.mean()), "se": float(difference.std(ddof=1) / np.sqrt(len(difference)))}
