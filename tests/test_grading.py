"""The grading pipeline on a class of sample submissions, honest and hostile, each with its
expected score. Every attack of the security review is here at least once: forged grades,
the hidden seed, hurting other students or later batches, stopping the batch, symbolic
links, damaged notebooks and unsafe feedback. None gains points, none changes another
student's score or an original submission, and the batch always writes every row."""

import csv
import hashlib
import os
import re
import subprocess
import time
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest

from crsky.course import ASSIGNMENTS, COURSE_ROOT
from crsky.grading import feedback, hidden, pipeline, sandbox
from crsky.grading.samples import answered, submit
from crsky.grading.seed import MIN_SEED, new_seed_file

GOOD_MODEL = COURSE_ROOT / "tests" / "fixtures" / "dgcnn_textbook.keras"
CELL_TIMEOUT_S = 60
HELD_OUT_MAPS = 1_000  # fewer than a real class gets (crsky.experiment.HELD_OUT_MAPS): the pipeline is the same
pytestmark = [pytest.mark.grading,
              pytest.mark.skipif(not sandbox.probe()[0] and os.environ.get("CRSKY_REQUIRE_SANDBOX") != "1",
                                 reason=f"no grading sandbox here: {sandbox.probe()[1]}")]


def solution(assignment, grade_id):
    nb = nbformat.read(COURSE_ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    [cell] = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    return "\n".join(line for line in cell.source.splitlines() if "### " not in line)


KERNEL = solution("02_kernel", "kernel_nn")
WRONG_SHAPE = '''
def kernel_nn(data, nodes=16):
    x_i, x_j = data
    x = layers.Concatenate(axis=-1)([x_i, layers.Subtract()([x_i, x_j])])
    x = layers.Dense(nodes, activation="relu")(x)
    return layers.Dense(nodes + 1)(x)
'''
WRONG_DGCNN = '''
def build_dgcnn():
    points, features = layers.Input((500, 3)), layers.Input((500, 4))
    return keras.Model([points, features], layers.Dense(2, activation="softmax")(layers.GlobalAveragePooling1D()(features)))
'''

# -------------------------------------------------------------- the attacks
FORGE_TRANSFORMER = WRONG_SHAPE + '''
get_ipython().input_transformers_cleanup.append(lambda lines: [l.replace("assert ", "pass  # ") for l in lines])
'''
FORGE_BUILTINS = WRONG_SHAPE + '''
tuple = lambda shape: (None, 8) if len(list(shape)) == 2 else shape
all = lambda values: True
'''
FORGE_COUNT_PARAMS = WRONG_DGCNN + '''
keras.Model.count_params = lambda self: 4770
'''
FORGE_SCORER = solution("03_training", "build_dgcnn") + '''
import crsky.grading.scoring
crsky.grading.scoring.score_saved_model = lambda *args, **kwargs: 4
'''
FORGE_FORMATTER = solution("03_training", "build_dgcnn") + '''
get_ipython().display_formatter.formatters["text/plain"].for_type(float, lambda value, p, cycle: p.text("4.0"))
'''
FORGE_IMPORT_HOOK = WRONG_SHAPE + '''
import builtins, types
_real_import = builtins.__import__
def _import(name, *args, **kwargs):
    module = _real_import(name, *args, **kwargs)
    return module
builtins.__import__ = _import
'''
SEED_THIEF = KERNEL + '''
import glob, os
found = [f"{k}={v}" for k, v in os.environ.items()]
for pid in os.listdir("/proc"):
    for part in ("cmdline", "environ"):
        try:
            found.append(open(f"/proc/{pid}/{part}", "rb").read().decode(errors="replace"))
        except OSError:
            pass
for path in glob.glob("/**/*seed*", recursive=True)[:200] + glob.glob("/**/gradebook.db", recursive=True)[:20]:
    try:
        found.append(path + ":" + open(path, errors="replace").read(200))
    except OSError:
        pass
print("\\n".join(found))
'''
VANDAL = KERNEL + '''
import glob, os, subprocess, sys
targets = glob.glob("/**/gradebook.db", recursive=True) + glob.glob("/**/grades.csv", recursive=True)
targets += glob.glob("/**/victim*/**/*.ipynb", recursive=True) + glob.glob("/**/victim*/**/*.keras", recursive=True)
import crsky
targets += [os.path.join(os.path.dirname(crsky.__file__), "grading", "scoring.py"),
            os.path.join(os.path.dirname(crsky.__file__), "evil.py")]
for path in targets + [os.path.expanduser("~/.ipython/profile_default/startup/00-evil.py"),
                       os.path.expanduser("~/.cache/crsky/poison.npz"), "/tmp/crsky-poison"]:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write("raise SystemExit('poisoned')\\n")
    except OSError:
        pass
subprocess.Popen([sys.executable, "-c", "import time, glob\\ntime.sleep(8)\\n"
                  "[open(p, 'w').write('forged') for p in glob.glob('/**/grades.csv', recursive=True)]"],
                 start_new_session=True)
'''
KILLER = KERNEL + '''
import os, signal
for pid in [os.getppid(), 1] + [int(p) for p in os.listdir("/proc") if p.isdigit()]:
    if pid != os.getpid():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
os.kill(os.getpid(), signal.SIGKILL)
'''
FORK_BOMB = KERNEL + '''
import os, time
children = []
for _ in range(5000):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    children.append(pid)
print("forked", len(children))
'''
XSS = KERNEL + '''
from IPython.display import HTML, Javascript, display
display(HTML("<script>alert('xss-script')</script><style>body{display:none}</style><img src=x onerror=alert('xss-img')>"))
display(Javascript("alert('xss-js')"))
'''
XSS_ANSWER = ("The dynamic graph links similar features. <script>alert('xss-answer')</script>"
              "<style>body{display:none}</style><img src=x onerror=\"alert('xss-answer-img')\">")
LOOPS = "while True:\n    pass\n"
RAISES = 'def kernel_nn(data, nodes=16):\n    raise ValueError("not finished yet")\n'


def stripped(nb):
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)
    return nb


