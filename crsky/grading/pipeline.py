"""The instructors' grading pipeline, in three steps, each submission a task of its own.

    python -m crsky.grading SUBMISSIONS [--results DIR] [--seed-file FILE] [--workers N]
    python -m crsky.grading SUBMISSIONS --cluster tcp://HOST:8786 --gradebook postgresql://...

1. **plan** (:func:`plan`, once): nbgrader ``generate_assignment`` builds the release and
   the gradebook; the submissions are collected safely (:mod:`crsky.grading.collect`) into a
   staging folder, their notebook metadata repaired (:mod:`crsky.grading.repair`); the
   hidden held-out maps are simulated from the seed file, which stays with this process.
2. **grade one** (:func:`grade_one`, one task per student and assignment, on Dask workers):
   a scratch course folder holding only that submission, then nbgrader's own ``autograde
   --student`` with the course's steps (grading/nbgrader_config.py,
   :mod:`crsky.grading.nbgrader_steps`): the answers and the instructor's tests in the
   protected test run (:mod:`crsky.grading.runner`) inside a bubblewrap sandbox
   (:mod:`crsky.grading.sandbox`), the saved model scored by a separate sandboxed process
   (:mod:`crsky.grading.scoring`), tampering held for review; the points into the gradebook;
   feedback as sanitised HTML (:mod:`crsky.grading.feedback`). The formgrader's *Autograde*
   button and ``nbgrader autograde`` run the same steps. A task is
   idempotent (a retry starts from scratch) and bounded in time; whatever goes wrong with
   one submission costs that student only, with the reason in ``grades.csv``.
3. **gather** (:func:`gather`): ``grades.csv`` from the tasks' records (the gradebook is
   checked against them: any score that got there another way is undone), nbgrader's own
   export, the feedback, a summary; the original submissions are verified unchanged.

SUBMISSIONS holds one entry per student: a folder ``<student>/<assignment>/<assignment>.ipynb``
(files beside the notebook, e.g. the trained model ``dgcnn.keras``, are submitted too) or a
zip ``<student>.zip`` with the same ``<assignment>/`` folders inside. Nothing in SUBMISSIONS
is ever modified.
"""

import argparse
import csv
import dataclasses
import io
import shutil
import socket
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Optional

import nbformat
import numpy as np

from crsky import experiment, limits, scoring
from crsky.course import ASSIGNMENTS, COURSE_ROOT
from crsky.grading import collect as collecting
from crsky.grading import answers, feedback, gradebook, nbgrader_steps, records, repair, sandbox
from crsky.grading.nbgrader_cli import failure_reason, generate_feedback, nbgrader, nbgrader_env, retryable


class GradingError(RuntimeError):
    """The pipeline cannot run as asked (the message says why and what to do)."""


class RetryableError(RuntimeError):
    """A task failed for a reason that is not the submission's (e.g. a busy database): Dask retries it."""


# ------------------------------------------------------------------ the plan
@dataclasses.dataclass
class Context:
    """What every task needs, the same for all (sent once to each worker)."""

    course_root: str                 # the course checkout that planned (each worker uses its own copy)
    course_digest: str               # of solutions/ and the nbgrader configuration: same course everywhere
    gradebook_url: str
    cell_timeout_s: int
    task_timeout_s: int
    sandboxed: bool
    releases: dict                   # assignment -> released notebook (JSON text)
    sources: dict                    # assignment -> instructor notebook (JSON text)
    trusted_tests: dict              # assignment -> {"grade_id", "model", "task", "points"}
    held_out_maps: bytes             # .npy (n, 500, 4), or b"" when no assignment needs them
    held_out_labels: list            # n labels (the scoring process never sees them)
    full_marks_at: float             # accuracy that earns all of a model's points
    baseline_accuracy: float         # the pair-count baseline's accuracy on the held-out maps
    held_out_source_id: bytes = b""  # .npy (n, 500): the truth per cosmic ray (notebook 5's scoring)
    member_baseline_scores: bytes = b""  # .npy (m, 500): the classical member baseline on the m maps with sources


