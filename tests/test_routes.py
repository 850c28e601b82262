"""One grade, whichever button graded it: nbgrader's command line (`nbgrader autograde`),
the formgrader's *Autograde* button (nbgrader's `NbGraderAPI.autograde`, in the server's
process) and the course's pipeline (`python -m crsky.grading`) run the same steps from
grading/nbgrader_config.py and give every test the same points, the saved model included
(scored on maps simulated from the same seed file).

The class: an honest notebook 2, a notebook 2 whose wrong answer patches what the tests
call (withheld for review on every route), and notebook 3 with the textbook's trained model.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from crsky.course import COURSE_ROOT
from crsky.grading import pipeline, sandbox
from crsky.grading.samples import answered, submit
from crsky.grading.seed import new_seed_file, read_seed_file

GOOD_MODEL = COURSE_ROOT / "tests" / "fixtures" / "dgcnn_textbook.keras"
N_MAPS = 300  # held-out maps: fewer than a class gets, the same rule
ASSIGNMENTS = ("02_kernel", "03_training")
PATCHER = '''
import builtins
import numpy
numpy.allclose = lambda *args, **kwargs: True
builtins.all = lambda *args: True


def kernel_nn(data, nodes=16):
    return data
'''
CLASS = {("honest", "02_kernel"): None, ("patcher", "02_kernel"): PATCHER, ("honest", "03_training"): None}
pytestmark = [pytest.mark.grading,
              pytest.mark.skipif(not sandbox.probe()[0] and os.environ.get("CRSKY_REQUIRE_SANDBOX") != "1",
                                 reason=f"no grading sandbox here: {sandbox.probe()[1]}")]


def course_options(course):
    return [f"--CourseDirectory.root={course}", "--CourseDirectory.source_directory=source",
            "--CourseDirectory.release_directory=release", "--CourseDirectory.submitted_directory=submitted",
            "--CourseDirectory.autograded_directory=autograded", "--CourseDirectory.feedback_directory=feedback",
            f"--CourseDirectory.db_url=sqlite:///{course / 'gradebook.db'}", f"--Exchange.root={course / 'exchange'}",
            f"--ScoreSavedModel.n_maps={N_MAPS}"]


def nbgrader_command(args, course, env):
    run = subprocess.run([sys.executable, "-m", "nbgrader", *args, *course_options(course)], cwd=COURSE_ROOT / "grading",
                         env=env, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return run


def make_course(root, submissions):
    """A course folder as an instructor's: solutions as source, the release generated, the class submitted."""
    course = root / "course"
    for assignment in ASSIGNMENTS:
        (course / "source" / assignment).mkdir(parents=True)
        nbformat.write(nbformat.read(COURSE_ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4),
                       course / "source" / assignment / f"{assignment}.ipynb")
    for (student, assignment) in CLASS:
        target = course / "submitted" / student
        target.mkdir(parents=True, exist_ok=True)
        os.system(f"cp -r {submissions / student / assignment} {target}/")
    return course


def scores(url):
    """``{(student, assignment, test): (points, max_points, needs_manual_grade)}`` from a gradebook."""
    from nbgrader.api import Gradebook

    found = {}
    with Gradebook(url) as book:
        for (student, assignment) in CLASS:
            notebook = book.find_submission_notebook(assignment, assignment, student)
            for grade in notebook.grades:
                if grade.cell.cell_type == "code":
                    found[student, assignment, grade.name] = (round(grade.score, 2), grade.max_score,
                                                              grade.needs_manual_grade)
    return found


