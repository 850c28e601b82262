"""``python -m crsky.grading SUBMISSIONS ...``: the instructors' grading pipeline."""

from crsky.grading.pipeline import main

if __name__ == "__main__":  # Dask's worker processes import this module again: no second run there
    main()
