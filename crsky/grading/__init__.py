"""Grading, in one place:

    crsky.grading.scoring    scoring a student's saved model on held-out sky maps
    crsky.grading.selfcheck  the students' self-check: run a notebook as the grader does
    crsky.grading.pipeline   the instructors' pipeline: release, collect, autograde, feedback, grades
    crsky.grading.samples    sample submissions made from the course's notebooks (tests, benchmarks)
    crsky.grading.repair     a submission's nbgrader metadata matched to the release and put back

The instructors' command line is ``python -m crsky.grading`` (see grading/README.md).
"""
