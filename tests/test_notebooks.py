"""The notebook series: nbgrader's Validate runs every solution notebook top to bottom at the
small size (with a trained model beside the two that save one, as the grader never trains)
and passes it, with no cell raising, and rejects the unanswered student notebooks;
notebooks/ is exactly what nbgrader generates from solutions/, with nothing leaked. The
answered notebooks run as a student runs them, training included, with their plots and
saved models, in tests/test_student_path.py."""

import json
import os
import re
import shutil
import subprocess
import sys

import nbformat
import pytest

from crsky.course import ASSIGNMENTS, COLAB_REQUIREMENT, COURSE_ROOT as ROOT, REPO_URL


def notebook_path(folder, assignment):
    return ROOT / folder / assignment / f"{assignment}.ipynb"


@pytest.fixture(scope="module")
def jupyter_env(tmp_path_factory):
    """Jupyter's own folders in a temporary place, the small size, and the grader's seed unset."""
    base = tmp_path_factory.mktemp("jupyter")
    env = {"JUPYTER_CONFIG_DIR": base / "config", "JUPYTER_DATA_DIR": base / "data",
           "JUPYTER_RUNTIME_DIR": base / "runtime", "CRSKY_SIZE": "small", "CRSKY_CACHE": base / "cache"}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update({key: str(value) for key, value in env.items()})
    os.environ.pop("CRSKY_SEED_FILE", None)
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def outputs(cell, kind):
    return [o for o in cell.get("outputs", []) if o.get("output_type") == kind]


def validate(path):
    """nbgrader's Validate on the notebook at ``path``: ``(its result, the notebook as it ran)``."""
    from traitlets.config import Config
    from nbgrader.validator import Validator

    class Keeping(Validator):
        def _preprocess(self, nb):
            self.executed = super()._preprocess(nb)
            return self.executed

    config = Config()
    config.Execute.timeout = 900
    validator = Keeping(config=config)
    return validator.validate(str(path)), getattr(validator, "executed", None)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_nbgrader_validate_passes_on_solution(jupyter_env, tmp_path, assignment):
    shutil.copytree(ROOT / "solutions" / assignment, tmp_path / assignment, ignore=shutil.ignore_patterns("*.keras"))
    if assignment == "03_training":
        # Validate, like autograde, never trains: it grades the model saved beside the notebook.
        shutil.copy(ROOT / "tests" / "fixtures" / "dgcnn_textbook.keras", tmp_path / assignment / "dgcnn.keras")
    if assignment == "05_sources":
        shutil.copy(ROOT / "tests" / "fixtures" / "members_cpu.keras", tmp_path / assignment / "members.keras")
    result, nb = validate(tmp_path / assignment / f"{assignment}.ipynb")
    failed = result.get("failed", [])
    assert not failed and set(result) <= {"failed"}, f"{assignment}: {json.dumps(result, indent=1)[:2000]}"
    # Validate fails a graded cell that raised or wrote to stderr (nbgrader scores it 0);
    # no other cell raises either, and the last cell's check() knows it is inside a check.
    errors = [(c.source[:80], o["ename"], o["evalue"]) for c in nb.cells for o in outputs(c, "error")]
    assert not errors, f"{assignment}: cells raised {errors}"
    last = nb.cells[-1]
    assert last.metadata.nbgrader["grade_id"] == "selfcheck"
    assert [o["text"] for o in outputs(last, "stream")] == [
        "check() skipped: this notebook is being checked or graded right now.\n"]


# The same nbgrader check on every notebook: the textbook's exercise always, the others with the slow tests.
@pytest.mark.parametrize("assignment", [pytest.param(a, marks=() if a == "02_kernel" else pytest.mark.slow)
                                        for a in ASSIGNMENTS])
def test_nbgrader_validate_fails_on_unanswered_student_notebook(jupyter_env, tmp_path, assignment):
    shutil.copytree(ROOT / "notebooks" / assignment, tmp_path / assignment)
    result, _ = validate(tmp_path / assignment / f"{assignment}.ipynb")
    assert result.get("failed"), f"{assignment}: the unanswered notebook passed nbgrader validate"
    assert any("NotImplementedError" in f["raw_error"] for f in result["failed"])


