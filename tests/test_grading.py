"""The grading pipeline end to end on one class of sample submissions, honest and hostile,
each with its expected score: what only a whole batch shows. The hidden seed, hurting other
students or later batches, stopping the batch, files the collection must refuse, a damaged
notebook, a poor model, both saved models scored on the hidden maps, and unsafe feedback.
None gains points, none changes another student's score or an original submission, and the
batch always writes every row.

What a single notebook shows is tested where it is cheaper: the answers that forge a grade
in tests/test_corpus.py (every attack of tests/corpus_hostile.py, honest variants beside them), the metadata repairs
under nbgrader in tests/test_repair.py, every collection refusal in tests/test_collect.py,
missing, corrupt and mismatched model files in tests/test_trusted_scoring.py, scripts and
styles in outputs in tests/test_feedback.py, one grade on every route in tests/test_routes.py."""

import csv
import hashlib
import io
import os
import re
import subprocess
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from crsky.course import ASSIGNMENTS, COURSE_ROOT
from crsky.grading import feedback, hidden, pipeline, sandbox
from crsky.grading.samples import answered, submit
from crsky.grading.seed import MIN_SEED, new_seed_file

GOOD_MODEL = COURSE_ROOT / "tests" / "fixtures" / "dgcnn_textbook.keras"
MEMBER_MODEL = COURSE_ROOT / "tests" / "fixtures" / "members_cpu.keras"
CELL_TIMEOUT_S = 45  # the looping student holds a worker this long
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

