"""The course's limits, in one place: what a student's hand-in may hold and how long the grader
gives a notebook. Students' tools check against them before a file leaves the student
(``crsky.submit``, the Validate button's configuration); the grader enforces them
(``crsky.grading.collect``, the grading pipeline, ``grading/nbgrader_config.py``). One
number per limit, so that nothing a student's side accepts is dropped at grading.

This module imports nothing: Colab and a JupyterHub image read it before any other part of
the course is installed or configured.
"""

MiB = 1 << 20  # bytes

# Time (seconds of wall time).
CELL_TIMEOUT_S = 120  # one notebook cell at autograde and Validate (an infinite loop costs one cell)
TASK_TIMEOUT_S = 900  # one student's notebook at grading: the kernel and its tests
SCORING_TIMEOUT_S = 600  # the trusted process that scores one saved model (Keras' import, 5,000 maps, a busy CPU);
#                          a notebook with a scored model gets TASK_TIMEOUT_S + SCORING_TIMEOUT_S in all

# Files, in bytes as written to disk (a zip counts by the bytes it expands to).
NOTEBOOK_BYTES = 20 * MiB  # an executed notebook with figures; the course's are under 5 MiB
NOTEBOOK_CELLS = 2000  # cells of one notebook; the course's have under 40 (every cell costs time at grading)
MODEL_BYTES = 25 * MiB  # a saved model (``.keras``, ``.h5``); the reference DGCNN saves to about 0.2 MiB
OTHER_FILE_BYTES = 25 * MiB  # any other file beside a notebook
SUBMISSION_BYTES = 100 * MiB  # everything one student hands in
SUBMISSION_FILES = 200  # files one student hands in (and, apart, folders below the assignment folders)
ZIP_MEMBERS = 1000  # members of one zip, folders and macOS clutter included


def size_text(n):
    """``n`` bytes as people read it: ``"25.0 MiB"``, ``"220 KiB"``, ``"12 bytes"``."""
    if n >= MiB:
        return f"{n / MiB:.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.0f} KiB"
    return f"{n} bytes"
