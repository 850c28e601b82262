"""The grading pipeline on a class of sample submissions, good and bad, each with its
expected score; the batch always completes and no submitted file is touched."""

import csv
import hashlib
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from crsky.grading import pipeline
from crsky.grading.samples import answered, submit

ROOT = Path(__file__).resolve().parents[1]

GOOD_MODEL = ROOT / "tests" / "fixtures" / "dgcnn_textbook.keras"
TIMEOUT_S = 30
pytestmark = pytest.mark.grading


WRONG_SHAPE = '''
def kernel_nn(data, nodes=16):
    x_i, x_j = data
    x = layers.Concatenate(axis=-1)([x_i, layers.Subtract()([x_i, x_j])])
    x = layers.Dense(nodes, activation="relu")(x)
    return layers.Dense(nodes + 1)(x)
'''
RAISES = '''
def kernel_nn(data, nodes=16):
    raise ValueError("not finished yet")
'''
LOOPS = '''
while True:
    pass
'''


def untrained_model(path):
    from crsky.models import build_reference_model

    build_reference_model().save(path)
    return path


def digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("class")
    subs = base / "submissions"
    bad_model = base / "corrupt.keras"
    bad_model.write_bytes(np.random.default_rng(0).bytes(4000))
    weak_model = untrained_model(base / "untrained.keras")

    submit(subs, "correct", "02_kernel")
    submit(subs, "correct", "03_training", model=GOOD_MODEL)
    submit(subs, "wrong_shape", "02_kernel", answered("02_kernel", {"kernel_nn": WRONG_SHAPE}))
    submit(subs, "raises", "02_kernel", answered("02_kernel", {"kernel_nn": RAISES}))
    submit(subs, "loops", "02_kernel", answered("02_kernel", {"kernel_nn": LOOPS}))
    submit(subs, "edited_test", "02_kernel",
           answered("02_kernel", {"kernel_nn": WRONG_SHAPE}, edit_test="test_kernel_shape"))
    submit(subs, "deleted_test", "02_kernel",
           answered("02_kernel", {"kernel_nn": WRONG_SHAPE}, drop_test="test_kernel_in_edgeconv"))
    submit(subs, "low_accuracy", "03_training", model=weak_model)
    submit(subs, "missing_model", "03_training")
    submit(subs, "corrupt_model", "03_training", model=bad_model)
    submit(subs, "not_json", "02_kernel", raw='{"cells": [ this is not json')
    zipped = base / "zipped"
    submit(zipped, "zipped", "02_kernel")
    with zipfile.ZipFile(subs / "zipped.zip", "w") as archive:
        archive.write(zipped / "zipped" / "02_kernel" / "02_kernel.ipynb", "zipped/02_kernel/02_kernel.ipynb")

    before = digest(subs)
    rows = pipeline.grade(subs, base / "results", base / "work", seed=None, timeout_s=TIMEOUT_S)
    return {"rows": rows, "base": base, "subs": subs, "before": before}


def score(graded, student, assignment):
    [row] = [r for r in graded["rows"] if r["student"] == student and r["assignment"] == assignment]
    return row


def expected_accuracy_points():
    from crsky.grading.scoring import accuracy_points, held_out_maps, load_submitted_model, predict_signal_probability

    x, y = held_out_maps()
    accuracy = np.mean((predict_signal_probability(load_submitted_model(GOOD_MODEL), x) > 0.5) == y)
    return accuracy, accuracy_points(accuracy, 4, 0.85)


def test_correct_submission_gets_full_points(graded):
    assert score(graded, "correct", "02_kernel")["score"] == 6
    accuracy, points = expected_accuracy_points()
    assert accuracy >= 0.85 and points == 4
    row = score(graded, "correct", "03_training")
    assert row["score"] == pytest.approx(2 + points, abs=0.01) and not row["failed_tests"]


@pytest.mark.parametrize("student, expected", [
    ("wrong_shape", 1),   # only "depends on both inputs" passes
    ("raises", 0),
    ("loops", 0),         # the cell times out, the batch goes on
    ("edited_test", 1),   # the emptied test cell is restored from the gradebook
    ("deleted_test", 1),  # the deleted test cell is put back and fails
    ("not_json", 0),
    ("zipped", 6),
])
def test_kernel_submissions(graded, student, expected):
    assert score(graded, student, "02_kernel")["score"] == expected


def test_wrong_shape_names_the_failed_tests(graded):
    failed = " ".join(score(graded, "wrong_shape", "02_kernel")["failed_tests"])
    assert "test_kernel_shape (0/2)" in failed and "test_kernel_in_edgeconv (0/2)" in failed


def test_infinite_loop_is_stopped_by_the_cell_timeout(graded):
    html = (graded["base"] / "results" / "feedback" / "loops" / "02_kernel" / "02_kernel.html").read_text()
    assert "CellTimeoutError" in html or "timed out" in html.lower()


def test_invalid_notebook_is_reported(graded):
    assert any("not a valid notebook" in e for e in score(graded, "not_json", "02_kernel")["errors"])


@pytest.mark.parametrize("student, message", [
    ("missing_model", "no trained model at dgcnn.keras"),
    ("corrupt_model", "cannot be loaded"),
])
def test_model_problems_score_zero_with_a_clear_message(graded, student, message):
    row = score(graded, student, "03_training")
    assert row["score"] == 2  # build_dgcnn passes, the accuracy test scores 0
    html = (graded["base"] / "results" / "feedback" / student / "03_training" / "03_training.html").read_text()
    assert message in re.sub(r"<[^>]+>", "", html).replace("&#x27;", "'")


def test_low_accuracy_model_gets_little_partial_credit(graded):
    row = score(graded, "low_accuracy", "03_training")
    assert 2 <= row["score"] < 2.5


def test_every_student_has_a_row_for_every_assignment(graded):
    with open(graded["base"] / "results" / "grades.csv") as handle:
        rows = list(csv.DictReader(handle))
    students = {"correct", "wrong_shape", "raises", "loops", "edited_test", "deleted_test", "low_accuracy",
                "missing_model", "corrupt_model", "not_json", "zipped"}
    assert {r["student"] for r in rows} == students
    assert len(rows) == len(students) * len(pipeline.ASSIGNMENTS)
    unsubmitted = [r for r in rows if r["student"] == "raises" and r["assignment"] == "01_sky"]
    assert unsubmitted[0]["score"] == "0" and "not submitted" in unsubmitted[0]["errors"]
    assert (graded["base"] / "results" / "nbgrader_grades.csv").stat().st_size > 0


def test_no_submitted_file_is_modified(graded):
    assert digest(graded["subs"]) == graded["before"]