def duplicated(assignment, grade_id):
    nb = answered(assignment)
    index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    copy = nbformat.from_dict(nb.cells[index])
    copy["id"] = copy["id"] + "-copy"
    nb.cells.insert(index, copy)
    return nb


def tree_digest(*paths):
    digest = hashlib.sha256()
    for root in paths:
        for path in sorted(Path(root).rglob("*")) if Path(root).is_dir() else [Path(root)]:
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path).encode() + path.read_bytes())
    return digest.hexdigest()


def digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


@pytest.fixture(scope="module")
def seed(tmp_path_factory):
    """The hidden seed of this class, as an instructor makes and passes it (``python -m
    crsky.grading.seed new``, then ``--seed-file``): it must appear nowhere in what the grader returns."""
    path = new_seed_file(tmp_path_factory.mktemp("instructor") / ".config" / "crsky" / "heldout.seed")
    return pipeline.read_seed(str(path))


@pytest.fixture(scope="module")
def graded(tmp_path_factory, seed):
    base = tmp_path_factory.mktemp("class")
    subs = base / "submissions"
    corrupt = base / "corrupt.keras"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4000))
    from crsky.models import build_reference_model

    untrained = base / "untrained.keras"
    build_reference_model().save(untrained)

    # Honest students, as in every class.
    submit(subs, "correct", "02_kernel")
    submit(subs, "correct", "03_training", model=GOOD_MODEL)
    submit(subs, "correct", "04_graph")
    submit(subs, "victim", "02_kernel")
    submit(subs, "victim", "03_training", model=GOOD_MODEL)
    submit(subs, "wrong_shape", "02_kernel", answered("02_kernel", {"kernel_nn": WRONG_SHAPE}))
    submit(subs, "raises", "02_kernel", answered("02_kernel", {"kernel_nn": RAISES}))
    submit(subs, "loops", "02_kernel", answered("02_kernel", {"kernel_nn": LOOPS}))
    submit(subs, "edited_test", "02_kernel", answered("02_kernel", {"kernel_nn": WRONG_SHAPE},
                                                       edit_test="test_kernel_shape"))
    submit(subs, "deleted_test", "02_kernel", answered("02_kernel", {"kernel_nn": WRONG_SHAPE},
                                                        drop_test="test_kernel_in_edgeconv"))
    submit(subs, "low_accuracy", "03_training", model=untrained)
    submit(subs, "missing_model", "03_training")
    submit(subs, "corrupt_model", "03_training", model=corrupt)
    submit(subs, "not_json", "02_kernel", raw='{"cells": [ this is not json')
    submit(subs, "stripped", "02_kernel", stripped(answered("02_kernel")))
    submit(subs, "duplicated", "02_kernel", duplicated("02_kernel", "kernel_nn"))
    zipped = base / "zipped"
    submit(zipped, "zipped", "02_kernel")
    with zipfile.ZipFile(subs / "zipped.zip", "w") as archive:
        archive.write(zipped / "zipped" / "02_kernel" / "02_kernel.ipynb", "zipped/02_kernel/02_kernel.ipynb")

    # Forged grades.
    submit(subs, "forge_transformer", "02_kernel", answered("02_kernel", {"kernel_nn": FORGE_TRANSFORMER}))
    submit(subs, "forge_builtins", "02_kernel", answered("02_kernel", {"kernel_nn": FORGE_BUILTINS}))
    submit(subs, "forge_import_hook", "02_kernel", answered("02_kernel", {"kernel_nn": FORGE_IMPORT_HOOK}))
    submit(subs, "forge_count_params", "03_training", answered("03_training", {"build_dgcnn": FORGE_COUNT_PARAMS}),
           model=untrained)
    submit(subs, "forge_scorer", "03_training", answered("03_training", {"build_dgcnn": FORGE_SCORER}),
           model=untrained)
    submit(subs, "forge_formatter", "03_training", answered("03_training", {"build_dgcnn": FORGE_FORMATTER}),
           model=untrained)
    # The hidden seed; other students, later batches, the batch itself.
    submit(subs, "seed_thief", "02_kernel", answered("02_kernel", {"kernel_nn": SEED_THIEF}))
    submit(subs, "vandal", "02_kernel", answered("02_kernel", {"kernel_nn": VANDAL}))
    submit(subs, "killer", "02_kernel", answered("02_kernel", {"kernel_nn": KILLER}))
    submit(subs, "fork_bomb", "02_kernel", answered("02_kernel", {"kernel_nn": FORK_BOMB}))
    # Symbolic links and other hostile files.
    submit(subs, "link_passwd", "03_training")
    os.symlink("/etc/passwd", subs / "link_passwd" / "03_training" / "dgcnn.keras")
    submit(subs, "link_victim", "03_training")
    os.symlink("../../victim/03_training/dgcnn.keras", subs / "link_victim" / "03_training" / "dgcnn.keras")
    outside = base / "outside" / "02_kernel"
    outside.mkdir(parents=True)
    nbformat.write(answered("02_kernel"), outside / "02_kernel.ipynb")
    (subs / "link_folder").mkdir()
    os.symlink(outside, subs / "link_folder" / "02_kernel")
    submit(subs, "link_loop", "02_kernel")
    os.symlink("loop", subs / "link_loop" / "02_kernel" / "loop")
    submit(subs, "collide", "02_kernel")
    with zipfile.ZipFile(subs / "collide.zip", "w") as archive:
        archive.write(subs / "collide" / "02_kernel" / "02_kernel.ipynb", "02_kernel/02_kernel.ipynb")
    with zipfile.ZipFile(subs / "zip_bomb.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("02_kernel/02_kernel.ipynb", nbformat.writes(answered("02_kernel")))
        archive.writestr("02_kernel/padding.bin", b"\0" * (300 << 20))  # 300 MiB of zeros, about 300 KB zipped
    submit(subs, "big_model", "03_training")
    with open(subs / "big_model" / "03_training" / "dgcnn.keras", "wb") as handle:
        handle.truncate(200 << 20)
    # Unsafe feedback.
    submit(subs, "xss", "02_kernel", answered("02_kernel", {"kernel_nn": XSS}))
    submit(subs, "xss", "04_graph", answered("04_graph", {"answer_dynamic_graph": XSS_ANSWER}))

    package = tree_digest(COURSE_ROOT / "crsky", COURSE_ROOT / "edgeconv.py")
    before = digest(subs)
    start = time.perf_counter()
    rows = pipeline.grade(subs, base / "results", base / "work", seed=seed, held_out_maps=HELD_OUT_MAPS, cell_timeout_s=CELL_TIMEOUT_S,
                          task_timeout_s=300, workers=2)
    seconds = time.perf_counter() - start
    grades_csv = (base / "results" / "grades.csv").read_bytes()
    time.sleep(10)  # longer than the detached process's sleep: it must have been killed
    return {"rows": rows, "base": base, "subs": subs, "before": before, "package": package, "seconds": seconds,
            "grades_csv": grades_csv, "seed": seed}


def row(graded, student, assignment):
    [found] = [r for r in graded["rows"] if r["student"] == student and r["assignment"] == assignment]
    return found


def expected_accuracy_points(seed):
    from crsky.grading.scoring import (accuracy_points, baseline_accuracy, full_marks_accuracy, held_out_accuracy,
                                       held_out_maps, load_submitted_model, predict_signal_probability)

    x, y = held_out_maps(n_maps=HELD_OUT_MAPS, seed=seed)
    accuracy = held_out_accuracy(predict_signal_probability(load_submitted_model(GOOD_MODEL), x), y)
    return accuracy, accuracy_points(accuracy, 4, full_marks_accuracy(baseline_accuracy(x, y)))


# --------------------------------------------------------------- honest work
def test_correct_submission_gets_full_points(graded):
    assert row(graded, "correct", "02_kernel")["score"] == 6
    # Scored on the maps of the generated seed: the seed file went through to the scoring.
    assert graded["seed"] >= MIN_SEED
    accuracy, points = expected_accuracy_points(graded["seed"])
    found = row(graded, "correct", "03_training")
    assert found["accuracy"] == pytest.approx(accuracy, abs=1e-4)
    assert found["score"] == pytest.approx(6 + round(points, 2), abs=0.01) and not found["review"]


@pytest.mark.parametrize("student, expected", [
    ("wrong_shape", 2),   # "depends on both inputs" and "has trainable weights" pass
    ("raises", 0),
    ("loops", 0),         # the cell times out, the batch goes on
    ("edited_test", 2),   # the emptied test cell is restored from the gradebook
    ("deleted_test", 2),  # the deleted test cell is put back and fails
    ("not_json", 0),
    ("zipped", 6),
    ("stripped", 6),      # nbgrader metadata stripped: repaired from the release
    ("duplicated", 6),    # a solution cell copied in Jupyter: the last copy is graded
])
def test_kernel_submissions(graded, student, expected):
    found = row(graded, student, "02_kernel")
    assert found["score"] == expected and not found["review"], found


def test_repairs_and_failures_say_what_happened(graded):
    assert any("copy" in note for note in row(graded, "duplicated", "02_kernel")["notes"])
    assert row(graded, "stripped", "02_kernel")["notes"]
    assert any("not a valid notebook" in e or "cannot be read" in e or "nbformat" in e
               for e in row(graded, "not_json", "02_kernel")["errors"])
    failed = " ".join(row(graded, "wrong_shape", "02_kernel")["failed_tests"])
    assert "test_kernel_shape (0/2)" in failed and "test_kernel_in_edgeconv (0/2)" in failed
    html = (graded["base"] / "results" / "feedback" / "loops" / "02_kernel" / "02_kernel.html").read_text()
    assert "CellTimeoutError" in html or "timed out" in html.lower()


@pytest.mark.parametrize("student, message", [
    ("missing_model", "no trained model"),
    ("corrupt_model", "cannot be loaded"),
])
def test_model_problems_score_zero_with_a_clear_message(graded, student, message):
    found = row(graded, student, "03_training")
    assert found["score"] == 6  # the three exercises pass, the accuracy test scores 0
    html = (graded["base"] / "results" / "feedback" / student / "03_training" / "03_training.html").read_text()
    assert message in re.sub(r"<[^>]+>", "", html).replace("&#x27;", "'")


def test_low_accuracy_model_gets_little_partial_credit(graded):
    found = row(graded, "low_accuracy", "03_training")
    assert 6 <= found["score"] < 6.5 and found["accuracy"] < 0.6


# ------------------------------------------------------------ forged grades
@pytest.mark.parametrize("student, detectable", [
    ("forge_transformer", False),  # an IPython input transformer: the tests do not go through IPython
    ("forge_builtins", False),     # builtins rebound in the notebook's namespace: the tests have their own
    ("forge_import_hook", True),   # builtins.__import__ replaced
])
def test_forging_a_kernel_answer_gains_nothing(graded, student, detectable):
    """Each forger's answer is WRONG_SHAPE's (2 of 6 points honestly): the forgery adds nothing."""
    found = row(graded, student, "02_kernel")
    assert found["score"] <= row(graded, "wrong_shape", "02_kernel")["score"], found
    if detectable:  # the change is named and the points wait for a person
        assert found["review"] and set(found["withheld"]) >= {"test_kernel_shape", "test_kernel_in_edgeconv"}, found
        assert set(found["needs_manual_grade"]) >= set(found["withheld"]) and not found["failed_tests"], found


@pytest.mark.parametrize("student, detectable", [
    ("forge_count_params", False),  # keras.Model.count_params replaced: the tests count weights themselves
    ("forge_scorer", False),        # crsky.grading.scoring.score_saved_model replaced: never called by the grader
    ("forge_formatter", False),     # a display formatter: the grader never reads the display
])
def test_forging_the_model_test_gains_nothing(graded, student, detectable):
    found = row(graded, student, "03_training")
    low = row(graded, "low_accuracy", "03_training")
    # The accuracy is measured outside the notebook: the untrained model's, whatever it printed.
    assert found["accuracy"] == pytest.approx(low["accuracy"], abs=1e-6)
    assert found["score"] <= low["score"] + 0.01, (found, low)
    if detectable:
        assert found["review"] and found["withheld"], found


def test_the_hidden_seed_is_nowhere_the_students_or_the_results_reach(graded):
    text = str(graded["seed"])
    for folder in (graded["base"] / "results", graded["base"] / "work" / "course"):
        for path in folder.rglob("*"):
            if path.is_file():
                assert text not in path.read_text(errors="replace"), path
    output = (graded["base"] / "work" / "course" / "autograded" / "seed_thief" / "02_kernel" / "02_kernel.ipynb").read_text()
    assert "gradebook.db:" not in output and "CRSKY_GRADING" not in output


# ------------------------------------------- other students, later batches, the batch
def test_vandal_changes_nothing_of_anyone_else(graded):
    assert row(graded, "victim", "02_kernel")["score"] == 6
    assert row(graded, "victim", "03_training")["score"] == row(graded, "correct", "03_training")["score"]
    assert tree_digest(COURSE_ROOT / "crsky", COURSE_ROOT / "edgeconv.py") == graded["package"]
    assert not (COURSE_ROOT / "crsky" / "evil.py").exists()
    # The detached process that was to rewrite grades.csv after the batch was killed with its kernel.
    assert (graded["base"] / "results" / "grades.csv").read_bytes() == graded["grades_csv"]
    # This class's own leftovers only (another grading on the machine may run sandboxes meanwhile):
    # the vandal's detached process, found by the text of its command line.
    commands = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True).stdout.splitlines()
    assert not [line for line in commands if "'forged'" in line and "grades.csv" in line], commands


