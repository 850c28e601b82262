"""The instructors' grading, in one place:

    crsky.grading.pipeline   the instructors' pipeline: release, collect, autograde, feedback, grades
    crsky.grading.nbgrader_steps  the course's steps as nbgrader plug-ins (grading/nbgrader_config.py)
    crsky.grading.scoring    the trusted process that scores a submitted model on hidden maps
    crsky.grading.samples    sample submissions made from the course's notebooks (tests, benchmarks)
    crsky.grading.repair     a submission's nbgrader metadata matched to the release and put back

What students run lives beside it: the scoring rule (``crsky.scoring``), the self-check
(``crsky.selfcheck``), the hand-in (``crsky.submit``) and the Colab helpers (``crsky.colab``).
The instructors' command line is ``python -m crsky.grading`` (see grading/README.md).
"""
