"""The gradebook: what the pipeline reads from and writes into nbgrader's database.

nbgrader keeps scores per test cell (``Grade``: ``auto_score`` from the autograder,
``manual_score`` from a person, ``needs_manual_grade``). The pipeline writes through
nbgrader's own API only, and keeps its own record of every score it wrote, so that
:func:`restore` can find and undo any score that reached the database another way.
SQLite (``sqlite:////abs/path/gradebook.db``) serves one machine; PostgreSQL
(``postgresql://user@host/db``) serves a cluster and the formgrader alike.
"""

import contextlib
import os
import sys

from nbgrader.api import Gradebook, MissingEntry

COURSE_ID = "crsky"  # grading/nbgrader_config.py's CourseDirectory.course_id


@contextlib.contextmanager
def opened(url):
    """nbgrader's :class:`Gradebook` at ``url``, closed afterwards."""
    # A new database is stamped with nbgrader's schema version by running `alembic` from
    # PATH: this Python's scripts first, also when a virtual environment is not activated.
    scripts = os.path.dirname(sys.executable)
    if scripts not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([scripts, os.environ.get("PATH", "")])
    gradebook = Gradebook(url, course_id=COURSE_ID)
    try:
        yield gradebook
    finally:
        gradebook.close()


def test_cell_grades(url, student, assignment):
    """``{grade_id: {"auto_score", "manual_score", "max_score", "needs_manual_grade", "code"}}``
    of a student's submitted assignment, or ``None`` when there is no submission."""
    with opened(url) as gradebook:
        try:
            submission = gradebook.find_submission(assignment, student)
        except MissingEntry:
            return None
        return {grade.name: {"auto_score": grade.auto_score, "manual_score": grade.manual_score,
                             "max_score": grade.max_score, "needs_manual_grade": grade.needs_manual_grade,
                             "code": grade.cell_type == "code"}
                for notebook in submission.notebooks for grade in notebook.grades}


def set_scores(url, student, assignment, scores):
    """Write ``scores`` ``{grade_id: (auto_score, needs_manual_grade)}`` into the student's
    submitted notebook(s) of ``assignment``."""
    with opened(url) as gradebook:
        submission = gradebook.find_submission(assignment, student)
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                if grade.name in scores:
                    grade.auto_score, grade.needs_manual_grade = scores[grade.name]
        gradebook.db.commit()


def restore(url, records):
    """Compare the gradebook with the pipeline's records (``{(student, assignment): {grade_id:
    auto_score}}``); write back every auto score that differs and remove submissions the
    pipeline did not grade. Returns the differences found, as sentences."""
    found = []
    with opened(url) as gradebook:
        for assignment in gradebook.assignments:
            for submission in list(assignment.submissions):
                key = (submission.student.id, assignment.name)
                if key not in records:
                    found.append(f"{key[0]}/{key[1]}: a submission the pipeline did not grade was removed")
                    gradebook.remove_submission(assignment.name, submission.student.id)
                    continue
                expected = records[key]
                for notebook in submission.notebooks:
                    for grade in notebook.grades:
                        if grade.name in expected and grade.auto_score != expected[grade.name]:
                            found.append(f"{key[0]}/{key[1]}: {grade.name} was {grade.auto_score}, "
                                         f"restored to {expected[grade.name]}")
                            grade.auto_score = expected[grade.name]
        gradebook.db.commit()
    return found
