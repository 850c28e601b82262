"""Benchmark: grading cost per submission for a generated class.

Every student submits all four notebooks answered with the solutions, and a trained
model for notebook 3; the whole pipeline runs (release, autograde, feedback, export).

    python -m bench.grading --students 30
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

from crsky.course import COURSE_ROOT
from crsky.grading import pipeline
from crsky.grading.samples import answered, submit

MODEL = COURSE_ROOT / "tests" / "fixtures" / "dgcnn_textbook.keras"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--no-sandbox", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subs = Path(tmp) / "submissions"
        notebooks = {a: answered(a) for a in pipeline.ASSIGNMENTS}
        for i in range(args.students):
            for assignment, nb in notebooks.items():
                submit(subs, f"student{i:03d}", assignment, nb, model=MODEL if assignment == "03_training" else None)
        start = time.perf_counter()
        rows = pipeline.grade(subs, Path(tmp) / "results", Path(tmp) / "work", seed=4242, timeout_s=120,
                              sandbox=not args.no_sandbox, quiet=True)
        elapsed = time.perf_counter() - start
    n_notebooks = args.students * len(pipeline.ASSIGNMENTS)
    clean = sum(not r["failed_tests"] and not r["errors"] for r in rows)
    manual = sum(bool(r["needs_manual_grade"]) for r in rows)
    print(f"graded {args.students} students x {len(pipeline.ASSIGNMENTS)} notebooks in {elapsed:.0f} s on "
          f"{os.cpu_count()} cores: {elapsed / args.students:.1f} s per student (all four notebooks), "
          f"{elapsed / n_notebooks:.1f} s per notebook; {clean} of {len(rows)} notebooks passed every test "
          f"({manual} await manual grading of the written answer)")
    for r in rows:
        if r["failed_tests"] or r["errors"]:
            print(f"  {r['student']} {r['assignment']}: failed {r['failed_tests']} {r['errors']}")


if __name__ == "__main__":
    main()
