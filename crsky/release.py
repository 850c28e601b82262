"""Release the student notebooks: write crsky.course.COLAB_REQUIREMENT into the set-up cell
of every solution notebook, then regenerate every student notebook with nbgrader (after
editing solutions/ or changing the package version; from a checkout of the course):

    python -m crsky.release            # rewrite the set-up cells, regenerate notebooks/ with nbgrader
    python -m crsky.release --check    # only say which set-up cells differ (exit 1)

The requirement is one constant in crsky/course.py; the set-up cells must hold the same
string because Colab runs them before the package exists (tests/test_colab.py checks it).
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a notebook differs")
    args = parser.parse_args(argv)
    changed = sync(write=not args.check)
    for path in changed:
        print(f"{'differs' if args.check else 'updated'}: {path.relative_to(ROOT)}")
    if args.check:
        return 1 if changed else 0
    with tempfile.TemporaryDirectory(prefix="crsky-release-") as folder:
        # A throw-away gradebook; `alembic` (nbgrader's schema tool) from this Python's scripts.
        env = dict(os.environ, PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
        for assignment in ASSIGNMENTS:
            subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force",
                            f"--CourseDirectory.db_url=sqlite:///{folder}/gradebook.db"],
                           cwd=ROOT / "grading", check=True, env=env, capture_output=True)
            print(f"released: notebooks/{assignment}/{assignment}.ipynb")
    return 0


if __name__ == "__main__":
    sys.exit(main())
