"""Hand in a notebook: pack it, with the files the grader needs beside it, into one zip.

    from crsky.submit import submit
    submit("03_training.ipynb")     # a laptop: the saved notebook; Colab: the open one, then a download

    python -m crsky.submit 03_training.ipynb      # a terminal, from any folder above the notebook

The zip holds ``<assignment>/<assignment>.ipynb`` and, for the training notebook, the
trained model ``<assignment>/dgcnn.keras``: the layout the grading script takes
(``python -m crsky.grading``, one ``<student>.zip`` per student). It is checked before it is
written: a valid notebook of a known assignment, every file the assignment needs
present, nothing too large.
"""

import argparse
import os
import re
import sys
import tempfile
import zipfile
from pathlib import Path

import nbformat

from crsky import colab, limits
from crsky.course import ASSIGNMENTS
# Files submitted beside the notebook, per assignment (the grading configuration never
# overwrites them with the instructor's: c.Autograde.exclude_overwriting).
FILES = {"03_training": ("dgcnn.keras",), "05_sources": ("members.keras",)}
# The grader's own limits (crsky.limits): what is packed here is never dropped at grading.
MAX_NOTEBOOK_BYTES = limits.NOTEBOOK_BYTES  # plots included, a course notebook is well under 5 MB
MAX_FILE_BYTES = limits.MODEL_BYTES         # the reference DGCNN saves to about 0.2 MB
_BADGE = re.compile(r"notebooks/(\d\d_[A-Za-z0-9_]+)/\1\.ipynb")


class SubmissionError(ValueError):
    """The submission cannot be packed: the message says what is wrong and what to do."""


def _kib(n):
    return f"{n / 1024:,.0f} KiB"


def infer_assignment(nb, filename=None):
    """The assignment a notebook belongs to: from its Open-in-Colab badge (the first
    cell links ``notebooks/<assignment>/<assignment>.ipynb``), else from the file name."""
    for cell in nb.cells[:2]:
        match = _BADGE.search(cell.source)
        if match and match.group(1) in ASSIGNMENTS:
            return match.group(1)
    if filename is not None and Path(filename).stem in ASSIGNMENTS:
        return Path(filename).stem
    return None


def _read_notebook(path):
    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f"no notebook at {path}: give the path of your .ipynb file.")
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise SubmissionError(f"{path} is {_kib(size)}, more than the {_kib(MAX_NOTEBOOK_BYTES)} allowed: "
                              "clear large outputs (Edit > Clear outputs), save and try again.")
    try:
        return nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
    except (ValueError, UnicodeDecodeError, nbformat.reader.NotJSONError) as error:
        raise SubmissionError(f"{path} is not a valid notebook ({type(error).__name__}: "
                              f"{str(error).splitlines()[0][:200]}). Open it in Jupyter, save it and try again.") from error


def _check_notebook(nb, assignment):
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as error:
        raise SubmissionError(f"the notebook does not follow the notebook format ({str(error).splitlines()[0][:200]}).") from error
    graded = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    if not graded:
        print(f"warning: no graded cell found in this notebook; is it the course's {assignment}? "
              "The grader puts missing test cells back, but check that you submit the right file.")


def _check_file(path, name):
    if not path.is_file():
        raise SubmissionError(f"no {name} in {path.parent}: the grader scores this file. Run the training cells "
                              f"(they save it with model.save({name!r})), then submit again.")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise SubmissionError(f"{path} is {limits.size_text(size)}, more than the {limits.size_text(MAX_FILE_BYTES)} "
                              f"the grader takes for a {name}: it would be left out at grading (no points for it). "
                              "The course's DGCNN saves to about 0.2 MiB: save the model the notebook trains "
                              "and submit again.")
    if name.endswith(".keras") and not zipfile.is_zipfile(path):
        raise SubmissionError(f"{path} is not a saved Keras model (a .keras file is a zip archive): "
                              f"save it again with model.save({name!r}).")


