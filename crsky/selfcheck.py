"""Check your notebook before you hand it in, the way the grader runs it (no nbgrader needed).

The saved notebook is executed in a fresh kernel as nbgrader's Validate does (training
skipped, your saved model scored on public held-out maps) and every test cell is reported:
passed, partial credit or failed with its reason. Only the tests you can see run here; the
grader adds hidden ones.

    python -m crsky.selfcheck 02_kernel.ipynb      # a terminal, from any folder above it
    python -m crsky.selfcheck my-work/02_kernel/02_kernel.ipynb

A bare notebook name is searched for below the working folder (a JupyterLab terminal opens
in the server's root: the home on a hub, the clone on a laptop). In a notebook, as the last
cell (in Colab it checks the open notebook)::

    from crsky.selfcheck import check
    check("02_kernel.ipynb")
"""

import argparse
import copy
import datetime
import os
import subprocess
import sys
import warnings
from unittest import mock

import nbformat

from crsky.course import SELFCHECK_ENV as GUARD
from crsky.limits import CELL_TIMEOUT_S

# GUARD is set in the environment of the kernel the self-check starts: a check() or submit()
# inside that run (the notebook's own last cell) prints a note and returns instead of
# starting yet another kernel. NBGRADER_EXECUTION="validate" beside it skips training
# (crsky.course.grading_run), as nbgrader's Validate does; "autograde" is the grader's alone.
ENVIRONMENT = {"NBGRADER_EXECUTION": "validate", GUARD: "1"}


class SelfCheckError(Exception):
    """The self-check could not run: the message says why and what to do."""


def _is_test(cell):
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and meta.get("grade") and not meta.get("solution")


def _printed(cell):
    """The last line the cell printed to stdout ("" when none): a test's own report."""
    text = "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _result(cell, timeout):
    """(status, points, detail) of an executed test cell, scored as nbgrader scores it: an
    error or any stderr output is 0, else a number the cell returns is its points."""
    points = float(cell.metadata.nbgrader.get("points", 0))
    printed = _printed(cell)
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            if output.get("ename") == "KeyboardInterrupt":
                return "FAILED", 0.0, f"the cell ran longer than {timeout} s, the grader's limit per cell"
            detail = f"{output.get('ename')}: {output.get('evalue')}"
            return "FAILED", 0.0, detail[:300]
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            return "FAILED", 0.0, "the cell wrote to stderr, which the grader scores as 0: " + output["text"][:200]
    for output in cell.get("outputs", []):
        if output.get("output_type") == "execute_result":
            try:
                value = float(output["data"]["text/plain"])
            except (KeyError, ValueError):
                break
            if value <= 0:
                return "FAILED", 0.0, printed or f"0 of {points:g} points"
            if value < points:
                return "PARTIAL", value, printed or f"{value:g} of {points:g} points"
    return "passed", points, printed


def check_notebook(nb, folder=".", timeout=CELL_TIMEOUT_S, quiet=False):
    """Execute a copy of ``nb`` (a notebook node) in ``folder`` as nbgrader's Validate would
    (at most ``timeout`` seconds per cell, the grader's limit) and report its test cells.
    Returns a list of ``(grade_id, status, points, max_points, detail)``; prints it unless
    ``quiet``. Raises :class:`SelfCheckError` when the notebook cannot be run at all."""
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    nb = copy.deepcopy(nb)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            interrupt_on_timeout=True, resources={"metadata": {"path": str(folder)}})
    try:
        # Training is skipped, as the grader does; the guard stops a check() in the notebook itself.
        with mock.patch.dict(os.environ, ENVIRONMENT), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the Jupyter client's own warnings are not the student's
            # The kernel's own log (ipykernel's start-up warnings) would land in the cell that
            # runs check(); what the notebook's cells print reaches their outputs as it does
            # at grading, through the kernel's messages.
            client.execute(stderr=subprocess.DEVNULL)
    except NoSuchKernel as error:
        raise SelfCheckError(f"no Jupyter kernel named python3 here ({error}): install ipykernel "
                             "(pip install ipykernel) in this environment.") from None
    except DeadKernelError as error:
        raise SelfCheckError(f"the kernel died while running the notebook ({str(error)[:200]}): usually "
                             "out of memory; restart, run the notebook once by hand, then check again.") from None
    except CellTimeoutError as error:
        raise SelfCheckError(f"a cell did not finish within {timeout} s and could not be interrupted "
                             f"({str(error)[:200]}).") from None
    rows = []
    for cell in nb.cells:
        if _is_test(cell):
            status, points, detail = _result(cell, timeout)
            rows.append((cell.metadata.nbgrader["grade_id"], status, points,
                         float(cell.metadata.nbgrader.get("points", 0)), detail))
    if not quiet:
        _print(rows)
    return rows


