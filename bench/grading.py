"""Benchmark: grading cost per notebook, and the speed-up of more Dask workers, in one run.

Every student submits all four notebooks answered with the solutions and a trained model
for notebook 3; the whole pipeline runs (plan, sandboxed autograde, trusted scoring,
feedback, gather) once per worker count, on the same class, with the sandbox on.

    python -m bench.grading --students 40 --workers 1 2
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

from crsky.course import ASSIGNMENTS, COURSE_ROOT
from crsky.grading import pipeline
from crsky.grading.samples import answered, submit

MODEL = COURSE_ROOT / "tests" / "fixtures" / "dgcnn_textbook.keras"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare")
    parser.add_argument("--assignments", nargs="+", choices=ASSIGNMENTS, default=list(ASSIGNMENTS))
    parser.add_argument("--unsafe-no-sandbox", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        subs = Path(tmp) / "submissions"
        notebooks = {a: answered(a) for a in args.assignments}
        for i in range(args.students):
            for assignment, nb in notebooks.items():
                submit(subs, f"student{i:03d}", assignment, nb, model=MODEL if assignment == "03_training" else None)
        n_notebooks = args.students * len(args.assignments)
        for workers in args.workers:
            start = time.perf_counter()
            rows = pipeline.grade(subs, Path(tmp) / f"results{workers}", Path(tmp) / f"work{workers}", seed=4242,
                                  workers=workers, sandboxed=not args.unsafe_no_sandbox, quiet=True)
            elapsed = time.perf_counter() - start
            graded = [r for r in rows if r["assignment"] in args.assignments]
            clean = sum(not r["failed_tests"] and not r["errors"] and not r["review"] for r in graded)
            results.append((workers, elapsed))
            print(f"{workers} worker(s): {args.students} students x {len(args.assignments)} notebooks in {elapsed:.0f} s "
                  f"= {elapsed / n_notebooks:.1f} s per notebook ({clean} of {len(graded)} passed every test)",
                  flush=True)
            for r in graded:
                if r["failed_tests"] or r["errors"] or r["review"]:
                    print(f"  {r['student']} {r['assignment']}: {r['failed_tests']} {r['errors']} {r['review']}")
    base_workers, base_seconds = results[0]
    print(f"\n{os.cpu_count()} CPU cores; speed-up against {base_workers} worker(s), same class, same run:")
    for workers, seconds in results:
        print(f"  {workers} worker(s): {base_seconds / seconds:.2f}x")


if __name__ == "__main__":
    main()