def test_killing_processes_costs_the_killer_only(graded):
    found = row(graded, "killer", "02_kernel")
    assert found["score"] == 0 and any("did not all run" in e for e in found["errors"]), found
    assert row(graded, "fork_bomb", "02_kernel")["score"] <= 6  # capped, graded, and the batch went on
    assert len(graded["rows"]) == len({r["student"] for r in graded["rows"]}) * len(ASSIGNMENTS)


def test_a_later_batch_is_not_poisoned(graded, tmp_path):
    subs = tmp_path / "submissions"
    submit(subs, "later", "02_kernel")
    rows = pipeline.grade(subs, tmp_path / "results", tmp_path / "work", seed=graded["seed"], held_out_maps=HELD_OUT_MAPS, cell_timeout_s=CELL_TIMEOUT_S,
                          workers=1, quiet=True)
    assert [r["score"] for r in rows if r["assignment"] == "02_kernel"] == [6]


# ------------------------------------------------------------ hostile files
@pytest.mark.parametrize("student, assignment", [
    ("link_passwd", "03_training"), ("link_victim", "03_training"), ("link_folder", "02_kernel"),
    ("link_loop", "02_kernel"), ("collide", "02_kernel"), ("zip_bomb", "02_kernel"), ("big_model", "03_training"),
])
def test_hostile_files_are_rejected_with_a_reason(graded, student, assignment):
    found = row(graded, student, assignment)
    assert found["errors"], found
    assert found["accuracy"] is None or found["accuracy"] < 0.6  # never the victim's model


