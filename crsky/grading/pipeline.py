"""Grade a class in one command: release, collect, autograde, feedback, grades, summary.

    python -m crsky.grading SUBMISSIONS [--results DIR] [--seed-file FILE] [--timeout S]

SUBMISSIONS holds one entry per student: a folder ``<student>/<assignment>/<assignment>.ipynb``
(nbgrader's ``submitted`` layout, any other files beside the notebook, e.g. the trained
model ``dgcnn.keras``) or a zip ``<student>.zip`` with the same ``<assignment>/`` folders
inside. Nothing in SUBMISSIONS is modified: every file is copied into a fresh course
folder (``--workdir``) first.

The hidden test set: the autograder's kernel gets ``CRSKY_GRADING_SEED`` from
``--seed-file`` (a file outside the repository holding an integer) or from the
environment; students never see it. Training cells are skipped under autograde; the
model a student saved is what is graded.

Writes to ``--results``: ``grades.csv`` (one row per student and assignment, every
student included), ``nbgrader_grades.csv`` (nbgrader's own export), ``feedback/`` (HTML
per student), and prints a summary: points, failed tests and errors per student.
"""

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from crsky.course import ASSIGNMENTS, COURSE_ROOT

HERE = COURSE_ROOT / "grading"  # the nbgrader course configuration; nbgrader runs from here
STUDENT_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
SANDBOX_KERNEL = "crsky-sandbox"


class Report:
    """What happened to each student's submission, beyond what nbgrader records."""

    def __init__(self):
        self.errors = {}  # (student, assignment) -> [message]

    def error(self, student, assignment, message):
        self.errors.setdefault((student, assignment), []).append(message)


# ------------------------------------------------------------------ helpers
def nbgrader(args, workdir, env, timeout_s, kernel, log):
    """Run one nbgrader command with the course config and this run's folders."""
    command = [
        sys.executable, "-m", "nbgrader", *args,
        f"--CourseDirectory.submitted_directory={workdir / 'submitted'}",
        f"--CourseDirectory.autograded_directory={workdir / 'autograded'}",
        f"--CourseDirectory.feedback_directory={workdir / 'feedback'}",
        f"--CourseDirectory.release_directory={workdir / 'release'}",
        f"--CourseDirectory.db_url=sqlite:///{workdir / 'gradebook.db'}",
        f"--Exchange.root={workdir / 'exchange'}",
        f"--Execute.timeout={timeout_s}",
        f"--ExecutePreprocessor.kernel_name={kernel}",
    ]
    if kernel == SANDBOX_KERNEL:
        # The sandbox has no network namespace of its own to share with the grader: the
        # kernel talks over Unix sockets (files) instead of TCP on localhost.
        command += ["--KernelManager.transport=ipc", f"--KernelManager.ip={workdir / 'jupyter' / 'kernel'}"]
    run = subprocess.run(command, cwd=HERE, env=env, capture_output=True, text=True)
    log.write(f"$ nbgrader {' '.join(args)}  (exit {run.returncode})\n{run.stdout}{run.stderr}\n")
    return run


def jupyter_env(workdir, seed):
    """Environment of the nbgrader commands: Jupyter's folders inside the run, the hidden seed."""
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(workdir / "jupyter" / "config"),
        JUPYTER_DATA_DIR=str(workdir / "jupyter" / "data"),
        JUPYTER_RUNTIME_DIR=str(workdir / "jupyter" / "runtime"),
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONWARNINGS="ignore",
        # nbgrader runs `alembic` (its database migrations) from PATH: this Python's own
        # scripts first, also when a virtual environment's python is called unactivated.
        PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
    )
    env.pop("CRSKY_SIZE", None)
    if seed is not None:
        env["CRSKY_GRADING_SEED"] = str(seed)
    return env


def install_sandbox_kernel(env):
    """A kernelspec whose kernel has no network and limited memory, processes and file sizes.

    Returns the kernel name, or None where the sandbox cannot run here (no ``unshare``,
    no permission for a network namespace): then the plain python3 kernel is used.
    """
    wrapper = HERE / "sandbox_kernel.sh"
    probe = subprocess.run(["bash", str(wrapper), "--probe"], capture_output=True, text=True)
    if probe.returncode != 0:
        return None
    spec = Path(env["JUPYTER_DATA_DIR"]) / "kernels" / SANDBOX_KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": ["bash", str(wrapper), sys.executable, "{connection_file}"],
        "display_name": "Python 3 (grading sandbox)", "language": "python",
    }))
    return SANDBOX_KERNEL


