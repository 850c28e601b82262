"""The record one grading task returns (one student's notebook), shared by the pipeline and the cluster."""


def empty_record(student, assignment):
    """A record with nothing graded yet: scores by test, points, failed tests, tests whose points
    are withheld for review (with the review's findings), errors, notes, and what the grader
    measured of a saved model: held-out ``accuracy`` (notebook 3) or ``purity`` (notebook 5)."""
    return {"student": student, "assignment": assignment, "scores": {}, "max_score": 0.0, "score": 0.0,
            "failed_tests": [], "withheld": [], "needs_manual_grade": [], "review": [], "errors": [], "notes": [],
            "accuracy": None, "purity": None, "autograded": None, "feedback": None, "graded": False, "timings": {}}
