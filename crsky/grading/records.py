"""The record one grading task returns (one student's notebook), shared by the pipeline and
the cluster: a plain dict (it crosses to Dask workers and back, and becomes a row of
``grades.csv``) whose keys and types :class:`Record` names."""

from typing import Optional, TypedDict


class Record(TypedDict, total=False):
    """One student's notebook, as graded. Points are nbgrader's (floats)."""

    student: str
    assignment: str
    scores: dict                   # test cell grade_id -> automatic points
    max_score: float
    score: float                   # automatic points, or the manual ones where a person graded
    failed_tests: list             # "test_name (got/max)" of the tests that lost points
    withheld: list                 # grade_ids whose points wait for a person's review
    needs_manual_grade: list       # grade_ids nbgrader marks for manual grading
    review: list                   # why the notebook was flagged (what it tampered with)
    errors: list                   # what went wrong, in words: the student's row says why
    notes: list                    # what collecting and repairing changed
    accuracy: Optional[float]      # a saved map classifier's held-out accuracy (notebook 3)
    purity: Optional[float]        # a saved member model's held-out purity (notebook 5)
    autograded: Optional[bytes]    # the autograded notebook (JSON), sanitised
    feedback: Optional[bytes]      # the feedback page (HTML), sanitised
    graded: bool                   # nbgrader produced an autograded notebook
    timings: dict                  # step -> seconds ("autograde", "feedback")
    seconds: float                 # the whole task, wall time
    worker: str                    # the host that ran the task


def empty_record(student, assignment) -> Record:
    """A record with nothing graded yet (every key of :class:`Record` but ``seconds`` and ``worker``)."""
    return Record(student=student, assignment=assignment, scores={}, max_score=0.0, score=0.0, failed_tests=[],
                  withheld=[], needs_manual_grade=[], review=[], errors=[], notes=[], accuracy=None, purity=None,
                  autograded=None, feedback=None, graded=False, timings={})
