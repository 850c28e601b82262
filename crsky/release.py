"""Release the student notebooks: write crsky.course.COLAB_REQUIREMENT into the set-up cell
of every solution notebook, then regenerate every student notebook with nbgrader (after
editing solutions/ or changing the package version; from a checkout of the course):

    python -m crsky.release            # rewrite the set-up cells, regenerate notebooks/ with nbgrader
    python -m crsky.release 01_sky     # the same for one assignment (before nbgrader release_assignment)
    python -m crsky.release --check    # only say which set-up cells differ (exit 1)

nbgrader generates into a temporary folder with a throw-away gradebook, and ``notebooks/<assignment>/``
is replaced only when every assignment asked for was generated: a failure leaves the committed
release as it was (``nbgrader generate_assignment --force`` alone deletes it first).

The requirement is one constant in crsky/course.py; the set-up cells must hold the same
string because Colab runs them before the package exists (tests/test_colab.py checks it).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from crsky.course import ASSIGNMENTS, COLAB_REQUIREMENT, COURSE_ROOT as ROOT

LINE = re.compile(r'^CRSKY = ".*"$', flags=re.M)


def sync(write=True):
    """The solution notebooks whose set-up cell differs from COLAB_REQUIREMENT (rewritten when ``write``)."""
    notebooks = sorted(ROOT.glob("solutions/*/*.ipynb"))
    if not notebooks:
        raise SystemExit(f"error: no solutions/ in {ROOT}: run this from a checkout of the course (pip install -e .)")
    changed = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        cell = nb.cells[1]
        if cell.metadata.get("nbgrader", {}).get("grade_id") != "setup" or not LINE.search(cell.source):
            raise SystemExit(f"error: {path}: the second cell is not the set-up cell with a CRSKY = \"...\" line")
        source = LINE.sub(f'CRSKY = "{COLAB_REQUIREMENT}"', cell.source)
        if source != cell.source:
            changed.append(path)
            if write:
                cell.source = source
                path.write_text(nbformat.writes(nb) + "\n")
    return changed


class ReleaseError(RuntimeError):
    """nbgrader could not generate a student notebook; notebooks/ was left as it was."""


def generate(assignments=ASSIGNMENTS, root=ROOT):
    """Generate the student notebooks of ``assignments`` from ``root/solutions`` with nbgrader,
    into a temporary folder; then replace each ``root/notebooks/<assignment>/`` by its new
    version, only once all were generated. Raises :class:`ReleaseError` (with nbgrader's
    error) when one fails: then nothing in ``notebooks/`` has changed."""
    root = Path(root)
    unknown = [a for a in assignments if a not in ASSIGNMENTS]
    if unknown:
        raise ReleaseError(f"unknown assignment(s) {', '.join(unknown)}; the course's are {', '.join(ASSIGNMENTS)}")
    with tempfile.TemporaryDirectory(prefix="crsky-release-") as folder:
        release = Path(folder) / "release"
        # A throw-away gradebook; `alembic` (nbgrader's schema tool) from this Python's scripts.
        env = dict(os.environ, PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
        for assignment in assignments:
            run = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force",
                                  f"--CourseDirectory.db_url=sqlite:///{folder}/gradebook.db",
                                  f"--CourseDirectory.release_directory={release}"],
                                 cwd=root / "grading", env=env, capture_output=True, text=True)
            made = release / assignment / f"{assignment}.ipynb"
            if run.returncode != 0 or not made.is_file():
                raise ReleaseError(f"nbgrader generate_assignment {assignment} failed (exit {run.returncode}"
                                   f"{'' if run.returncode else ', no ' + made.name}); notebooks/ is left as it was."
                                   f"\n{(run.stdout + run.stderr)[-3000:]}")
        for assignment in assignments:
            _replace_folder(release / assignment, root / "notebooks" / assignment)
    return [root / "notebooks" / a / f"{a}.ipynb" for a in assignments]


def _replace_folder(new, target):
    """Put the folder ``new`` where ``target`` is: copied beside it first, then swapped by renames."""
    staged, old = target.with_name(f".{target.name}.new"), target.with_name(f".{target.name}.old")
    for leftover in (staged, old):
        shutil.rmtree(leftover, ignore_errors=True)
    shutil.copytree(new, staged)
    if target.exists():
        target.rename(old)
    staged.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", metavar="ASSIGNMENT",
                        help=f"the assignments to regenerate (default: all, {' '.join(ASSIGNMENTS)})")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a notebook differs")
    args = parser.parse_args(argv)
    unknown = [a for a in args.assignments if a not in ASSIGNMENTS]
    if unknown:
        parser.error(f"unknown assignment(s) {', '.join(unknown)}; the course's are {', '.join(ASSIGNMENTS)}")
    changed = sync(write=not args.check)
    for path in changed:
        print(f"{'differs' if args.check else 'updated'}: {path.relative_to(ROOT)}")
    if args.check:
        return 1 if changed else 0
    try:
        released = generate(args.assignments or ASSIGNMENTS)
    except ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for path in released:
        print(f"released: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
