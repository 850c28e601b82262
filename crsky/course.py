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
# Set by the self-check (crsky.selfcheck) in the kernel it starts, beside
# NBGRADER_EXECUTION="validate": a check() or submit() inside that run returns at once, and the
# saved model is scored as under Validate (crsky.scoring.score_saved_model).
SELFCHECK_ENV = "CRSKY_SELFCHECK_RUNNING"
# Folders a search for a student's notebook never enters (find_notebook): environments,
# caches, editors' copies, nbgrader's feedback.
_NOT_SEARCHED = {".ipynb_checkpoints", "__pycache__", "node_modules", "site-packages", "feedback"}


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


def selfcheck_run():
    """True inside the kernel the self-check started (crsky.selfcheck)."""
    return bool(os.environ.get(SELFCHECK_ENV))


def find_notebook(name, start=".", max_depth=4):
    """The notebook a student means by ``name``, as a path.

    ``name`` is a path (found as it is), or a bare file name such as ``"01_sky.ipynb"``:
    then it is searched for in ``start`` and the folders below it (at most ``max_depth``
    levels; hidden folders, environments and nbgrader's feedback skipped), so that a command
    typed in a terminal that opened in the server's root (a hub's home, a laptop's clone)
    finds ``01_sky/01_sky.ipynb`` or ``my-work/01_sky/01_sky.ipynb``. In a checkout of the
    course, a copy in ``notebooks/`` counts only when there is no other, one in
    ``solutions/`` only when there is none at all. Raises FileNotFoundError (none) or ValueError (several), saying
    which and what to type instead."""
    path = Path(name)
    if path.is_file():
        return path
    if path.name != str(name) or not path.suffix == ".ipynb":
        raise FileNotFoundError(f"no notebook at {path}: give the path of your .ipynb file.")
    start = Path(start)
    found = []
    for folder, subfolders, files in os.walk(start):
        depth = len(Path(folder).relative_to(start).parts)
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(".") and d not in _NOT_SEARCHED
                               and depth < max_depth)
        if path.name in files:
            found.append(Path(folder) / path.name)
    def rank(found_path):  # the student's copies first, then the release, then the instructor's
        folder = found_path.resolve().parent.parent
        if not (folder.parent / "crsky" / "course.py").is_file():  # not in a checkout of the course
            return 0
        return {"notebooks": 1, "solutions": 2}.get(folder.name, 0)

    if found:
        best = min(map(rank, found))
        found = [p for p in found if rank(p) == best]
    if not found:
        raise FileNotFoundError(f"no {path.name} in {start.resolve()} or the folders below it: give the "
                                f"notebook's path, e.g. {path.stem}/{path.name}.")
    if len(found) > 1:
        listed = ", ".join(str(p) for p in found[:5]) + (", ..." if len(found) > 5 else "")
        raise ValueError(f"{len(found)} notebooks named {path.name} below {start.resolve()} ({listed}): "
                         "give the path of the one you mean.")
    return found[0]


class MissingAnswer(Exception):
    """An exercise a cell needs is not answered yet (or its cell was not run). Shown in a
    notebook as its one-line message, without a traceback."""

    def _render_traceback_(self):  # IPython shows these lines instead of the traceback
        return [f"{type(self).__name__}: {self}"]


def _missing(error, names):
    """The answer among ``names`` whose absence caused ``error`` (following the exceptions
    it was raised from), as ``(name, "unanswered" | "undefined")``, or None."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, NameError) and getattr(error, "name", None) in names:
            return error.name, "undefined"
        if isinstance(error, NotImplementedError):
            tb = error.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            if tb is not None and tb.tb_frame.f_code.co_name in names:
                return tb.tb_frame.f_code.co_name, "unanswered"
        error = error.__cause__ or error.__context__
    return None


@contextlib.contextmanager
def uses_answers(*names):
    """Around notebook code that calls the student's functions ``names`` (e.g. a layer built
    with ``kernel_nn``): when one is not answered yet (it still raises NotImplementedError)
    or its cell was not run, :class:`MissingAnswer` says which and what to do, instead of
    the traceback of the library that called it. Any other error passes through."""
    try:
        yield
    except Exception as error:
        missing = _missing(error, names)
        if missing is None:
            raise
        name, why = missing
        if why == "unanswered":
            message = (f"write {name} in its cell above first: it still raises NotImplementedError. "
                       "Run that cell, then this one.")
        else:
            message = f"{name} is not defined: run its cell above first (the exercise), then this one."
        raise MissingAnswer(message) from None


def has_gpu():
    """True when the active Keras backend sees a GPU. Without a GPU device on the machine
    (no NVIDIA or AMD device files) no backend is imported to ask."""
    if not any(Path(device).exists() for device in ("/dev/nvidia0", "/dev/nvidiactl", "/dev/kfd", "/dev/dxg")):
        return False
    from edgeconv import on_gpu

    return on_gpu()


def requested_size():
    """The size name ``CRSKY_SIZE`` asks for (lower case; ``""`` when unset), unchecked."""
    return os.environ.get("CRSKY_SIZE", "").strip().lower()


def size(verbose=True):
    """The :class:`crsky.experiment.Size` chosen by ``CRSKY_SIZE`` or, when unset, by the hardware."""
    name = requested_size()
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
