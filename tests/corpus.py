"""The format shared by the corpora of sample submissions (tests/corpus_honest.py: correct
answers written in other ways; tests/corpus_hostile.py: attacks on the grader).

A :class:`Variant` says what one student changed in a released notebook; :func:`build`
turns it into that notebook and :func:`submit` writes it as a submission the grader takes
(``folder/<name>/<assignment>/<assignment>.ipynb`` and the files beside it). Both reuse
:mod:`crsky.grading.samples`, which answers the released notebook with the course's
solutions; a solution cell a variant does not name keeps the course's answer.
"""

import dataclasses
import re
from pathlib import Path

import nbformat

from crsky.course import ASSIGNMENTS
from crsky.grading import samples

_NAME = re.compile(r"[A-Za-z0-9_-]+")


@dataclasses.dataclass
class Variant:
    name: str                 # unique, e.g. "01_layer_subclass_kernel"; used as the student id (letters, digits, _ and -)
    assignment: str           # "01_sky" ... "05_sources"
    answers: dict             # grade_id of a solution cell -> the full source the student wrote there (no BEGIN/END SOLUTION lines)
    extra_cells: list = ()    # (where, source): where is "before:<grade_id>", "after:<grade_id>" or "end"; code cells the student added
    edits: dict = None        # grade_id of a NON-solution code cell (e.g. a test or set-up cell) -> replaced source (tampering with locked cells)
    delete: tuple = ()        # grade_ids of cells the student deleted
    files: dict = None        # extra files submitted beside the notebook: name -> bytes
    model: str = None         # notebook 3: path of a .keras file submitted as dgcnn.keras (None: none)
    note: str = ""            # one line: what the variant does (honest) / what the attack tries (hostile)
    # hostile only: the most points each test may get: {grade_id: max}; tests not named: what the course's
    # answer of that notebook gets. And whether the grader should flag the notebook for review.
    at_most: dict = None
    flagged: bool = None

    def __post_init__(self):
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"a variant's name is its student id: letters, digits, _ and -; got {self.name!r}")
        if self.assignment not in ASSIGNMENTS:
            raise ValueError(f"assignment must be one of {list(ASSIGNMENTS)}, got {self.assignment!r}")


def grade_id(cell):
    """The nbgrader grade_id of a cell, or None."""
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def _position(cells, where, name):
    """Index at which an extra cell placed ``where`` goes into ``cells``."""
    if where == "end":
        return len(cells)
    side, _, target = where.partition(":")
    ids = [grade_id(c) for c in cells]
    if side not in ("before", "after") or target not in ids:
        raise ValueError(f"variant {name}: extra cell position must be 'end', 'before:<grade_id>' or "
                         f"'after:<grade_id>' of a cell in the notebook, got {where!r}")
    index = ids.index(target)
    return index if side == "before" else index + 1


def build(variant):
    """The released notebook of ``variant.assignment`` as that student hands it in: the
    variant's answers in its solution cells (the course's answer in the others), its extra
    code cells inserted, its edits to locked cells applied and its deleted cells removed.
    Returns an ``nbformat.NotebookNode``."""
    nb = samples.answered(variant.assignment, replace=dict(variant.answers))
    ids = {grade_id(c) for c in nb.cells}
    unknown = (set(variant.answers) | set(variant.edits or {}) | set(variant.delete)) - ids
    if unknown:
        raise ValueError(f"variant {variant.name}: no cells {sorted(unknown)} in {variant.assignment}")
    for cell in nb.cells:
        if grade_id(cell) in (variant.edits or {}):
            cell.source = variant.edits[grade_id(cell)]
    # Extra cells are placed in order, each relative to the notebook as it stands then, so
    # that two cells "after:x" come out in the order the variant lists them.
    placed = {}
    for where, source in variant.extra_cells:
        cells = nb.cells
        index = _position(cells, where, variant.name) + placed.get(where, 0) * (where.startswith("after:"))
        cells.insert(index, nbformat.v4.new_code_cell(source))
        placed[where] = placed.get(where, 0) + 1
    nb.cells = [c for c in nb.cells if grade_id(c) not in set(variant.delete)]
    return nb


def submit(variant, folder):
    """Write the variant's submission into ``folder``: ``<name>/<assignment>/<assignment>.ipynb``,
    its files and (notebook 3) its model as ``dgcnn.keras`` beside it. Returns that folder."""
    target = samples.submit(folder, variant.name, variant.assignment, nb=build(variant), model=variant.model)
    for name, data in (variant.files or {}).items():
        path = Path(target) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return target