@dataclasses.dataclass(frozen=True)
class Options:
    """How a batch is graded (:func:`grade`; the command line's options)."""

    seed: Optional[int] = None       # the hidden held-out seed (:func:`read_seed`); None: the public one
    cell_timeout_s: int = limits.CELL_TIMEOUT_S
    task_timeout_s: int = limits.TASK_TIMEOUT_S
    sandboxed: bool = True           # False only for trusted work (--unsafe-no-sandbox)
    workers: Optional[int] = None    # local Dask workers (default: the CPU cores)
    cluster: Optional[str] = None    # a running Dask scheduler's address, tcp://HOST:8786
    gradebook_url: Optional[str] = None  # default: SQLite in the work folder
    quiet: bool = False              # no progress bar, no summary
    retries: int = 2                 # Dask's retries of a task whose worker was lost
    held_out_maps: int = experiment.HELD_OUT_MAPS  # hidden maps that score a saved model


@dataclasses.dataclass
class Task:
    student: str
    assignment: str
    payload: bytes                   # zip of the staged <assignment>/ folder
    notes: list                      # from collecting and repairing
    problems: list                   # reported, not fatal


def course_digest(course_root):
    """A digest of what decides grades: the instructor notebooks and nbgrader's configuration."""
    import hashlib

    digest = hashlib.sha256()
    root = Path(course_root)
    for path in sorted([*(root / "solutions").rglob("*.ipynb"), root / "grading" / "nbgrader_config.py"]):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def trusted_tests(source_notebooks):
    """Test cells scored outside the student's code (:func:`crsky.grading.answers.scored_by_grader`):
    ``{assignment: {"grade_id", "model", "task", "points"}}``."""
    found = {}
    for assignment, nb in source_notebooks.items():
        points = {answers.nbgrader_meta(c).get("grade_id"): float(answers.nbgrader_meta(c).get("points") or 0)
                  for c in nb.cells}
        for grade_id, spec in answers.scored_by_grader(nb).items():
            found[assignment] = {"grade_id": grade_id, "model": spec["model"], "task": spec.get("task", "maps"),
                                 "points": points[grade_id]}
    return found


def read_seed(seed_file):
    """The hidden seed from ``seed_file``, or None without a file. The file is refused (with
    the fix) unless it is private, outside the checkout and every folder a sandbox mounts, and
    holds a seed written nowhere in the repository (:func:`crsky.grading.seed.read_seed_file`)."""
    if not seed_file:
        return None
    from crsky.grading import seed as seeds

    try:
        return seeds.read_seed_file(seed_file, forbidden_folders=seeds.mounted_folders())
    except seeds.SeedError as error:
        raise GradingError(str(error)) from None


