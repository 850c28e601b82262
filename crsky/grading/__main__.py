"""``python -m crsky.grading SUBMISSIONS ...``: the instructors' grading pipeline."""

from crsky.grading.pipeline import main

main()
