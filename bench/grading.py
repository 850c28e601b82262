"""Benchmark: grading cost per notebook, and the speed-up of more Dask workers, in one run.

Every student submits every notebook answered with the solutions and the trained models
of notebooks 3 and 5; the whole pipeline runs (plan, sandboxed autograde, trusted scoring,
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

MODELS = {"03_training": COURSE_ROOT / "tests" / "fixtures" / "dgcnn_textbook.keras",
          "05_sources": COURSE_ROOT / "tests" / "fixtures" / "members_cpu.keras"}


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
                submit(subs, f"student{i:03d}", assignment, nb, model=MODELS.get(assignment))
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
            for assignment in args.assignments:
                timings = [r["timings"] for r in graded if r["assignment"] == assignment and r["timings"]]
                phases = sorted({phase for t in timings for phase in t})
                print(f"  {assignment}: " + ", ".join(
                    f"{phase} {sum(t.get(phase, 0) for t in timings) / len(timings):.1f} s" for phase in phases))
    base_workers, base_seconds = results[0]
    print(f"\n{os.cpu_count()} CPU cores; speed-up against {base_workers} worker(s), same class, same run:")
    for workers, seconds in results:
        print(f"  {workers} worker(s): {base_seconds / seconds:.2f}x")


if __name__ == "__main__":
    main()