def test_student_notebooks_are_what_nbgrader_generates(jupyter_env, tmp_path):
    release = tmp_path / "release"
    for assignment in ASSIGNMENTS:
        run = subprocess.run(
            [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force",
             f"--CourseDirectory.release_directory={release}",
             f"--CourseDirectory.db_url=sqlite:///{tmp_path / 'gradebook.db'}"],
            cwd=ROOT / "grading", capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-3000:]
    generated = sorted(p.relative_to(release) for p in release.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(ROOT / "notebooks") for p in (ROOT / "notebooks").rglob("*") if p.is_file()
                       and ".ipynb_checkpoints" not in p.parts)
    assert generated == committed, "notebooks/ has other files than nbgrader generates"
    for relative in generated:
        assert (release / relative).read_bytes() == (ROOT / "notebooks" / relative).read_bytes(), (
            f"notebooks/{relative} differs from what nbgrader generates: regenerate it with "
            f"`cd grading && nbgrader generate_assignment {relative.parts[0]} --force`")


def hidden_blocks(text):
    """Lines between the solution and hidden-test markers."""
    pattern = r"### BEGIN (?:SOLUTION|HIDDEN TESTS)\n(.*?)### END (?:SOLUTION|HIDDEN TESTS)"
    return [line.strip() for block in re.findall(pattern, text, flags=re.S) for line in block.splitlines()]


def test_no_solution_or_hidden_test_reaches_students():
    for assignment in ASSIGNMENTS:
        source = nbformat.read(notebook_path("solutions", assignment), as_version=4)
        student_text = notebook_path("notebooks", assignment).read_text()
        secret = [line for cell in source.cells for line in hidden_blocks(cell.source) if len(line) > 25]
        answers = [cell.source for cell in source.cells if cell.cell_type == "markdown"
                   and cell.metadata.get("nbgrader", {}).get("solution")]
        assert secret, f"{assignment}: no solution found to check"
        leaked = [line for line in secret if json.dumps(line)[1:-1] in student_text]
        assert not leaked, f"{assignment}: solution or hidden-test lines in notebooks/: {leaked}"
        for answer in answers:
            assert answer.splitlines()[0] not in student_text
        assert "BEGIN SOLUTION" not in student_text and "HIDDEN TESTS" not in student_text


def test_every_notebook_opens_with_a_badge_and_the_one_repository_url():
    for folder in ("solutions", "notebooks"):
        for assignment in ASSIGNMENTS:
            nb = nbformat.read(notebook_path(folder, assignment), as_version=4)
            first, setup = nb.cells[0], nb.cells[1]
            assert "colab-badge.svg" in first.source
            expected = REPO_URL.replace("https://github.com/", "https://colab.research.google.com/github/")
            assert f"{expected}/blob/main/notebooks/{assignment}/{assignment}.ipynb" in first.source
            assert f'CRSKY = "{COLAB_REQUIREMENT}"' in setup.source and "google.colab" in setup.source
            assert "Needs:" in first.source


HEADING_POINTS = re.compile(r"^#+ .*\((\d+) points?\b")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercise_headings_show_the_points_of_their_graded_cells(assignment):
    """Every heading over graded cells states its points, and they are the sum of the
    points of the graded cells up to the next heading: students see what each is worth."""
    nb = nbformat.read(notebook_path("solutions", assignment), as_version=4)
    sections, total = [], 0
    for cell in nb.cells:
        found = HEADING_POINTS.search(cell.source) if cell.cell_type == "markdown" else None
        if cell.cell_type == "markdown" and re.match(r"^#+ ", cell.source):
            sections.append([cell.source.splitlines()[0], int(found.group(1)) if found else None, 0])
        nbgrader = cell.metadata.get("nbgrader", {})
        if nbgrader.get("grade"):
            assert sections, f"{assignment}: a graded cell before any heading"
            sections[-1][2] += nbgrader["points"]
            total += nbgrader["points"]
    graded = [(title, stated, counted) for title, stated, counted in sections if counted]
    assert graded, f"{assignment}: no graded cells"
    for title, stated, counted in graded:
        assert stated == counted, f"{assignment}: {title!r} states {stated} points, its graded cells give {counted}"
    assert sum(counted for _, _, counted in graded) == total