def plan(submissions, workdir, gradebook_url, options=Options(), log=print):
    """Step 1. Returns ``(context, tasks, students, problems)``: ``students`` every student id
    seen, ``problems`` ``{(student, assignment): [message]}`` for what was rejected."""
    workdir = Path(workdir)
    course = workdir / "course"
    for folder in ("source", "release"):
        (course / folder).mkdir(parents=True, exist_ok=True)
    for assignment in ASSIGNMENTS:
        shutil.copytree(COURSE_ROOT / "solutions" / assignment, course / "source" / assignment, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.keras", ".ipynb_checkpoints"))
    env = nbgrader_env(workdir / "driver")
    with open(workdir / "plan.log", "w") as plan_log:
        for assignment in ASSIGNMENTS:
            run = nbgrader(["generate_assignment", assignment, "--force"], course, gradebook_url, env, 600)
            plan_log.write(f"$ nbgrader generate_assignment {assignment} (exit {run.returncode})\n{run.stdout}\n")
            if run.returncode:
                raise GradingError(f"nbgrader generate_assignment {assignment} failed; see {workdir / 'plan.log'}")
    releases = {a: (course / "release" / a / f"{a}.ipynb").read_text() for a in ASSIGNMENTS}
    sources = {a: (course / "source" / a / f"{a}.ipynb").read_text() for a in ASSIGNMENTS}
    trusted = trusted_tests({a: nbformat.reads(text, as_version=4) for a, text in sources.items()})

    staged = collecting.collect(Path(submissions), workdir / "staged", ASSIGNMENTS)
    tasks, problems, students = [], {}, []
    for submission in staged:
        students.append(submission.student)
        for key, messages in submission.problems.items():
            for assignment in (ASSIGNMENTS if key == "*" else [key]):
                problems.setdefault((submission.student, assignment), []).extend(messages)
        for assignment in submission.assignments:
            folder = submission.folder / assignment
            path = folder / f"{assignment}.ipynb"
            result = repair.repair(nbformat.read(path, as_version=4), nbformat.reads(releases[assignment], as_version=4))
            nbformat.write(result.notebook, path)
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for file in sorted(folder.rglob("*")):
                    if file.is_file():
                        archive.write(file, file.relative_to(folder))
            tasks.append(Task(submission.student, assignment, buffer.getvalue(), list(result.notes),
                              list(result.errors) + problems.get((submission.student, assignment), [])))

    maps, labels, source_id, member_scores, baseline = b"", [], b"", b"", 0.0
    scored = {task.assignment for task in tasks} & set(trusted)  # only what this batch's notebooks need
    if scored:
        if options.seed is None:
            log("warning: no seed file: the held-out maps use the PUBLIC seed, which students can reproduce")
        from crsky.simulate import held_out_simulation

        sim = held_out_simulation(n_maps=options.held_out_maps, seed=options.seed)
        x, y = sim["data"], sim["label"]
        maps, labels, source_id = _npy(x), [int(v) for v in y], _npy(np.asarray(sim["source_id"]))
        baseline = scoring.baseline_accuracy(x, y)
        log(f"held-out maps: {len(y)}; the pair-count baseline's accuracy on them: {baseline:.3f}")
        if any(trusted[assignment].get("task") == "members" for assignment in scored):
            from crsky.baseline import member_baseline_scores
            from crsky.members import public_member_baseline

            # Once per run, not once per notebook: the classical member baseline on the maps with sources.
            member_scores = _npy(member_baseline_scores(public_member_baseline(), x[np.asarray(y) == 1]))
    context = Context(
        course_root=str(COURSE_ROOT), course_digest=course_digest(COURSE_ROOT), gradebook_url=gradebook_url,
        cell_timeout_s=options.cell_timeout_s, task_timeout_s=options.task_timeout_s, sandboxed=options.sandboxed,
        releases=releases,
        sources=sources, trusted_tests=trusted, held_out_maps=maps, held_out_labels=labels,
        full_marks_at=scoring.full_marks_accuracy(baseline), baseline_accuracy=baseline,
        held_out_source_id=source_id, member_baseline_scores=member_scores,
    )
    return context, tasks, sorted(set(students)), problems


def _npy(array):
    """``array`` as the bytes of an .npy file (no pickles)."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


# ------------------------------------------------------------- grading one
def grade_one(task, context, scratch_root=None):
    """Step 2 for one submission: returns its :class:`~crsky.grading.records.Record`.

    Never raises for anything the submission does; raises :class:`RetryableError` when the
    infrastructure failed (then Dask runs the task again, from scratch)."""
    start = time.monotonic()
    if course_digest(COURSE_ROOT) != context.course_digest:
        raise RetryableError(f"this worker ({socket.gethostname()}) has another version of the course at "
                             f"{COURSE_ROOT}: install the same version on every worker")
    record = records.empty_record(task.student, task.assignment)
    record["notes"] = list(task.notes)
    record["errors"] = list(task.problems)
    folder = Path(tempfile.mkdtemp(prefix="crg-", dir=scratch_root))
    try:
        _grade_in(folder, task, context, record)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    record["seconds"] = round(time.monotonic() - start, 1)
    record["worker"] = socket.gethostname()
    return record


def _grade_in(folder, task, context, record):
    student, assignment = task.student, task.assignment
    course = folder / "course"
    submitted = course / "submitted" / student / assignment
    submitted.mkdir(parents=True)
    with zipfile.ZipFile(io.BytesIO(task.payload)) as archive:
        archive.extractall(submitted)
    (course / "source" / assignment).mkdir(parents=True)
    (course / "source" / assignment / f"{assignment}.ipynb").write_text(context.sources[assignment])

    # nbgrader's own autograde, with the course's steps (grading/nbgrader_config.py): the protected
    # test run in the sandbox, the saved model scored on this plan's held-out maps (a file no
    # sandbox mounts), the notebooks that tampered flagged for review.
    options = [f"--ProtectedExecute.timeout={context.cell_timeout_s}",
               f"--ProtectedExecute.task_timeout={context.task_timeout_s}",
               f"--ProtectedExecute.sandboxed={context.sandboxed}", f"--ScoreSavedModel.sandboxed={context.sandboxed}",
               "--ScoreSavedModel.seed_file="]
    limit = context.task_timeout_s + 120  # nbgrader's own start-up and bookkeeping
    if context.trusted_tests.get(assignment):
        held_out = folder / "held-out.npz"
        np.savez(held_out, maps=np.load(io.BytesIO(context.held_out_maps), allow_pickle=False),
                 labels=np.asarray(context.held_out_labels), baseline=np.float64(context.baseline_accuracy),
                 source_id=np.load(io.BytesIO(context.held_out_source_id), allow_pickle=False),
                 **({"member_baseline_scores": np.load(io.BytesIO(context.member_baseline_scores), allow_pickle=False)}
                    if context.member_baseline_scores else {}))
        options.append(f"--ScoreSavedModel.held_out_file={held_out}")
        limit += limits.SCORING_TIMEOUT_S
    env = nbgrader_env(folder)
    try:
        began = time.monotonic()
        run = nbgrader(["autograde", assignment, "--student", student, "--force", *options], course,
                       context.gradebook_url, env, limit, context.cell_timeout_s)
        record["timings"]["autograde"] = round(time.monotonic() - began, 1)
        log_text = run.stdout
    except subprocess.TimeoutExpired:
        run, log_text = None, ""
        record["errors"].append(f"grading this notebook took longer than {limit} s: stopped")
    if run is not None and retryable(log_text):
        raise RetryableError(f"nbgrader autograde {assignment} --student {student}: {log_text[-500:]}")
    autograded_path = course / "autograded" / student / assignment / f"{assignment}.ipynb"
    if run is not None and (run.returncode != 0 or not autograded_path.is_file()):
        record["errors"].append(failure_reason(log_text, context.cell_timeout_s))
    grades = gradebook.test_cell_grades(context.gradebook_url, student, assignment)
    if grades is None:
        return
    autograded = nbformat.read(autograded_path, as_version=4) if autograded_path.is_file() else None
    if autograded is None:
        # Nothing was graded: every test scores 0 and waits for a person, with the reason above.
        gradebook.set_scores(context.gradebook_url, student, assignment,
                             {name: (0.0, True) for name, g in grades.items() if g["code"]})
    else:
        verdict = autograded.metadata.get(nbgrader_steps.REVIEW_KEY) or {}
        record["review"] += list(verdict.get("review") or [])
        record["withheld"] = list(verdict.get("withheld") or [])
        if verdict.get("problem"):  # the protected run stopped early: its tests did not run
            record["errors"].append(f"the notebook's tests did not all run: {verdict['problem']}")
        for measured in (verdict.get("scored") or {}).values():
            for name in ("accuracy", "purity"):
                if measured.get(name) is not None:
                    record[name] = round(float(measured[name]), 4)
        feedback.sanitize_notebook(autograded)  # no script, style or raw HTML from outputs reaches a page
        nbformat.write(autograded, autograded_path)
        record["autograded"] = autograded_path.read_bytes()
        try:
            began = time.monotonic()
            generate_feedback(course, context.gradebook_url, assignment, student)
            record["timings"]["feedback"] = round(time.monotonic() - began, 1)
            page = course / "feedback" / student / assignment / f"{assignment}.html"
            if page.is_file():
                record["feedback"] = page.read_bytes()
            else:
                record["errors"].append("the feedback page could not be generated")
        except Exception as error:  # nbconvert on a sanitised notebook: no student code runs here
            record["errors"].append(f"the feedback page could not be generated ({type(error).__name__}: "
                                    f"{str(error)[:200]})")
    grades = gradebook.test_cell_grades(context.gradebook_url, student, assignment)
    withheld = set(record.get("withheld") or [])
    record["graded"] = autograded is not None
    record["scores"] = {name: g["auto_score"] for name, g in grades.items()}
    record["max_score"] = float(sum(g["max_score"] or 0 for g in grades.values()))
    record["score"] = float(sum((g["manual_score"] if g["manual_score"] is not None else g["auto_score"]) or 0
                                for g in grades.values()))
    record["failed_tests"] = [f"{name} ({g['auto_score'] or 0:g}/{g['max_score']:g})" for name, g in grades.items()
                              if g["code"] and g["max_score"] and (g["auto_score"] or 0) < g["max_score"]
                              and name not in withheld]
    record["needs_manual_grade"] = [name for name, g in grades.items() if g["needs_manual_grade"]]


# ------------------------------------------------------------------ gather
def write_csv(rows, path):
    columns = ["student", "assignment", "score", "max_score", "failed_tests", "withheld", "needs_manual_grade",
               "review", "errors", "notes", "accuracy", "purity"]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for r in rows:
            writer.writerow([r["student"], r["assignment"], f"{r['score']:g}", f"{r['max_score']:g}",
                             "; ".join(r["failed_tests"]), "; ".join(r.get("withheld") or []),
                             "; ".join(r["needs_manual_grade"]),
                             "; ".join(r["review"]), "; ".join(r["errors"]), "; ".join(r["notes"]),
                             *("" if r.get(name) is None else f"{r[name]:.4f}" for name in ("accuracy", "purity"))])


def gather(graded, students, problems, context, workdir, results, log=print):
    """Step 3: grades.csv (every student x assignment), feedback, nbgrader's export; returns the rows."""
    workdir, results = Path(workdir), Path(results)
    max_scores = {}
    with gradebook.opened(context.gradebook_url) as book:
        for assignment in ASSIGNMENTS:
            max_scores[assignment] = float(book.find_assignment(assignment).max_score)
    by_key = {(r["student"], r["assignment"]): r for r in graded}
    rows = []
    for student in students:
        for assignment in ASSIGNMENTS:
            record = by_key.get((student, assignment))
            if record is None:
                record = records.empty_record(student, assignment)
                record["errors"] = problems.get((student, assignment)) or ["not submitted"]
            record["max_score"] = max_scores[assignment]
            rows.append(record)
            for kind, data in (("autograded", record.get("autograded")), ("feedback", record.get("feedback"))):
                if data:
                    suffix = ".ipynb" if kind == "autograded" else ".html"
                    path = workdir / "course" / kind / student / assignment / f"{assignment}{suffix}"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
                    if kind == "feedback":
                        public = results / "feedback" / student / assignment / f"{assignment}.html"
                        public.parent.mkdir(parents=True, exist_ok=True)
                        public.write_bytes(data)
    differences = gradebook.restore(context.gradebook_url, {
        (r["student"], r["assignment"]): r["scores"] for r in graded if r["graded"] or r["scores"]})
    for line in differences:
        log(f"gradebook: {line}")
    write_csv(rows, results / "grades.csv")
    with open(results / "tasks.log", "w") as handle:
        for r in graded:
            parts = ", ".join(f"{k} {v:.1f} s" for k, v in r.get("timings", {}).items())
            handle.write(f"{r['student']} {r['assignment']}: {r.get('seconds', 0):.1f} s ({parts}) on {r.get('worker', '?')}"
                         f"{'' if r['graded'] else ' (not graded: ' + '; '.join(r['errors'])[:200] + ')'}\n")
    env = nbgrader_env(workdir / "driver")
    run = nbgrader(["export", f"--to={results / 'nbgrader_grades.csv'}"], workdir / "course", context.gradebook_url,
                   env, 600)
    if run.returncode:
        log(f"warning: nbgrader export failed: {run.stdout[-500:]}")
    return rows, differences


def print_summary(rows, seconds, n_tasks, differences, changed):
    print(f"\n{'student':20s} {'points':>13s}  failed tests / review / errors")
    by_student = {}
    for r in rows:
        by_student.setdefault(r["student"], []).append(r)
    for student, items in by_student.items():
        score, total = sum(r["score"] for r in items), sum(r["max_score"] for r in items)
        problems = [f"{r['assignment']}: {t}" for r in items for t in r["failed_tests"]]
        problems += [f"{r['assignment']}: WITHHELD {', '.join(r['withheld'])}" for r in items if r.get("withheld")]
        problems += [f"{r['assignment']}: REVIEW {t}" for r in items for t in r["review"][:2]]
        problems += [f"{r['assignment']}: ERROR {e}" for r in items for e in r["errors"] if e != "not submitted"]
        print(f"{student:20s} {score:6.2f} / {total:5.1f}  {'; '.join(problems)[:300] if problems else 'all passed'}")
    manual = sorted({f"{r['student']}: {r['assignment']}/{g}" for r in rows for g in r["needs_manual_grade"]})
    if manual:
        print(f"manual grading needed (formgrader): {', '.join(manual)}")
    flagged = sum(bool(r["review"]) for r in rows)
    if flagged:
        print(f"{flagged} notebook(s) flagged for manual review (column 'review' of grades.csv)")
    if differences:
        print(f"{len(differences)} gradebook entr(ies) did not match the pipeline's records and were restored")
    if changed:
        print("ORIGINAL SUBMISSIONS CHANGED DURING GRADING: " + "; ".join(changed[:10]))
    print(f"\ngraded {n_tasks} notebooks of {len(by_student)} students in {seconds:.0f} s "
          f"({seconds / max(1, n_tasks):.1f} s per notebook)")


# ---------------------------------------------------------------- the whole
def default_gradebook(workdir):
    return f"sqlite:///{Path(workdir).resolve() / 'gradebook.db'}"


def grade(submissions, results, workdir=None, options=None, **settings):
    """Run the three steps on a Dask cluster (an embedded local one unless ``options.cluster``
    is a scheduler address); returns the rows of ``results/grades.csv``. ``options``: an
    :class:`Options`; ``settings``: fields of it to change (``seed=..., workers=2``; fewer
    ``held_out_maps`` only to test the pipeline quickly)."""
    from crsky.grading import cluster as dask_cluster

    options = dataclasses.replace(options or Options(), **settings)
    seed, cell_timeout_s, sandboxed, quiet = options.seed, options.cell_timeout_s, options.sandboxed, options.quiet
    cluster, gradebook_url = options.cluster, options.gradebook_url
    start = time.perf_counter()
    say = (lambda *a: None) if quiet else print
    submissions, results = Path(submissions).resolve(), Path(results).resolve()
    if not submissions.is_dir():
        raise GradingError(f"{submissions} is not a folder of submissions")
    if cluster and not (gradebook_url or "").startswith("postgresql"):
        raise GradingError("a remote Dask cluster needs a gradebook every worker can reach: pass "
                           "--gradebook postgresql://USER@HOST/DB (SQLite is a file on one machine, and its "
                           "locking is unreliable on network file systems)")
    if sandboxed:
        ok, reason = sandbox.probe()
        if not ok:
            raise GradingError(f"cannot build the grading sandbox here: {reason}. Students' code would run with "
                               "your privileges. Install bubblewrap (apt-get install bubblewrap), or pass "
                               "--unsafe-no-sandbox to grade trusted work anyway.")
    else:
        say("WARNING: grading WITHOUT the sandbox: students' code runs with this user's privileges and can read "
            "and change anything this user can (other students' work, the gradebook, the seed).")
    workdir = Path(workdir or tempfile.mkdtemp(prefix="crsky-grading-")).resolve()
    if workdir.exists() and any(workdir.iterdir()):
        raise GradingError(f"the work folder {workdir} is not empty; give an empty or new one")
    workdir.mkdir(parents=True, exist_ok=True)
    results.mkdir(parents=True, exist_ok=True)
    gradebook_url = gradebook_url or default_gradebook(workdir)
    before = collecting.checksum_tree(submissions)
    say(f"course folder {workdir}; sandbox {'on' if sandboxed else 'OFF'}; per-cell timeout {cell_timeout_s} s; "
        f"hidden held-out seed {'set' if seed is not None else 'NOT set (public seed)'}")
    context, tasks, students, problems = plan(submissions, workdir, gradebook_url, options, log=say)
    say(f"collected {len(students)} students, {len(tasks)} notebooks to grade")
    graded = dask_cluster.run_tasks(grade_one, tasks, context, workers=options.workers, address=cluster,
                                    retries=options.retries, quiet=quiet)
    rows, differences = gather(graded, students, problems, context, workdir, results, log=say)
    changed = collecting.compare_checksums(before, collecting.checksum_tree(submissions))
    if not quiet:
        print_summary(rows, time.perf_counter() - start, len(tasks), differences, changed)
        if any(r["needs_manual_grade"] for r in rows):
            print(f"after grading by hand in the formgrader (course folder {workdir / 'course'}, gradebook "
                  f"{gradebook_url}): python -m crsky.grading.export --workdir {workdir} --results {results}"
                  + ("" if gradebook_url == default_gradebook(workdir) else f" --gradebook {gradebook_url}"))
    if changed:
        raise GradingError("original submissions changed during grading: " + "; ".join(changed[:10]))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m crsky.grading", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submissions", help="folder with <student>/ folders or <student>.zip files")
    parser.add_argument("--results", default="grading/results", help="where grades and feedback go")
    parser.add_argument("--workdir", default=None,
                        help="an empty folder for the course files and the gradebook (default: a new temporary folder)")
    parser.add_argument("--seed-file", default=None,
                        help="file with the hidden held-out seed, made once with `python -m crsky.grading.seed new` "
                             "(~/.config/crsky/heldout.seed, mode 0600, outside the checkout)")
    parser.add_argument("--timeout", type=int, default=limits.CELL_TIMEOUT_S,
                        help=f"seconds per notebook cell (default {limits.CELL_TIMEOUT_S})")
    parser.add_argument("--task-timeout", type=int, default=limits.TASK_TIMEOUT_S,
                        help=f"seconds per notebook in all (default {limits.TASK_TIMEOUT_S})")
    parser.add_argument("--workers", type=int, default=None, help="local Dask workers (default: the CPU cores)")
    parser.add_argument("--cluster", default=None, help="address of a running Dask scheduler, tcp://HOST:8786")
    parser.add_argument("--gradebook", default=None, help="database URL (default: SQLite in the work folder; "
                                                          "postgresql://... for a cluster)")
    parser.add_argument("--held-out-maps", type=int, default=experiment.HELD_OUT_MAPS,
                        help=f"hidden maps that score a saved model (default {experiment.HELD_OUT_MAPS})")
    parser.add_argument("--unsafe-no-sandbox", action="store_true",
                        help="run students' notebooks WITHOUT the sandbox (only for trusted work)")
    args = parser.parse_args(argv)
    try:
        options = Options(seed=read_seed(args.seed_file), cell_timeout_s=args.timeout, task_timeout_s=args.task_timeout,
                          sandboxed=not args.unsafe_no_sandbox, workers=args.workers, cluster=args.cluster,
                          gradebook_url=args.gradebook, held_out_maps=args.held_out_maps)
        grade(args.submissions, args.results, args.workdir, options)
    except GradingError as error:
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    main()
