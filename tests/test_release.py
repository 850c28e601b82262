"""The instructors' release step on a fresh ``git clone`` of the course, as on a JupyterHub
(docs/jupyterhub.md): the gradebook's folder, which git does not keep, is there; a failed
release leaves the committed student notebooks as they were; a good one replaces them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from tests.services import clone_with_changes

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "02_kernel"
MARKER = "A line only this test writes."


@pytest.fixture
def clone(tmp_path):
    """A fresh clone of the repository with the working tree's uncommitted changes (none in CI)."""
    folder = clone_with_changes(tmp_path / "crsky")
    assert not (folder / "grading" / "course").exists()
    return folder


def run(args, cwd, home):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTER_", "NBGRADER_", "CRSKY_", "PYTHON"))}
    env.update(HOME=str(home), TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore",
               PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    home.mkdir(exist_ok=True)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def notebooks_state(clone):
    """What git sees changed under notebooks/ (empty: the committed release, untouched)."""
    out = subprocess.run(["git", "-C", str(clone), "status", "--porcelain", "--untracked-files=all", "--ignored",
                          "notebooks"], check=True, capture_output=True, text=True, timeout=60)
    return out.stdout.strip()


def release(clone, *assignments):
    """``python -m crsky.release`` in the clone, after checking that it is the clone's package
    that runs (a release must never touch the repository the tests run from)."""
    where = run([sys.executable, "-c", "from crsky.course import COURSE_ROOT; print(COURSE_ROOT)"], clone,
                clone.parent / "home")
    assert Path(where.stdout.strip()) == clone, where.stdout + where.stderr
    return run([sys.executable, "-m", "crsky.release", *assignments], clone, clone.parent / "home")


def edit_solution(clone, assignment, change):
    path = clone / "solutions" / assignment / f"{assignment}.ipynb"
    nb = nbformat.read(path, as_version=4)
    change(nb)
    nbformat.write(nb, path)


@pytest.mark.grading
def test_nbgraders_own_commands_find_the_gradebook_on_a_fresh_clone(clone):
    """docs/jupyterhub.md's instructor works in a clone: nbgrader (and the formgrader, which reads
    the same configuration) opens the gradebook in grading/course/, which no clone has."""
    listed = run([sys.executable, "-m", "nbgrader", "db", "assignment", "list"], clone / "grading", clone.parent / "home")
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert (clone / "grading" / "course" / "gradebook.db").is_file()
    made = run([sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--force"], clone / "grading",
               clone.parent / "home")
    assert made.returncode == 0, made.stderr[-3000:]
    assert "unable to open database file" not in made.stderr
    nbformat.validate(nbformat.read(clone / "notebooks" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4))


@pytest.mark.grading
def test_a_failed_release_leaves_the_committed_notebooks(clone):
    """Notebook 1's source changes (a release would rewrite notebooks/01_sky/) and notebook 2's
    cannot be generated (two cells with one grade id): nothing under notebooks/ changes."""
    edit_solution(clone, "01_sky", lambda nb: nb.cells.append(nbformat.v4.new_markdown_cell(MARKER)))

    def duplicate_graded_cell(nb):
        graded = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
        copy = nbformat.from_dict(json.loads(json.dumps(graded)))
        copy.id = "same-grade-id"
        nb.cells.append(copy)

    edit_solution(clone, ASSIGNMENT, duplicate_graded_cell)
    before = {p: p.read_bytes() for p in sorted((clone / "notebooks").rglob("*")) if p.is_file()}

    failed = release(clone)

    assert failed.returncode == 1, failed.stdout + failed.stderr[-3000:]
    assert f"nbgrader generate_assignment {ASSIGNMENT} failed" in failed.stderr
    assert "notebooks/ is left as it was" in failed.stderr
    assert notebooks_state(clone) == ""
    assert {p: p.read_bytes() for p in sorted((clone / "notebooks").rglob("*")) if p.is_file()} == before


@pytest.mark.grading
def test_a_release_replaces_the_assignments_notebooks(clone):
    edit_solution(clone, ASSIGNMENT, lambda nb: nb.cells.append(nbformat.v4.new_markdown_cell(MARKER)))

    released = release(clone, ASSIGNMENT)

    assert released.returncode == 0, released.stdout + released.stderr[-3000:]
    assert f"released: notebooks/{ASSIGNMENT}/{ASSIGNMENT}.ipynb" in released.stdout
    nb = nbformat.read(clone / "notebooks" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    nbformat.validate(nb)
    assert nb.cells[-1].source == MARKER
    # Only that notebook changed, and the release left nothing else behind (no folder swapped aside).
    assert notebooks_state(clone) == f"M notebooks/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