# -------------------------------------------------------------- the attacks
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
targets += glob.glob("/**/correct/**/*.ipynb", recursive=True) + glob.glob("/**/correct/**/*.keras", recursive=True)
import crsky
targets += [os.path.join(os.path.dirname(crsky.__file__), "grading", "scoring.py"),
            os.path.join(os.path.dirname(crsky.__file__), "scoring.py"),
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
XSS_ANSWER = ("The dynamic graph links similar features. <script>alert('xss-answer')</script>"
              "<style>body{display:none}</style><img src=x onerror=\"alert('xss-answer-img')\">")
LOOPS = "while True:\n    pass\n"


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
    from crsky.models import build_reference_model

    untrained = base / "untrained.keras"
    build_reference_model().save(untrained)

    # Honest students, as in every class.
    submit(subs, "correct", "02_kernel")
    submit(subs, "correct", "03_training", model=GOOD_MODEL)
    submit(subs, "correct", "04_graph")
    submit(subs, "correct", "05_sources", model=MEMBER_MODEL)
    submit(subs, "wrong_shape", "02_kernel", answered("02_kernel", {"kernel_nn": WRONG_SHAPE}))
    submit(subs, "loops", "02_kernel", answered("02_kernel", {"kernel_nn": LOOPS}))
    submit(subs, "low_accuracy", "03_training", model=untrained)
    submit(subs, "not_json", "02_kernel", raw='{"cells": [ this is not json')

    # The hidden seed; other students, later batches, the batch itself.
    submit(subs, "seed_thief", "02_kernel", answered("02_kernel", {"kernel_nn": SEED_THIEF}))
    submit(subs, "vandal", "02_kernel", answered("02_kernel", {"kernel_nn": VANDAL}))
    submit(subs, "killer", "02_kernel", answered("02_kernel", {"kernel_nn": KILLER}))
    submit(subs, "fork_bomb", "02_kernel", answered("02_kernel", {"kernel_nn": FORK_BOMB}))
    # Symbolic links and other hostile files.
    (subs / "link_passwd" / "02_kernel").mkdir(parents=True)
    os.symlink("/etc/passwd", subs / "link_passwd" / "02_kernel" / "02_kernel.ipynb")
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
    # Unsafe feedback.
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


def expected_member_points(seed):
    """Notebook 5's rule applied here, to the same hidden maps: (points of 4, purity)."""
    from crsky import members
    from crsky.baseline import member_baseline_scores
    from crsky.scoring import load_submitted_model

    x, truth = members.held_out_member_maps(HELD_OUT_MAPS, seed=seed)
    score, result = members.score_member_model(load_submitted_model(MEMBER_MODEL), x, truth,
                                               member_baseline_scores(members.public_member_baseline(), x))
    return round(score, 2), result["purity"]


def expected_accuracy_points(seed):
    from crsky.scoring import (accuracy_points, baseline_accuracy, full_marks_accuracy, held_out_accuracy,
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


def test_the_saved_member_model_is_scored_by_the_grader_on_the_hidden_maps(graded):
    points, purity = expected_member_points(graded["seed"])
    found = row(graded, "correct", "05_sources")
    assert found["score"] == pytest.approx(6 + points, abs=0.01) and not found["review"], found
    assert found["purity"] == pytest.approx(purity, abs=1e-4) and found["accuracy"] is None
    [line] = [r for r in csv.DictReader(io.StringIO(graded["grades_csv"].decode()))
              if (r["student"], r["assignment"]) == ("correct", "05_sources")]
    assert (line["purity"], line["accuracy"]) == (f"{purity:.4f}", "")
    page = graded["base"] / "results" / "feedback" / "correct" / "05_sources" / "05_sources.html"
    text = re.sub(r"<[^>]+>", "", page.read_text())
    assert f"{purity:.3f}" in text and "measured by the grader" in text


@pytest.mark.parametrize("student, expected", [
    ("wrong_shape", 2),   # "depends on both inputs" and "has trainable weights" pass
    ("loops", 0),         # the cell times out, the batch goes on
    ("not_json", 0),
])
def test_kernel_submissions(graded, student, expected):
    found = row(graded, student, "02_kernel")
    assert found["score"] == expected and not found["review"], found


def test_repairs_and_failures_say_what_happened(graded):
    assert any("not a valid notebook" in e or "cannot be read" in e or "nbformat" in e
               for e in row(graded, "not_json", "02_kernel")["errors"])
    failed = " ".join(row(graded, "wrong_shape", "02_kernel")["failed_tests"])
    assert "test_kernel_shape (0/2)" in failed and "test_kernel_in_edgeconv (0/2)" in failed
    html = (graded["base"] / "results" / "feedback" / "loops" / "02_kernel" / "02_kernel.html").read_text()
    assert "CellTimeoutError" in html or "timed out" in html.lower()


def test_low_accuracy_model_gets_little_partial_credit_and_its_feedback_says_why(graded):
    found = row(graded, "low_accuracy", "03_training")
    assert 6 <= found["score"] < 6.5 and found["accuracy"] < 0.6
    html = (graded["base"] / "results" / "feedback" / "low_accuracy" / "03_training" / "03_training.html").read_text()
    assert f"test accuracy on {HELD_OUT_MAPS} held-out maps: {found['accuracy']:.3f}" in re.sub(r"<[^>]+>", "", html)


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
    assert row(graded, "correct", "02_kernel")["score"] == 6  # the vandal's target, graded beside it
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
    ("link_passwd", "02_kernel"), ("link_folder", "02_kernel"), ("link_loop", "02_kernel"),
    ("collide", "02_kernel"), ("zip_bomb", "02_kernel"),
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
    page = graded["base"] / "results" / "feedback" / "{}" / "04_graph" / "04_graph.html"
    html, clean = Path(str(page).format("xss")).read_text(), Path(str(page).format("correct")).read_text()
    assert feedback.unsafe_html(html, clean) == []  # nothing beyond nbgrader's own page
    assert not re.search(r"<script[^>]*>\s*alert|<[a-z]+[^>]*\sonerror\s*=", html, re.I)  # escaped text is fine
    assert "The dynamic graph links similar features" in html  # the written answer is still shown


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
    unsubmitted = [r for r in rows if r["student"] == "loops" and r["assignment"] == "01_sky"]
    assert unsubmitted[0]["score"] == "0" and "not submitted" in unsubmitted[0]["errors"]
    assert (graded["base"] / "results" / "nbgrader_grades.csv").stat().st_size > 0


def test_no_submitted_file_is_modified(graded):
    assert digest(graded["subs"]) == graded["before"]


def test_grading_cost_per_notebook(graded):
    notebooks = sum(1 for r in graded["rows"] if r["graded"])
    print(f"\n{notebooks} notebooks graded in {graded['seconds']:.0f} s on {os.cpu_count()} cores, 2 workers")
    assert notebooks >= 12
