"""Sample submissions made from the course's own notebooks, for the pipeline's tests and
the grading benchmark: the released notebook answered with the solutions, optionally
with a cell replaced, a test cell emptied or deleted."""

import shutil
from pathlib import Path

import nbformat

from crsky.course import COURSE_ROOT as ROOT


def answered(assignment, replace=None, drop_test=None, edit_test=None):
    """The released notebook of ``assignment`` filled in with the solutions.

    ``replace`` maps a solution cell's grade_id to other code; ``drop_test`` deletes the
    test cell with that grade_id; ``edit_test`` replaces that test cell's code by ``pass``.
    """
    solution = {c.metadata.nbgrader["grade_id"]: c.source for c in
                nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4).cells
                if c.metadata.get("nbgrader", {}).get("solution")}
    nb = nbformat.read(ROOT / "notebooks" / assignment / f"{assignment}.ipynb", as_version=4)
    cells = []
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in solution and cell.cell_type == "code":
            source = (replace or {}).get(grade_id, solution[grade_id])
            cell.source = "\n".join(line for line in source.splitlines() if "### BEGIN SOLUTION" not in line
                                    and "### END SOLUTION" not in line)
        elif grade_id in solution and cell.cell_type == "markdown":
            cell.source = (replace or {}).get(grade_id, solution[grade_id])  # a written answer, graded by hand
        if grade_id is not None and grade_id == drop_test:
            continue
        if grade_id is not None and grade_id == edit_test:
            cell.source = "pass"
        cells.append(cell)
    nb.cells = cells
    return nb


def submit(folder, student, assignment, nb=None, model=None, raw=None):
    """Write ``folder/student/assignment/assignment.ipynb`` (``raw`` text instead of a
    notebook if given) and copy ``model`` beside it under the name the assignment saves
    its model as (``dgcnn.keras``, ``members.keras``: :data:`crsky.submit.FILES`)."""
    target = Path(folder) / student / assignment
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{assignment}.ipynb"
    if raw is not None:
        path.write_text(raw)
    else:
        nbformat.write(nb or answered(assignment), path)
    if model is not None:
        from crsky.submit import FILES

        shutil.copy(model, target / FILES.get(assignment, ("dgcnn.keras",))[0])
    return target
