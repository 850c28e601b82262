"""What grading writes where it writes by default is ignored by git: one ``git add -A`` after
a run never publishes a class's grades, feedback pages or gradebook."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from traitlets.config.loader import PyFileConfigLoader

from crsky.course import COURSE_ROOT
from crsky.grading import pipeline

pytestmark = pytest.mark.skipif(not (COURSE_ROOT / ".git").exists() or not shutil.which("git"),
                                reason="not a git checkout")


def ignored(paths):
    """The paths (relative to the checkout) that git ignores, and the rule that ignores each."""
    run = subprocess.run(["git", "-C", str(COURSE_ROOT), "check-ignore", "--no-index", "--verbose", "--stdin"],
                         input="\n".join(paths) + "\n", capture_output=True, text=True, timeout=60)
    assert run.returncode in (0, 1), run.stderr
    rules = dict(reversed(line.split("\t", 1)) for line in run.stdout.splitlines() if "\t" in line)
    # --verbose also names a matching "!pattern", which un-ignores
    return {path: rule for path, rule in rules.items() if not rule.split(":", 2)[2].startswith("!")}


def default_results(monkeypatch, tmp_path):
    """The --results folder `python -m crsky.grading SUBMISSIONS` writes to, run from the checkout."""
    seen = []
    monkeypatch.setattr(pipeline, "grade", lambda submissions, results, *args, **kwargs: seen.append(results))
    monkeypatch.chdir(COURSE_ROOT)
    pipeline.main([str(tmp_path)])
    [results] = seen
    return Path(os.path.abspath(results)).relative_to(COURSE_ROOT)


def nbgrader_outputs():
    """What nbgrader's own commands write with the course's configuration: the course folders
    and the gradebook of grading/nbgrader_config.py, and `nbgrader export`'s default file when
    run where the configuration is."""
    config = PyFileConfigLoader("nbgrader_config.py", path=str(COURSE_ROOT / "grading")).load_config()
    folders = [config.CourseDirectory[name] for name in ("submitted_directory", "autograded_directory",
                                                         "feedback_directory")]
    files = [config.CourseDirectory.db_url.removeprefix("sqlite:///"), config.Exchange.root]
    outputs = []
    for path in folders + files:
        path = Path(path)
        assert path.is_absolute() and path.is_relative_to(COURSE_ROOT), path
        outputs.append(str(path.relative_to(COURSE_ROOT)))
    return outputs + ["grading/grades.csv"]


def test_every_default_output_of_grading_is_ignored(monkeypatch, tmp_path):
    results = default_results(monkeypatch, tmp_path)
    assert results == Path("grading/results"), results
    outputs = [f"{results}/{name}" for name in ("grades.csv", "nbgrader_grades.csv", "tasks.log",
                                                 "feedback/alice/02_kernel/02_kernel.html")]
    outputs += [f"{path}/alice/02_kernel/02_kernel.ipynb" if "." not in Path(path).name else path
                for path in nbgrader_outputs()]
    found = ignored(outputs)
    assert sorted(set(outputs) - set(found)) == [], f"not ignored by git: {sorted(set(outputs) - set(found))}"


def test_the_course_itself_is_not_ignored():
    course = ["grading/README.md", "grading/nbgrader_config.py", "solutions/02_kernel/02_kernel.ipynb",
              "notebooks/02_kernel/02_kernel.ipynb", "crsky/grading/pipeline.py", "tests/fixtures/dgcnn_textbook.keras"]
    assert ignored(course) == {}


def test_after_a_run_git_status_shows_no_result(tmp_path):
    """Files as a run leaves them in the default places: git status lists none of them."""
    made = []
    try:
        for relative in ["grading/results/grades.csv", "grading/results/feedback/zz-test/02_kernel/02_kernel.html",
                         "grading/course/gradebook-zz-test.db"]:
            path = COURSE_ROOT / relative
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("student,score\nzz-test,6\n")
            made.append(path)
        status = subprocess.run(["git", "-C", str(COURSE_ROOT), "status", "--porcelain", "--untracked-files=all",
                                 "--", "grading"], capture_output=True, text=True, timeout=60, check=True).stdout
        assert "results" not in status and "zz-test" not in status, status
    finally:
        for path in made:
            path.unlink()
        for folder in [COURSE_ROOT / "grading/results/feedback/zz-test/02_kernel",
                       COURSE_ROOT / "grading/results/feedback/zz-test", COURSE_ROOT / "grading/results/feedback",
                       COURSE_ROOT / "grading/results"]:
            try:
                folder.rmdir()
            except OSError:
                pass