def read_seed(seed_file):
    if seed_file:
        text = Path(seed_file).read_text().strip()
        if not text.isdigit():
            raise SystemExit(f"error: the seed file {seed_file} must hold one non-negative integer, got {text[:40]!r}")
        return int(text)
    value = os.environ.get("CRSKY_GRADING_SEED")
    return int(value) if value else None


# --------------------------------------------------------------- collecting
def collect(submissions, workdir, report):
    """Copy every student's submission into ``workdir/submitted``; returns the student ids."""
    target = workdir / "submitted"
    students = []
    for entry in sorted(Path(submissions).iterdir()):
        student = entry.name[:-4] if entry.suffix == ".zip" else entry.name
        if entry.name.startswith("."):
            continue
        if not STUDENT_ID.match(student):
            print(f"skipping {entry.name}: a student id may hold letters, digits, '.', '_' and '-' only")
            continue
        destination = target / student
        if entry.is_dir():
            shutil.copytree(entry, destination, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        elif entry.suffix == ".zip":
            try:
                extract_zip(entry, destination)
            except (zipfile.BadZipFile, ValueError) as error:
                destination.mkdir(parents=True, exist_ok=True)
                for assignment in ASSIGNMENTS:
                    report.error(student, assignment, f"the zip file cannot be read: {error}")
        else:
            continue
        students.append(student)
        for assignment in ASSIGNMENTS:
            check_notebook(destination / assignment / f"{assignment}.ipynb", student, assignment, report)
    return students


def extract_zip(path, destination):
    """Extract a student's zip, refusing paths that leave the destination. A top folder named
    after the student (or any single top folder holding assignment folders) is unwrapped."""
    destination.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            target = (destination / member.filename).resolve()
            if not str(target).startswith(str(destination.resolve()) + os.sep) and target != destination.resolve():
                raise ValueError(f"unsafe path in zip: {member.filename}")
        archive.extractall(destination)
    tops = [p for p in destination.iterdir() if not p.name.startswith("__MACOSX")]
    if len(tops) == 1 and tops[0].is_dir() and tops[0].name not in ASSIGNMENTS:
        inner = tops[0]
        for child in inner.iterdir():
            shutil.move(str(child), destination / child.name)
        inner.rmdir()


def check_notebook(path, student, assignment, report):
    """A submitted notebook that is not a valid notebook is set aside (nbgrader would stop
    on it) and reported; the student scores 0 for that assignment."""
    if not path.exists():
        if path.parent.exists():
            report.error(student, assignment, f"no {path.name} in the submitted {assignment}/ folder")
        return
    import nbformat

    try:
        nbformat.validate(nbformat.read(path, as_version=4))
    except Exception as error:  # JSON or schema errors
        report.error(student, assignment, f"{path.name} is not a valid notebook ({type(error).__name__}: "
                                          f"{str(error).splitlines()[0][:200]})")
        path.rename(path.with_suffix(".ipynb.invalid"))


# ------------------------------------------------------------------ results
def gather(workdir, students, report):
    """Per student and assignment: score, max score, failed tests, errors, manual grading."""
    from nbgrader.api import Gradebook, MissingEntry

    rows = []
    with Gradebook(f"sqlite:///{workdir / 'gradebook.db'}") as gradebook:
        for student in students:
            for assignment in ASSIGNMENTS:
                row = {"student": student, "assignment": assignment, "score": 0.0,
                       "max_score": gradebook.find_assignment(assignment).max_score,
                       "failed_tests": [], "needs_manual_grade": [], "errors": list(report.errors.get((student, assignment), []))}
                submitted = workdir / "submitted" / student / assignment
                try:
                    submission = gradebook.find_submission(assignment, student)
                except MissingEntry:
                    if submitted.exists() and not row["errors"]:
                        row["errors"].append("autograding failed (see grading.log)")
                    elif not submitted.exists():
                        row["errors"].append("not submitted")
                    rows.append(row)
                    continue
                row["score"] = float(submission.score)
                for notebook in submission.notebooks:
                    for grade in notebook.grades:
                        if grade.auto_score is not None and grade.max_score and grade.auto_score < grade.max_score:
                            row["failed_tests"].append(f"{grade.name} ({grade.auto_score:g}/{grade.max_score:g})")
                        if grade.needs_manual_grade:
                            row["needs_manual_grade"].append(grade.name)
                rows.append(row)
    return rows


def write_csv(rows, path):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "assignment", "score", "max_score", "failed_tests", "needs_manual_grade", "errors"])
        for r in rows:
            writer.writerow([r["student"], r["assignment"], f"{r['score']:g}", f"{r['max_score']:g}",
                             "; ".join(r["failed_tests"]), "; ".join(r["needs_manual_grade"]), "; ".join(r["errors"])])


