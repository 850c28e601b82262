"""The whole nbgrader exchange round on one machine, with the real nbgrader commands: the
instructor releases notebook 2, two students (each with their own home and Jupyter folders)
fetch it, answer and submit, the instructor collects, autogrades and returns feedback, and
each student fetches their own. The exchange is a folder in a temporary directory, as a
JupyterHub's shared volume would be; the instructor uses the course's nbgrader_config.py."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "02_kernel"
COURSE = "crsky"  # c.CourseDirectory.course_id in grading/nbgrader_config.py
BUDGET_S = 240


def base_env(home):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_", "CRSKY_", "NBGRADER_"))}
    env.update(
        HOME=str(home), JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
        JUPYTER_DATA_DIR=str(home / ".local" / "share" / "jupyter"), JUPYTER_RUNTIME_DIR=str(home / ".runtime"),
        TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore",
        # nbgrader runs `alembic` from PATH: this Python's scripts first.
        PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
    )
    home.mkdir(parents=True, exist_ok=True)
    return env


class Person:
    """Runs nbgrader commands as one user: their environment, their working folder."""

    def __init__(self, name, home, cwd, args, deadline):
        self.name, self.env, self.cwd, self.args, self.deadline = name, base_env(home), cwd, args, deadline

    def nbgrader(self, *command):
        left = self.deadline - time.monotonic()
        assert left > 0, "the exchange round ran out of its time budget"
        run = subprocess.run([sys.executable, "-m", "nbgrader", *command, *self.args], cwd=self.cwd, env=self.env,
                             capture_output=True, text=True, timeout=left)
        assert run.returncode == 0, f"{self.name}: nbgrader {' '.join(command)} exited {run.returncode}\n{run.stderr[-3000:]}"
        return run.stdout + run.stderr


def answer(path):
    """Fill every solution cell of the student's notebook with the instructor's solution."""
    solution = nbformat.read(ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    answers = {c.metadata.nbgrader.grade_id: c.source for c in solution.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    nb = nbformat.read(path, as_version=4)
    filled = 0
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source, filled = answers[grade_id], filled + 1
    assert filled == len(answers) > 0
    nbformat.write(nb, path)


@pytest.mark.grading
def test_release_fetch_submit_collect_autograde_feedback(tmp_path):
    deadline = time.monotonic() + BUDGET_S
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    exchange.chmod(0o777)  # every user writes into the exchange (nbgrader makes inbound/ write-only for them)
    work = tmp_path / "instructor"
    work.mkdir()
    instructor = Person("instructor", tmp_path / "instructor-home", ROOT / "grading", [
        f"--Exchange.root={exchange}",
        f"--CourseDirectory.release_directory={work / 'release'}",
        f"--CourseDirectory.submitted_directory={work / 'submitted'}",
        f"--CourseDirectory.autograded_directory={work / 'autograded'}",
        f"--CourseDirectory.feedback_directory={work / 'feedback'}",
        f"--CourseDirectory.db_url=sqlite:///{work / 'gradebook.db'}",
    ], deadline)
    students = {name: Person(name, tmp_path / name, tmp_path / name, [
        f"--Exchange.root={exchange}", f"--course={COURSE}", f"--CourseDirectory.student_id={name}",
    ], deadline) for name in ("alice", "bob")}

    instructor.nbgrader("generate_assignment", ASSIGNMENT, "--force")
    instructor.nbgrader("release_assignment", ASSIGNMENT, "--force")
    released = exchange / COURSE / "outbound" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert released.read_bytes() == (ROOT / "notebooks" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_bytes()

    for name, student in students.items():
        student.nbgrader("fetch_assignment", ASSIGNMENT)
        notebook = tmp_path / name / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        assert notebook.is_file()
        if name == "alice":
            answer(notebook)  # bob hands in the notebook unanswered
        student.nbgrader("submit", ASSIGNMENT)
    assert len(list((exchange / COURSE / "inbound").iterdir())) == 2

    instructor.nbgrader("collect", ASSIGNMENT)
    for name in students:
        assert (work / "submitted" / name / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()
    instructor.nbgrader("autograde", ASSIGNMENT, "--force")
    instructor.nbgrader("generate_feedback", ASSIGNMENT, "--force")
    instructor.nbgrader("release_feedback", ASSIGNMENT)

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{work / 'gradebook.db'}") as gradebook:
        scores = {name: (gradebook.find_submission(ASSIGNMENT, name).score,
                         gradebook.find_submission(ASSIGNMENT, name).max_score) for name in students}
    assert scores == {"alice": (6.0, 6.0), "bob": (0.0, 6.0)}

    for name, student in students.items():
        student.nbgrader("fetch_feedback", ASSIGNMENT)
        (html,) = (tmp_path / name / ASSIGNMENT / "feedback").glob(f"*/{ASSIGNMENT}.html")
        text = html.read_text()
        assert f"Score: {scores[name][0]:.1f} / 6.0" in text, text[:2000]
    shutil.rmtree(exchange)  # nothing of a student outlives the test