def _print(rows):
    if not rows:
        print("no test cells found: is this one of the course's notebooks?")
        return
    width = max([len(r[0]) for r in rows] + [10])
    for grade_id, status, points, max_points, detail in rows:
        print(f"{grade_id:{width}s}  {status:7s} {points:4.1f}/{max_points:<4g} {detail}")
    total, maximum = sum(r[2] for r in rows), sum(r[3] for r in rows)
    failing = [r[0] for r in rows if r[1] != "passed"]
    print(f"\nvisible tests: {total:g} of {maximum:g} points" +
          (f"; still failing: {', '.join(failing)}" if failing else "; all pass (the grader adds hidden tests)"))


def _read(path):
    try:
        return nbformat.read(path, as_version=4)
    except Exception as error:  # nbformat raises JSON, validation and encoding errors alike
        raise SelfCheckError(f"{path} is not a notebook that can be read ({type(error).__name__}: "
                             f"{str(error).splitlines()[0][:200] if str(error) else ''}). "
                             "Open it in Jupyter, save it and try again.") from None


def check_file(name, timeout=CELL_TIMEOUT_S, start="."):
    """Check the saved notebook ``name``: a path, or a bare name such as ``"01_sky.ipynb"``
    found below ``start`` (:func:`crsky.course.find_notebook`). Prints which file, when it
    was saved and the table; returns the rows. Raises :class:`SelfCheckError`."""
    from crsky.course import find_notebook

    try:
        path = find_notebook(name, start)
    except (FileNotFoundError, ValueError) as error:
        raise SelfCheckError(str(error)) from None
    saved = datetime.datetime.fromtimestamp(path.stat().st_mtime).strftime("%H:%M:%S")
    print(f"checking {path} as saved at {saved} (save the notebook first for your latest changes)", flush=True)
    return check_notebook(_read(path), path.parent, timeout)


def check(path=None, timeout=CELL_TIMEOUT_S):
    """For a notebook's last cell: check this notebook, printing the table (returns nothing).

    ``path``: the notebook's file name or path (outside Colab the saved file; in Colab the
    notebook that is open, unsaved changes included). Inside a run of the self-check or of
    nbgrader (autograde, Validate) it does nothing but say so: the notebook is already being
    checked. When the check cannot run, one line says why."""
    from crsky import colab, course

    if os.environ.get(GUARD) or course.grading_run():
        print("check() skipped: this notebook is being checked or graded right now.")
        return None
    try:
        if colab.in_colab():
            print("checking the notebook open in Colab", flush=True)
            check_notebook(colab.open_notebook(), ".", timeout)
        elif path is None:
            raise SelfCheckError("give the notebook's name, e.g. check('02_kernel.ipynb'): only in Colab "
                                 "can the open notebook be read without it.")
        else:
            check_file(path, timeout)
    except (SelfCheckError, RuntimeError) as error:  # colab.open_notebook: RuntimeError when Colab does not answer
        print(f"the self-check could not run: {error}")
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m crsky.selfcheck", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", help="a notebook's path, or its name (found below this folder)")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT_S,
                        help=f"seconds per cell (default {CELL_TIMEOUT_S}, the grader's limit)")
    args = parser.parse_args(argv)
    failing = 0
    for name in args.notebooks:
        try:
            rows = check_file(name, args.timeout)
        except SelfCheckError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        failing += not rows or any(r[1] != "passed" for r in rows)
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