def test_no_outside_file_reaches_the_feedback(graded):
    for path in (graded["base"] / "results").rglob("*.html"):
        assert "root:x:0:0" not in path.read_text()


def test_feedback_is_html_without_script_style_or_handlers_from_outputs(graded):
    pages = list((graded["base"] / "results" / "feedback").rglob("*"))
    assert pages and all(p.is_dir() or p.suffix == ".html" for p in pages)
    for assignment in ("02_kernel", "04_graph"):
        page = graded["base"] / "results" / "feedback" / "{}" / assignment / f"{assignment}.html"
        html, clean = Path(str(page).format("xss")).read_text(), Path(str(page).format("correct")).read_text()
        assert feedback.unsafe_html(html, clean) == [], assignment  # nothing beyond nbgrader's own page
        assert not re.search(r"<script[^>]*>\s*alert|<[a-z]+[^>]*\sonerror\s*=", html, re.I)  # escaped text is fine
    answer = (graded["base"] / "results" / "feedback" / "xss" / "04_graph" / "04_graph.html").read_text()
    assert "The dynamic graph links similar features" in answer  # the written answer is still shown


def test_no_feedback_page_shows_a_hidden_test(graded):
    """Every page of the class against the instructor's notebooks: no hidden-test marker and
    no hidden line (one the student's own notebook does not hold) in what the page shows;
    each test cell still shows its name and points."""
    pages = sorted((graded["base"] / "results" / "feedback").rglob("*.html"))
    sources = {a: nbformat.read(COURSE_ROOT / "solutions" / a / f"{a}.ipynb", as_version=4) for a in ASSIGNMENTS}
    with_hidden = {a for a, nb in sources.items() if any(hidden.BEGIN in c.source for c in nb.cells)}
    graded_assignments = {r["assignment"] for r in graded["rows"] if r["graded"]}
    assert graded_assignments >= {"02_kernel", "03_training", "04_graph"}
    assert {page.parent.name for page in pages} >= with_hidden & graded_assignments
    for page in pages:
        student, assignment = page.parent.parent.name, page.parent.name
        own = graded["subs"] / student / assignment / f"{assignment}.ipynb"
        submitted = nbformat.read(own, as_version=4) if own.is_file() and not own.is_symlink() else None
        html = page.read_text()
        assert "HIDDEN TESTS" not in html, page
        assert hidden.leaks(html, sources[assignment], submitted) == [], page
    correct = (graded["base"] / "results" / "feedback" / "correct" / "02_kernel" / "02_kernel.html").read_text()
    for grade_id in ("test_kernel_shape", "test_kernel_trainable", "test_kernel_in_edgeconv"):
        assert grade_id in correct
    assert "Score: 2.0 / 2.0" in correct and hidden.NOT_SHOWN in hidden.page_text(correct)
    assert not [e for r in graded["rows"] for e in r["errors"] if "hidden tests" in e]


# ------------------------------------------------------------------ the batch
def test_every_student_has_a_row_for_every_assignment(graded):
    with open(graded["base"] / "results" / "grades.csv") as handle:
        rows = list(csv.DictReader(handle))
    students = {p.name.removesuffix(".zip") for p in graded["subs"].iterdir()}
    assert {r["student"] for r in rows} == students
    assert len(rows) == len(students) * len(ASSIGNMENTS)
    unsubmitted = [r for r in rows if r["student"] == "raises" and r["assignment"] == "01_sky"]
    assert unsubmitted[0]["score"] == "0" and "not submitted" in unsubmitted[0]["errors"]
    assert (graded["base"] / "results" / "nbgrader_grades.csv").stat().st_size > 0


def test_no_submitted_file_is_modified(graded):
    assert digest(graded["subs"]) == graded["before"]


def test_grading_cost_per_notebook(graded):
    notebooks = sum(1 for r in graded["rows"] if r["graded"])
    print(f"\n{notebooks} notebooks graded in {graded['seconds']:.0f} s on {os.cpu_count()} cores, 2 workers")
    assert notebooks >= 25