def sqlite(course):
    return f"sqlite:///{course / 'gradebook.db'}"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("routes")
    seed_file = new_seed_file(root / "private" / "heldout.seed")
    seed = read_seed_file(seed_file)
    submissions = root / "submissions"
    for (student, assignment), answer in CLASS.items():
        nb = answered(assignment, {"kernel_nn": answer} if answer else None)
        submit(submissions, student, assignment, nb, model=GOOD_MODEL if assignment == "03_training" else None)
    env = dict(os.environ, CRSKY_SEED_FILE=str(seed_file), JUPYTER_CONFIG_DIR=str(root / "jupyter"),
               JUPYTER_DATA_DIR=str(root / "jupyter-data"), PYTHONWARNINGS="ignore")
    routes = {}

    # 1. The command line, as docs/jupyterhub.md's instructor types it.
    course = make_course(root / "cli", submissions)
    for assignment in ASSIGNMENTS:
        nbgrader_command(["generate_assignment", assignment, "--force"], course, env)
        nbgrader_command(["autograde", assignment, "--force"], course, env)
    routes["nbgrader autograde"] = scores(sqlite(course))

    # 2. The formgrader's button: NbGraderAPI.autograde with the course's configuration.
    course = make_course(root / "api", submissions)
    script = f'''
import os, sys
from nbgrader.apps.api import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from traitlets.config.loader import PyFileConfigLoader
config = PyFileConfigLoader("nbgrader_config.py", path=os.getcwd()).load_config()
for option in {course_options(course)!r}:
    section, _, value = option[2:].partition("=")
    name, _, trait = section.partition(".")
    setattr(getattr(config, name), trait, int(value) if value.isdigit() else value)
api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
for assignment in {ASSIGNMENTS!r}:
    assert api.generate_assignment(assignment, force=True)["success"]
    for student in ("honest", "patcher"):
        if os.path.isdir(os.path.join({str(course)!r}, "submitted", student, assignment)):
            result = api.autograde(assignment, student, force=True, create=True)
            assert result["success"], result["log"][-3000:]
'''
    run = subprocess.run([sys.executable, "-c", script], cwd=COURSE_ROOT / "grading", env=env, capture_output=True,
                         text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    routes["formgrader (NbGraderAPI)"] = scores(sqlite(course))

    # 3. The course's pipeline, with the same seed.
    rows = pipeline.grade(submissions, root / "results", root / "work", seed=seed, held_out_maps=N_MAPS, workers=2,
                          quiet=True)
    with open(root / "results" / "grades.csv") as handle:
        table = list(csv.DictReader(handle))
    routes["python -m crsky.grading"] = scores(pipeline.default_gradebook(root / "work"))
    return {"routes": routes, "rows": rows, "table": table, "root": root, "seed": seed}


def test_every_route_gives_every_test_the_same_points(graded):
    routes = graded["routes"]
    reference_name, reference = next(iter(routes.items()))
    assert reference, "no grade was written"
    for name, found in routes.items():
        differences = {key: (reference.get(key), found.get(key)) for key in set(reference) | set(found)
                       if reference.get(key) != found.get(key)}
        assert not differences, f"{name} grades differently from {reference_name}: {differences}"


def test_the_honest_notebooks_get_full_points_and_the_model_its_accuracy(graded):
    found = next(iter(graded["routes"].values()))
    kernel = {name: score for (student, assignment, name), score in found.items()
              if (student, assignment) == ("honest", "02_kernel")}
    assert kernel and all(points == most and not manual for points, most, manual in kernel.values()), kernel
    points, most, manual = found["honest", "03_training", "test_saved_model_accuracy"]
    assert 3 < points <= most and not manual, (points, most, manual)  # the textbook's model: near full marks, scored by the grader


def test_the_model_gets_what_the_rule_gives_on_the_seeds_maps_on_every_route(graded):
    """The saved model's points are the scoring rule's (crsky.scoring) on the held-out maps of
    the instructor's seed file, recomputed here from the model file itself: on nbgrader's command
    line and the formgrader's button as in the pipeline, not 0 (the cell's own score under
    autograde) and not a number the notebook printed."""
    from crsky import scoring
    from crsky.simulate import held_out_simulation

    sim = held_out_simulation(n_maps=N_MAPS, seed=graded["seed"])
    model = scoring.load_submitted_model(GOOD_MODEL)
    accuracy = scoring.held_out_accuracy(scoring.predict_signal_probability(model, sim["data"]), sim["label"])
    full_marks_at = scoring.full_marks_accuracy(scoring.baseline_accuracy(sim["data"], sim["label"]))
    expected = round(scoring.accuracy_points(accuracy, 4, full_marks_at), 2)
    assert expected > 3, (accuracy, full_marks_at)
    for name, found in graded["routes"].items():
        points, most, manual = found["honest", "03_training", "test_saved_model_accuracy"]
        assert (points, most, manual) == (pytest.approx(expected, abs=0.005), 4, False), (name, points, expected)


def test_the_patcher_is_withheld_for_review_on_every_route(graded):
    for name, found in graded["routes"].items():
        tests = {test: score for (student, assignment, test), score in found.items() if student == "patcher"}
        assert tests and all(points == 0 and manual for points, _, manual in tests.values()), (name, tests)
    [row] = [r for r in graded["table"] if r["student"] == "patcher" and r["assignment"] == "02_kernel"]
    assert "builtins.all" in row["review"] and "numpy.allclose" in row["review"], row
    assert row["withheld"] and not row["failed_tests"], row


def test_grades_are_rebuilt_after_manual_grading(graded):
    """An instructor reviews the patcher's withheld tests in the formgrader and gives 1 point to
    one; `python -m crsky.grading.export` brings the score into both tables."""
    from nbgrader.api import Gradebook

    root = graded["root"]
    with Gradebook(pipeline.default_gradebook(root / "work")) as book:
        [grade] = [g for g in book.find_submission_notebook("02_kernel", "02_kernel", "patcher").grades
                   if g.name == "test_kernel_shape"]
        grade.manual_score = 1.0  # what the formgrader writes
        book.db.commit()
    run = subprocess.run([sys.executable, "-m", "crsky.grading.export", "--workdir", str(root / "work"),
                          "--results", str(root / "results")], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "patcher 02_kernel: 0 -> 1" in run.stdout, run.stdout
    with open(root / "results" / "grades.csv") as handle:
        [row] = [r for r in csv.DictReader(handle) if (r["student"], r["assignment"]) == ("patcher", "02_kernel")]
    assert row["score"] == "1" and "builtins.all" in row["review"], row
    with open(root / "results" / "nbgrader_grades.csv") as handle:
        [exported] = [r for r in csv.DictReader(handle) if (r["student_id"], r["assignment"]) == ("patcher", "02_kernel")]
    assert float(exported["score"]) == 1.0, exported


def test_export_says_what_is_missing(tmp_path):
    run = subprocess.run([sys.executable, "-m", "crsky.grading.export", "--workdir", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "no gradebook at" in run.stderr and "--workdir of the grading run" in run.stderr
