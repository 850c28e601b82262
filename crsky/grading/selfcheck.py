"""Check your notebook before you submit it, the way the grader runs it (no nbgrader needed).

The notebook is executed in a fresh kernel as the autograder does (training skipped,
your saved model graded), and every test cell is reported: passed, partial credit or
failed with its error. Only the tests you can see run here; the grader adds hidden ones.

    python -m crsky.grading.selfcheck notebooks/02_kernel/02_kernel.ipynb     # JupyterHub, laptop

In Colab (or any notebook), as the last cell::

    from crsky.grading.selfcheck import check
    check()               # Colab: checks the notebook that is open
    check("02_kernel.ipynb")
"""

import argparse
import copy
import os
import sys
from pathlib import Path
from unittest import mock

import nbformat

# Set in the environment of the kernel the self-check starts: a check() inside that run (an
# uncommented last cell) prints a note and returns instead of starting yet another kernel.
GUARD = "CRSKY_SELFCHECK_RUNNING"


def _is_test(cell):
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and meta.get("grade") and not meta.get("solution")


def _result(cell):
    """(status, points, detail) of an executed test cell, scored as nbgrader scores it."""
    points = float(cell.metadata.nbgrader.get("points", 0))
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return "FAILED", 0.0, f"{output.get('ename')}: {output.get('evalue')}"[:300]
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            return "FAILED", 0.0, "the cell wrote to stderr, which the grader scores as 0: " + output["text"][:200]
    for output in cell.get("outputs", []):
        if output.get("output_type") == "execute_result":
            try:
                value = float(output["data"]["text/plain"])
            except (KeyError, ValueError):
                break
            if value < points:
                return "PARTIAL", value, f"{value:g} of {points:g} points"
    return "passed", points, ""


def check_notebook(nb, folder=".", timeout=300, quiet=False):
    """Execute a copy of ``nb`` (a notebook node) in ``folder`` as the autograder would and
    report its test cells. Returns a list of ``(grade_id, status, points, max_points, detail)``."""
    from nbclient import NotebookClient

    nb = copy.deepcopy(nb)
    # Training is skipped, as the grader does; the guard stops a check() in the notebook itself.
    with mock.patch.dict(os.environ, {"NBGRADER_EXECUTION": "autograde", GUARD: "1"}):
        NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(folder)}}).execute()
    rows = []
    for cell in nb.cells:
        if _is_test(cell):
            status, points, detail = _result(cell)
            rows.append((cell.metadata.nbgrader["grade_id"], status, points,
                         float(cell.metadata.nbgrader.get("points", 0)), detail))
    if not quiet:
        _print(rows)
    return rows


def _print(rows):
    width = max([len(r[0]) for r in rows] + [10])
    for grade_id, status, points, max_points, detail in rows:
        print(f"{grade_id:{width}s}  {status:7s} {points:4.1f}/{max_points:<4g} {detail}")
    total, maximum = sum(r[2] for r in rows), sum(r[3] for r in rows)
    failing = [r[0] for r in rows if r[1] != "passed"]
    print(f"\nvisible tests: {total:g} of {maximum:g} points" +
          (f"; still failing: {', '.join(failing)}" if failing else "; all pass (the grader adds hidden tests)"))


def check(path=None, timeout=300):
    """Check a notebook file, or in Colab (no path) the notebook that is open.

    Inside a run of the self-check or of nbgrader (autograde, validate) it does nothing but
    say so: the notebook is already being checked."""
    from crsky import colab, course

    if os.environ.get(GUARD) or course.grading_run():
        print("check() skipped: this notebook is being checked or graded right now.")
        return []
    if path is None:
        if not colab.in_colab():
            raise ValueError("give the notebook's path, e.g. check('02_kernel.ipynb'); only Colab can find it alone.")
        return check_notebook(colab.open_notebook(), ".", timeout)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at {path}")
    return check_notebook(nbformat.read(path, as_version=4), path.parent, timeout)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m crsky.grading.selfcheck", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    args = parser.parse_args(argv)
    failing = 0
    for path in args.notebooks:
        print(f"== {path}")
        rows = check(path, args.timeout)
        failing += sum(r[1] != "passed" for r in rows)
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
