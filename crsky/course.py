"""Helpers the notebooks share: where the course lives, what Colab installs, quiet logs, the size
switch, GPU detection, whether nbgrader is running the notebook.

The size switch is the environment variable ``CRSKY_SIZE``:
    ``small``  a few hundred maps and one epoch: CI executes every notebook this way;
    ``cpu``    what 2 CPU cores train in a few minutes;
    ``gpu``    the textbook's full size (50,000 maps, 10 epochs);
    unset      ``gpu`` when Keras sees a GPU, else ``cpu``.
Under nbgrader's autograde and validate it is always ``small``: nothing is trained there.
"""

import contextlib
import importlib.util
import logging
import os
import sys
import warnings
from pathlib import Path

from crsky.experiment import SIZES

# Where the course lives; the notebooks' set-up cells and badges use this URL (a CI test
# checks that every notebook agrees with it).
REPO_URL = "https://github.com/crsky-course/crsky"
# What the notebooks' set-up cell installs on Colab: this release's wheel (built by
# `python -m pip wheel --no-deps . -w dist`, attached to the release v<version>). The set-up
# cells hold the same string; a CI test checks that they and the package version agree.
COLAB_REQUIREMENT = "crsky @ https://github.com/crsky-course/crsky/releases/download/v0.1.0/crsky-0.1.0-py3-none-any.whl"
# nbgrader sets NBGRADER_EXECUTION in the kernel: "autograde" when grading, "validate" for the
# Validate button and `nbgrader validate`. Neither may train.
GRADING_RUNS = ("autograde", "validate")
# The course's assignments, in order (04 uses the model 03 saves); one folder each in
# solutions/ (instructor notebooks) and notebooks/ (student notebooks).
ASSIGNMENTS = ("01_sky", "02_kernel", "03_training", "04_graph", "05_sources")
# The repository (solutions/, notebooks/, grading/) when the package is used from a checkout.
COURSE_ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def _stderr_discarded():
    """Send file descriptor 2 (where C++ libraries log) to /dev/null for a while."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def quiet(keras=True):
    """Keep TensorFlow's and absl's log lines off stderr (nbgrader scores a test cell
    with any stderr output as 0). Call before importing keras.

    TensorFlow prints C++ start-up notices (oneDNN, absl) that no log level silences;
    with ``keras=True`` it is imported here once with those discarded (import errors still
    raise). A notebook that uses no Keras passes ``keras=False`` and saves that import.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    if keras and os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow" \
            and importlib.util.find_spec("tensorflow"):
        with _stderr_discarded():
            import tensorflow  # noqa: F401


def grading_run():
    """True when nbgrader executes the notebook (autograde or validate): skip training there."""
    return os.environ.get("NBGRADER_EXECUTION", "").strip().lower() in GRADING_RUNS


def has_gpu():
    """True when the active Keras backend sees a GPU. Without a GPU device on the machine
    (no NVIDIA or AMD device files) no backend is imported to ask."""
    if not any(Path(device).exists() for device in ("/dev/nvidia0", "/dev/nvidiactl", "/dev/kfd", "/dev/dxg")):
        return False
    from edgeconv import on_gpu

    return on_gpu()


def size(verbose=True):
    """The :class:`crsky.experiment.Size` chosen by ``CRSKY_SIZE`` or, when unset, by the hardware."""
    name = os.environ.get("CRSKY_SIZE", "").strip().lower()
    if name and name not in SIZES:
        raise ValueError(f"CRSKY_SIZE must be one of {sorted(SIZES)} or unset, got {name!r}.")
    reason = "CRSKY_SIZE"
    if grading_run():
        name, reason = "small", "autograding or validating: nothing is trained, saved models are graded"
    elif not name:
        name, reason = ("gpu", "a GPU was found") if has_gpu() else ("cpu", "no GPU was found")
    chosen = SIZES[name]
    if verbose:
        print(f"size {chosen.name!r} ({reason}): {chosen.n_maps} sky maps, {chosen.epochs} epochs, "
              f"batches of {chosen.batch_size}, learning rate from {chosen.learning_rate:g}")
    return chosen
