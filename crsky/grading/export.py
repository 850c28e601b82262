"""Rebuild a run's grade tables after manual grading in the formgrader.

    python -m crsky.grading.export --workdir WORKDIR [--results grading/results] [--gradebook URL]

A run of ``python -m crsky.grading`` writes ``grades.csv`` and ``nbgrader_grades.csv`` from
the gradebook as it stood when the run ended. Scores an instructor gives afterwards in the
formgrader (notebook 4's written answer, the tests withheld for review) are in the gradebook
only; this command reads them back: every row's ``score`` and ``needs_manual_grade`` are
taken from the gradebook (a manual score overrides the autograder's), the other columns
(failed tests, review, errors, notes, accuracy) stay as the run wrote them, and nbgrader's
own export is written again. A row whose score changed is printed.
"""

import argparse
import csv
import os
import tempfile
from pathlib import Path

from crsky.grading import gradebook


def rebuild(results, gradebook_url, course_dir, log=print):
    """Rewrite ``results/grades.csv`` from the gradebook at ``gradebook_url`` and export
    ``results/nbgrader_grades.csv`` (nbgrader's course folder ``course_dir``). Returns the
    changes as ``[(student, assignment, old score, new score)]``."""
    from crsky.grading import nbgrader_cli

    results = Path(results)
    table = results / "grades.csv"
    if not table.is_file():
        raise FileNotFoundError(f"no grades.csv in {results}: give the --results folder of a grading run")
    with open(table, newline="") as handle:
        reader = csv.DictReader(handle)
        columns, rows = reader.fieldnames, list(reader)
    if not columns or not {"student", "assignment", "score", "needs_manual_grade"} <= set(columns):
        raise ValueError(f"{table} is not a grades.csv of the course's pipeline (columns: {columns})")
    changes = []
    for row in rows:
        grades = gradebook.test_cell_grades(gradebook_url, row["student"], row["assignment"])
        if grades is None:  # not submitted, or rejected: nothing in the gradebook
            continue
        score = sum((g["manual_score"] if g["manual_score"] is not None else g["auto_score"]) or 0
                    for g in grades.values())
        new = f"{score:g}"
        if new != row["score"]:
            changes.append((row["student"], row["assignment"], row["score"], new))
        row["score"] = new
        row["needs_manual_grade"] = "; ".join(name for name, g in grades.items() if g["needs_manual_grade"])
    handle, tmp = tempfile.mkstemp(prefix="grades.", suffix=".csv", dir=results)
    with os.fdopen(handle, "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, table)
    env = nbgrader_cli.nbgrader_env(Path(tempfile.mkdtemp(prefix="crsky-export-")))
    run = nbgrader_cli.nbgrader(["export", f"--to={results / 'nbgrader_grades.csv'}"], course_dir, gradebook_url, env, 600)
    if run.returncode:
        raise RuntimeError(f"nbgrader export failed: {run.stdout[-500:]}")
    for student, assignment, old, new in changes:
        log(f"{student} {assignment}: {old} -> {new}")
    log(f"{table}: {len(rows)} rows, {len(changes)} changed; {results / 'nbgrader_grades.csv'} exported again")
    return changes


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m crsky.grading.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", required=True, help="the --workdir of the grading run (its course/ and gradebook)")
    parser.add_argument("--results", default="grading/results", help="the --results of the run (default grading/results)")
    parser.add_argument("--gradebook", default=None,
                        help="the run's --gradebook URL (default: the SQLite gradebook in the work folder)")
    args = parser.parse_args(argv)
    from crsky.grading import pipeline

    workdir = Path(args.workdir).resolve()
    url = args.gradebook or pipeline.default_gradebook(workdir)
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file():
        raise SystemExit(f"error: no gradebook at {url[len('sqlite:///'):]}: give the --workdir of the grading run "
                         "(or its --gradebook URL)")
    try:
        rebuild(args.results, url, workdir / "course")
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    main()