def print_summary(rows, seconds, n_students):
    print(f"\n{'student':20s} {'points':>13s}  failed tests / errors")
    by_student = {}
    for r in rows:
        by_student.setdefault(r["student"], []).append(r)
    for student, items in by_student.items():
        score, total = sum(r["score"] for r in items), sum(r["max_score"] for r in items)
        problems = [f"{r['assignment']}: {t}" for r in items for t in r["failed_tests"]]
        problems += [f"{r['assignment']}: ERROR {e}" for r in items for e in r["errors"]]
        print(f"{student:20s} {score:6.2f} / {total:5.1f}  {'; '.join(problems) if problems else 'all passed'}")
    manual = sorted({f"{r['assignment']}/{g}" for r in rows for g in r["needs_manual_grade"]})
    if manual:
        print(f"manual grading needed (formgrader): {', '.join(manual)}")
    print(f"\ngraded {n_students} students in {seconds:.0f} s ({seconds / max(1, n_students):.1f} s per student)")


# --------------------------------------------------------------------- main
def grade(submissions, results, workdir=None, seed=None, timeout_s=120, sandbox=True, quiet=False):
    """Run the whole pipeline; returns the rows written to ``results/grades.csv``."""
    start = time.perf_counter()
    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    workdir = Path(workdir or tempfile.mkdtemp(prefix="crsky-grading-"))
    if workdir.exists() and any(workdir.iterdir()):
        raise SystemExit(f"error: the work folder {workdir} is not empty; give an empty or new one")
    workdir.mkdir(parents=True, exist_ok=True)
    env = jupyter_env(workdir, seed)
    report = Report()
    kernel = (install_sandbox_kernel(env) if sandbox else None) or "python3"
    say = (lambda *a: None) if quiet else print
    say(f"course folder {workdir}; kernel {kernel}; per-cell timeout {timeout_s} s; "
        f"hidden test seed {'set' if seed is not None else 'NOT set (public seed)'}")
    with open(results / "grading.log", "w") as log:
        for assignment in ASSIGNMENTS:
            run = nbgrader(["generate_assignment", assignment, "--force"], workdir, env, timeout_s, kernel, log)
            if run.returncode:
                raise SystemExit(f"error: nbgrader generate_assignment {assignment} failed; see {results / 'grading.log'}")
        students = collect(submissions, workdir, report)
        say(f"collected {len(students)} students from {submissions}")
        for assignment in ASSIGNMENTS:
            say(f"autograding {assignment} ...")
            nbgrader(["autograde", assignment, "--force"], workdir, env, timeout_s, kernel, log)
            nbgrader(["generate_feedback", assignment, "--force"], workdir, env, timeout_s, kernel, log)
        nbgrader(["export", f"--to={results / 'nbgrader_grades.csv'}"], workdir, env, timeout_s, kernel, log)
    rows = gather(workdir, students, report)
    write_csv(rows, results / "grades.csv")
    if (workdir / "feedback").exists():
        shutil.copytree(workdir / "feedback", results / "feedback", dirs_exist_ok=True)
    if not quiet:
        print_summary(rows, time.perf_counter() - start, len(students))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submissions", help="folder with <student>/ folders or <student>.zip files")
    parser.add_argument("--results", default="grading/results", help="where grades and feedback go")
    parser.add_argument("--workdir", default=None, help="an empty folder for nbgrader's course files (default: a new temporary folder)")
    parser.add_argument("--seed-file", default=None, help="file with the hidden test set's seed (keep it outside the repository)")
    parser.add_argument("--timeout", type=int, default=120, help="seconds per notebook cell (default 120)")
    parser.add_argument("--no-sandbox", action="store_true", help="run the plain python3 kernel (network, no limits)")
    args = parser.parse_args(argv)
    if not Path(args.submissions).is_dir():
        raise SystemExit(f"error: {args.submissions} is not a folder of submissions")
    grade(args.submissions, args.results, args.workdir, read_seed(args.seed_file), args.timeout, not args.no_sandbox)


if __name__ == "__main__":
    main()