def pack(nb, assignment, folder, out):
    """Write the zip ``out`` for notebook node ``nb`` and the assignment's files from
    ``folder``; check it by reading it back. Returns the list of names in the zip."""
    if assignment not in ASSIGNMENTS:
        raise SubmissionError(f"unknown assignment {assignment!r}; the course's are {', '.join(ASSIGNMENTS)}.")
    _check_notebook(nb, assignment)
    text = nbformat.writes(nb)
    if len(text.encode()) > MAX_NOTEBOOK_BYTES:
        raise SubmissionError(f"the notebook is {_kib(len(text.encode()))}, more than the {_kib(MAX_NOTEBOOK_BYTES)} "
                              "allowed: clear large outputs and try again.")
    if len(nb.cells) > limits.NOTEBOOK_CELLS:
        raise SubmissionError(f"the notebook has {len(nb.cells):,} cells, more than the {limits.NOTEBOOK_CELLS:,} "
                              "allowed: delete the empty ones and try again.")
    files = {name: Path(folder) / name for name in FILES.get(assignment, ())}
    for name, path in files.items():
        _check_file(path, name)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent)
    os.close(handle)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{assignment}/{assignment}.ipynb", text)
            for name, path in files.items():
                archive.write(path, f"{assignment}/{name}")
        with zipfile.ZipFile(tmp) as archive:  # read back what the grader will read
            bad = archive.testzip()
            if bad:
                raise SubmissionError(f"the zip was written badly ({bad}); try again.")
            names = archive.namelist()
            nbformat.reads(archive.read(f"{assignment}/{assignment}.ipynb").decode(), as_version=4)
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return names


def hand_in(notebook=None, assignment=None, out=None, download=True):
    """Pack a notebook for hand-in; returns the path of the zip (None inside a grading run).

    ``notebook``: the saved notebook, as a path or a bare name such as ``"03_training.ipynb"``
    (searched for below the working folder: :func:`crsky.course.find_notebook`). In Colab
    the notebook that is open is packed (unsaved changes included), with the files of
    Colab's working folder. ``assignment``: found from the notebook when left out. ``out``:
    the zip to write (default ``<assignment>.zip`` beside the notebook, in Colab in the
    working folder). In Colab the zip is then offered for download (``download=False``
    skips that). Raises :class:`SubmissionError` with what to do.
    """
    from crsky import course

    if course.selfcheck_run() or course.grading_run():
        print("submit() skipped: this notebook is being checked or graded right now.")
        return None
    if colab.in_colab() and (notebook is None or not Path(notebook).is_file()):
        nb, folder, filename = colab.open_notebook(), Path.cwd(), notebook
    elif notebook is None:
        raise SubmissionError("give the notebook's name, e.g. submit('03_training.ipynb'); "
                              "only in Colab can the open notebook be read without it.")
    else:
        try:
            path = course.find_notebook(notebook)
        except (FileNotFoundError, ValueError) as error:
            raise SubmissionError(str(error)) from None
        nb, folder, filename = _read_notebook(path), path.parent, path
    assignment = assignment or infer_assignment(nb, filename)
    if assignment is None:
        raise SubmissionError("cannot tell which assignment this notebook is: give it, e.g. "
                              f"submit(assignment='03_training') (one of {', '.join(ASSIGNMENTS)}).")
    out = Path(out) if out is not None else folder / f"{assignment}.zip"
    names = pack(nb, assignment, folder, out)
    with zipfile.ZipFile(out) as archive:
        sizes = ", ".join(f"{info.filename} ({_kib(info.file_size)})" for info in archive.infolist())
    print(f"wrote {out}: {sizes}\nHand in this file as your course asks (the grader expects these {len(names)} "
          "file(s) in this layout; do not unpack or rename what is inside).")
    if download and colab.in_colab():
        colab.download(out)
    return out


def submit(notebook=None, assignment=None, out=None, download=True):
    """For a notebook's last cell: :func:`hand_in`, saying in one line what went wrong
    instead of raising, and returning nothing (the zip's path is printed)."""
    try:
        hand_in(notebook, assignment, out, download)
    except SubmissionError as error:
        print(f"nothing was handed in: {error}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m crsky.submit", description=__doc__.splitlines()[0])
    parser.add_argument("notebook", help="the saved notebook: its path, or its name (found below this folder)")
    parser.add_argument("--assignment", choices=ASSIGNMENTS, help="default: found from the notebook")
    parser.add_argument("-o", "--out", help="the zip to write (default: <assignment>.zip beside the notebook)")
    args = parser.parse_args(argv)
    try:
        hand_in(args.notebook, args.assignment, args.out)
    except SubmissionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
