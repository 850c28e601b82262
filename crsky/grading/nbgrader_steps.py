"""The course's grading steps as nbgrader preprocessors (grading/nbgrader_config.py lists them).

So ``nbgrader autograde`` on the command line, the formgrader's *Autograde* button and the
course's pipeline (``python -m crsky.grading``) grade alike: the same steps, in the same
order, from the same configuration.

* :class:`ProtectedExecute` takes the place of nbgrader's ``Execute``: the notebook's
  answers and tests run in the protected test run (:mod:`crsky.grading.answers`,
  :mod:`crsky.grading.runner`) in a bubblewrap sandbox (:mod:`crsky.grading.sandbox`) that
  sees the Python environment and the course package only; each test cell's outputs are
  the run's verdict, from which nbgrader's ``SaveAutoGrades`` takes the points. A notebook
  whose code tampered with what the tests rely on has its test points withheld for review,
  with what it did and where, on top of its feedback page.
* :class:`ScoreSavedModel` scores the saved model of a test cell marked
  ``{"crsky": {"scored_by_grader": {"model": ..., "task": ...}}}`` in a separate sandboxed
  process that sees held-out maps but not their labels (a map classifier by its accuracy,
  a per-cosmic-ray model by its purity); the points go into the cell as nbgrader's
  partial credit. The maps come from the pipeline (``held_out_file``) or, for nbgrader's
  own commands, from the instructor's seed file (``seed_file``); with neither it refuses
  to score, and says how to configure it.
* :class:`FlagForReview`, after ``SaveAutoGrades``: withheld cells need a manual grade.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Integer, Unicode

from crsky import limits
from crsky.grading import answers, sandbox

REVIEW_KEY = "crsky"          # notebook metadata: {"crsky": {"review": [...], "withheld": [...]}}
NOT_RUN_NOTE = "(not run by the grader: no answer needs this cell)\n"
PENDING_KEY = "crsky_scoring"  # resources: the scorings StartScoring began, by grade_id, for ScoreSavedModel


def package_paths():
    """What a sandbox mounts of the course besides the Python installation: the package and the layer."""
    import crsky
    import edgeconv

    return [str(Path(crsky.__file__).resolve().parent), str(Path(edgeconv.__file__).resolve())]


def sandbox_config():
    """The grading sandbox: the Python installation (found by the sandbox) and the course
    package, read-only; never solutions/, tests/, grading/, .git or a seed file."""
    root = str(Path(package_paths()[1]).parent)
    return sandbox.Config(python=sys.executable, ro_paths=package_paths(), env={"PYTHONPATH": root})


def _source_notebook(config, resources):
    from nbgrader.coursedir import CourseDirectory

    info = resources["nbgrader"]
    coursedir = CourseDirectory(config=config)
    path = Path(coursedir.format_path(coursedir.source_directory, ".", info["assignment"])) / f"{info['notebook']}.ipynb"
    return nbformat.read(path, as_version=4)


def _stream(text, name="stdout"):
    return nbformat.v4.new_output("stream", name=name, text=text)


def _error(ename, evalue):
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class ProtectedExecute(NbGraderPreprocessor):
    """Run the answers and the instructor's tests in the protected test run; write the verdicts."""

    timeout = Integer(limits.CELL_TIMEOUT_S, help="seconds for each cell the grader runs").tag(config=True)
    task_timeout = Integer(limits.TASK_TIMEOUT_S, help="seconds for the whole run of one notebook").tag(config=True)
    sandboxed = Bool(True, help="run the notebook's code in the bubblewrap sandbox (False: trusted work only)"
                     ).tag(config=True)

    def preprocess(self, nb, resources):
        source = _source_notebook(self.config, resources)
        plan = answers.plan(source, nb, timeout=self.timeout)
        folder = resources.get("metadata", {}).get("path") or "."
        results, problem = self.run_plan(plan, folder)
        apply_results(nb, plan, results, problem, self.timeout, scored=answers.scored_by_grader(source))
        return nb, resources

    def run_plan(self, plan, folder):
        """The runner's records, one per step it reached, and a problem (or None)."""
        return run_plan(plan, folder, self.sandboxed, self.task_timeout, log=self.log)


def run_plan(plan, folder, sandboxed=True, task_timeout=limits.TASK_TIMEOUT_S, log=None):
    """Run ``plan`` (:func:`crsky.grading.answers.plan`) with the files of ``folder`` beside it.
    Returns ``(records, problem)``: the runner's records by step, and why it stopped early."""
    scratch = Path(tempfile.mkdtemp(prefix="crsky-run-"))
    work = scratch / "work"
    work.mkdir()
    os.chmod(scratch, 0o755)
    for item in Path(folder).iterdir():
        if item.is_file() and not item.is_symlink() and item.suffix != ".ipynb":
            shutil.copy(item, work / item.name)
    argv = [sys.executable, "-m", "crsky.grading.runner"]
    records, problem, lines = {}, None, []
    started = time.monotonic()
    try:
        if sandboxed:
            box = sandbox.Sandbox(str(work), sandbox_config())
            with box:
                process = box.popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                lines, problem = _talk(process, plan, task_timeout, box.kill)
        else:
            env = dict(os.environ, PYTHONPATH=str(Path(package_paths()[1]).parent))
            process = subprocess.Popen(argv, cwd=work, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.DEVNULL, env=env, start_new_session=True)
            lines, problem = _talk(process, plan, task_timeout, process.kill)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    seen_end = False
    expected = 0
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            problem = problem or "the grader's result channel carried something that is not a result"
            records.setdefault("tampering", []).append("wrote into the grader's result channel")
            continue
        if "end" in record:
            seen_end = record.get("end") == len(plan["steps"])
            continue
        if record.get("step") != expected or "status" not in record:
            records.setdefault("tampering", []).append("wrote into the grader's result channel")
            continue
        records[expected] = record
        expected += 1
    if not seen_end and problem is None and expected < len(plan["steps"]):
        last = plan["steps"][expected - 1]["where"] if expected else "the set-up"
        timed_out = expected and records[expected - 1].get("status") == "timeout"
        problem = (f"{last} did not finish within the time limit" if timed_out else
                   f"the notebook's process ended during {plan['steps'][expected]['where'] if expected < len(plan['steps']) else last}")
    if log is not None:
        log.info("protected run %s: %d of %d steps in %.1f s", "in the sandbox" if sandboxed else "WITHOUT the sandbox",
                 expected, len(plan["steps"]), time.monotonic() - started)
    return records, problem


def _talk(process, plan, task_timeout, kill):
    """Send the plan, read the runner's lines until it ends or the task's time is up."""
    try:
        out, _ = process.communicate(json.dumps(plan).encode(), timeout=task_timeout)
        return out.decode(errors="replace").splitlines(), None
    except subprocess.TimeoutExpired:
        kill()
        out, _ = process.communicate()
        return out.decode(errors="replace").splitlines(), f"the notebook took longer than {task_timeout} s in all"


def apply_results(nb, plan, records, problem, timeout, scored=()):
    """Write the protected run's outputs into ``nb``: answers' and tests' outputs, a note on
    the cells the grader did not run, and, for tampering, the withheld points on top.
    ``scored``: the grade_ids of the tests the grader scores itself (left to ScoreSavedModel)."""
    by_grade_id = {answers.nbgrader_meta(c).get("grade_id"): c for c in nb.cells if answers.nbgrader_meta(c).get("grade_id")}
    by_where = {answers.where(nb, i): c for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    ran = set()
    findings = [f"the result channel: {text}" for text in records.get("tampering", [])]
    first_failure = None
    for index, step in enumerate(plan["steps"]):
        record = records.get(index)
        cell = by_grade_id.get(step["id"]) if step["kind"] in ("answer", "test") else by_where.get(step["id"])
        if record is None:
            if step["kind"] == "test" and cell is not None:
                cell.outputs = [_error("NotRun", f"this test did not run: {problem or 'an earlier cell failed'}")]
                ran.add(id(cell))  # its verdict: a test that did not run earns nothing
            continue
        if step["kind"] == "setup":  # the instructor's code: what it changes is the tests' baseline, not tampering
            if record["status"] != "ok" and first_failure is None:
                first_failure = f"the course's set-up failed in this environment ({record['ename']}: {record['evalue']})"
            continue
        if record["status"] != "timeout":
            # A step stopped at its time limit ends the run (nothing after it is scored); what the
            # runner then sees of the interrupted interpreter says nothing about the student's code.
            findings += [f"{step['where']}: {text}" for text in record.get("findings", [])]
        if cell is None:
            continue
        ran.add(id(cell))
        outputs = []
        if record.get("stdout"):
            outputs.append(_stream(record["stdout"]))
        if step["kind"] != "test" and record.get("stderr"):
            outputs.append(_stream(record["stderr"], "stderr"))
        if record["status"] == "timeout":
            outputs.append(_error("CellTimeoutError", f"this cell ran longer than {timeout} s and was stopped"))
        elif record["status"] != "ok":
            outputs.append(_error(record.get("ename") or "Error", record.get("evalue") or ""))
        elif step["kind"] == "test" and record.get("value") is not None:
            outputs.append(nbformat.v4.new_output("execute_result", data={"text/plain": repr(record["value"])},
                                                  execution_count=None))
        if first_failure and step["kind"] == "test":
            outputs = [_error("GradingError", first_failure)]
        cell.outputs = outputs
    for cell in nb.cells:
        if cell.cell_type == "code" and id(cell) not in ran:
            meta = answers.nbgrader_meta(cell)
            if answers.is_test(cell) and meta.get("grade_id") in scored:
                continue
            cell.outputs = [] if meta.get("locked") else [_stream(NOT_RUN_NOTE)]
    findings = sorted(set(findings))
    withheld = []
    if findings:
        for cell in nb.cells:
            meta = answers.nbgrader_meta(cell)
            if answers.is_test(cell) and meta.get("grade_id") not in scored and meta.get("points"):
                withheld.append(meta["grade_id"])
                cell.outputs = [_error("PointsWithheld", "this notebook's code changed what the tests rely on; "
                                       "its test points wait for a person's review (see the top of the page)")]
        note = nbformat.v4.new_markdown_cell(
            "**Points withheld for review.** The grader found that this notebook's code changed what the "
            "tests rely on, so the points of its tests (" + ", ".join(withheld) + ") wait until a person has "
            "looked. What it found:\n\n" + "\n".join(f"- {text}" for text in findings))
        note.metadata[REVIEW_KEY] = {"note": True}
        nb.cells.insert(0, note)
    nb.metadata[REVIEW_KEY] = {"review": findings, "withheld": withheld, "problem": problem}
    return findings


class ScoreSavedModel(NbGraderPreprocessor):
    """Score the saved model of every test cell marked ``crsky.scored_by_grader`` outside the kernel.

    The cell's spec names the file (``"model"``) and the task (``"task"``): ``"maps"`` (the
    default, notebook 3) scores the signal probability per map as an accuracy against the
    pair-count baseline; ``"members"`` (notebook 5) scores the probability per cosmic ray
    on the held-out maps with sources as a purity at the classical member baseline's
    efficiency, against that baseline's purity on the same maps."""

    held_out_file = Unicode("", help="an .npz with the held-out maps ('maps'), labels ('labels'), the truth "
                                     "per cosmic ray ('source_id') and the pair-count baseline's accuracy "
                                     "('baseline'), written by the pipeline; readable by the grader only"
                            ).tag(config=True)
    seed_file = Unicode("", help="the instructor's seed file (python -m crsky.grading.seed new): nbgrader's "
                                 "own commands simulate the held-out maps from it").tag(config=True)
    n_maps = Integer(0, help="held-out maps simulated from seed_file (0: the course's number)").tag(config=True)
    sandboxed = Bool(True, help="score in the bubblewrap sandbox").tag(config=True)

    _cache = {}
    _lock = threading.RLock()

    def preprocess(self, nb, resources):
        pending = resources.pop(PENDING_KEY, {})
        measured = {}
        for cell, spec, points in self._scored_cells(nb, resources):
            grade_id = answers.nbgrader_meta(cell)["grade_id"]
            job = pending.pop(grade_id, None)
            try:
                found = job.result() if job is not None else self.score(spec, self._folder(resources), points)
            except ValueError as error:
                cell.outputs = [_error("ModelNotScored", str(error))]
                continue
            score, measure, message = found
            name = "purity" if spec.get("task", "maps") == "members" else "accuracy"
            measured[grade_id] = {name: measure, "points": score, "message": message}
            cell.outputs = [_stream(message + "\n")]
            if score is None:
                cell.outputs.append(_error("ModelNotScored", message))
            else:
                cell.outputs.append(nbformat.v4.new_output("execute_result", data={"text/plain": repr(score)},
                                                           execution_count=None))
        for job in pending.values():  # a cell the notebook no longer has: wait, so no process outlives the step
            job.exception()
        if measured:
            nb.metadata.setdefault(REVIEW_KEY, {})["scored"] = measured
        return nb, resources

    @staticmethod
    def _folder(resources):
        return Path(resources.get("metadata", {}).get("path") or ".")

    def _scored_cells(self, nb, resources):
        """``(cell, spec, points)`` of every test cell whose saved model the grader scores."""
        scored = answers.scored_by_grader(_source_notebook(self.config, resources))
        for cell in nb.cells:
            spec = scored.get(answers.nbgrader_meta(cell).get("grade_id"))
            if spec and answers.is_test(cell):
                yield cell, spec, float(answers.nbgrader_meta(cell).get("points") or 0)

    def score(self, spec, folder, points):
        """``(points, measure, message)`` of the model file ``spec["model"]`` in ``folder``
        (points and measure None when it cannot be scored). Raises ValueError when no
        held-out maps are configured."""
        if spec.get("task", "maps") == "members":
            return score_member_file(folder / spec["model"], self.member_held_out(), points, self.sandboxed)
        held_out = self.held_out()
        return score_model_file(folder / spec["model"], held_out["maps"], held_out["labels"], points,
                                held_out["full_marks_at"], held_out["baseline"], self.sandboxed)

    def held_out(self):
        """The held-out simulation, cached for this process: a dict of ``maps`` ``(n, 500, 4)``,
        ``labels`` ``(n,)``, ``source_id`` ``(n, 500)``, ``baseline`` (the pair-count accuracy
        on them) and ``full_marks_at``. Raises ValueError when none was configured."""
        with self._lock:  # the start step's thread and the collecting step may both ask
            return self._held_out()

    def _held_out(self):
        import numpy as np

        from crsky import experiment
        from crsky import scoring

        key = (self.held_out_file, self.seed_file, self.n_maps)
        if key in self._cache:
            return self._cache[key]
        if self.held_out_file:
            try:
                with np.load(self.held_out_file, allow_pickle=False) as data:
                    found = {"maps": data["maps"], "labels": data["labels"], "baseline": float(data["baseline"]),
                             "source_id": data["source_id"] if "source_id" in data.files else None,
                             "member_baseline_scores": (data["member_baseline_scores"]
                                                        if "member_baseline_scores" in data.files else None)}
            except (OSError, KeyError, ValueError) as error:
                raise ValueError(f"the grader's held-out maps {self.held_out_file} cannot be read "
                                 f"({type(error).__name__}: {error}): expected an .npz with maps, labels and baseline, as "
                                 "python -m crsky.grading writes it") from error
        elif self.seed_file and Path(self.seed_file).expanduser().exists():
            from crsky.course import COURSE_ROOT
            from crsky.grading.seed import read_seed_file

            mounted = [*sandbox.python_installation(sys.executable), COURSE_ROOT,
                       *(f"/{name}" for name in sandbox.SYSTEM_ENTRIES)]
            seed = read_seed_file(Path(self.seed_file).expanduser(), forbidden_folders=mounted)  # SeedError: a ValueError
            from crsky.simulate import held_out_simulation

            sim = held_out_simulation(n_maps=self.n_maps or experiment.HELD_OUT_MAPS, seed=seed)
            found = {"maps": sim["data"], "labels": sim["label"], "source_id": sim["source_id"],
                     "baseline": scoring.baseline_accuracy(sim["data"], sim["label"]), "member_baseline_scores": None}
        else:
            raise ValueError("the grader was given no held-out maps to score the saved model on: the instructor's "
                             f"seed file {self.seed_file or '(none configured)'} does not exist. Make it with "
                             "python -m crsky.grading.seed new (grading/nbgrader_config.py reads "
                             "~/.config/crsky/heldout.seed, or the file CRSKY_SEED_FILE names), or grade with "
                             "python -m crsky.grading")
        found["full_marks_at"] = scoring.full_marks_accuracy(found["baseline"])
        self._cache[key] = found
        return found

    def member_held_out(self):
        """The per-cosmic-ray task on the held-out maps with sources, cached: a dict of ``maps``
        ``(m, 500, 4)``, ``truth`` ``(m, 500)`` and ``baseline_scores`` ``(m, 500)`` (the classical
        member baseline fitted on the public training maps, :func:`crsky.members.public_member_baseline`)."""
        with self._lock:
            return self._member_held_out()

    def _member_held_out(self):
        key = ("members", self.held_out_file, self.seed_file, self.n_maps)
        if key not in self._cache:
            import numpy as np

            from crsky import members
            from crsky.baseline import member_baseline_scores

            held_out = self.held_out()
            if held_out["source_id"] is None:
                raise ValueError(f"the held-out maps in {self.held_out_file} carry no source_id (the truth per "
                                 "cosmic ray): grade with this version's python -m crsky.grading.")
            signal = np.asarray(held_out["labels"]) == 1
            maps = np.asarray(held_out["maps"])[signal]
            baseline_scores = held_out["member_baseline_scores"]  # computed once by the pipeline's plan
            if baseline_scores is None or np.shape(baseline_scores) != maps.shape[:2]:
                baseline_scores = member_baseline_scores(members.public_member_baseline(), maps)
            self._cache[key] = {"maps": maps, "truth": members.member_targets(held_out["source_id"][signal]),
                                "baseline_scores": baseline_scores}
        return self._cache[key]


class StartScoring(ScoreSavedModel):
    """Begin :class:`ScoreSavedModel`'s scoring before the protected run, in a thread.

    Listed before ``ProtectedExecute``: the submitted model file is scored while the
    notebook's answers and tests run (each in its own sandboxed process, so on two cores a
    notebook costs the longer of the two, not their sum). ``ScoreSavedModel`` later waits for
    the result and writes it; without this step it scores on its own. Takes the configuration
    of ``ScoreSavedModel`` (``held_out_file``, ``seed_file``, ``n_maps``, ``sandboxed``)."""

    def preprocess(self, nb, resources):
        pending = resources.setdefault(PENDING_KEY, {})
        for cell, spec, points in self._scored_cells(nb, resources):
            pending[answers.nbgrader_meta(cell)["grade_id"]] = self._begin(spec, self._folder(resources), points)
        return nb, resources

    def _begin(self, spec, folder, points):
        job = Future()
        job.set_running_or_notify_cancel()

        def work():
            try:
                job.set_result(self.score(spec, folder, points))
            except BaseException as error:  # handed to the collecting step, which reports or raises it
                job.set_exception(error)

        # a daemon thread: if the autograde fails before the collecting step, the process may
        # end at once; the scoring process is in a sandbox that dies with its parent
        threading.Thread(target=work, name=f"crsky-scoring-{spec.get('model')}", daemon=True).start()
        return job


def _scored_by_process(model_path, maps, shape, task, sandboxed):
    """Run the scoring process on a copy of ``model_path`` and ``maps`` in a scratch folder:
    ``(probability of ``shape``, None)`` or ``(None, message)``."""
    import numpy as np

    model_path = Path(model_path)
    if not model_path.is_file():
        return None, f"no trained model {model_path.name} was submitted with the notebook: 0 points."
    scratch = Path(tempfile.mkdtemp(prefix="crsky-score-"))
    work = scratch / "work"
    work.mkdir()
    os.chmod(scratch, 0o755)
    try:
        np.save(work / "maps.npy", np.asarray(maps), allow_pickle=False)
        shutil.copy(model_path, work / "model.keras")
        limit = limits.SCORING_TIMEOUT_S
        return run_scorer(work, shape, sandbox_config() if sandboxed else None, limit, task=task)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def score_model_file(model_path, maps, labels, points, full_marks_at, baseline, sandboxed=True):
    """Points of the map classifier at ``model_path`` on ``maps``, measured by a separate
    (sandboxed) process that sees the maps but not the labels. Returns ``(points, accuracy,
    message)``; points and accuracy are None when the model cannot be scored (the message says why)."""
    from crsky import scoring

    probability, message = _scored_by_process(model_path, maps, len(labels), "maps", sandboxed)
    if probability is None:
        return None, None, message
    accuracy = scoring.held_out_accuracy(probability, labels)
    score = round(scoring.accuracy_points(accuracy, points, full_marks_at), 2)
    return score, accuracy, scoring.describe(accuracy, len(labels), score, points, full_marks_at, baseline) + \
        " (measured by the grader)"


def score_member_file(model_path, held_out, points, sandboxed=True):
    """Points of the member model at ``model_path`` on ``held_out`` (:meth:`ScoreSavedModel.member_held_out`),
    measured by a separate (sandboxed) process that sees the maps but not the truth:
    :func:`crsky.members.member_points` of its purity at the baseline's efficiency. Returns
    ``(points, purity, message)``; points and purity are None when it cannot be scored."""
    from crsky import members

    maps = held_out["maps"]
    probability, message = _scored_by_process(model_path, maps, maps.shape[:2], "members", sandboxed)
    if probability is None:
        return None, None, message
    score, result = members.score_scores(probability, held_out["truth"], held_out["baseline_scores"], points)
    return round(score, 2), result["purity"], members.describe(result, len(maps), round(score, 2), points) + \
        " (measured by the grader)"


def scorer_messages(stdout):
    """The JSON objects the scoring process printed, one per line (``{"maps": n}`` or
    ``{"error": why}``); any other line (a library's message, a brace that is not JSON) is skipped."""
    messages = []
    for line in stdout.splitlines():
        if line.startswith("{"):
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                messages.append(message)
    return messages


def run_scorer(work, shape, config, timeout, task="maps"):
    """Run the scoring process (``python -m crsky.grading.scoring``) on ``work/model.keras`` and
    ``work/maps.npy``: in a sandbox built from ``config``, or unsandboxed when ``config`` is None.
    Returns ``(probability of shape, None)`` (``shape`` an int for ``(n_maps,)``), or
    ``(None, message)`` saying why there is none."""
    from crsky.grading import scoring

    argv = [sys.executable, "-m", "crsky.grading.scoring", "--model", "model.keras", "--maps", "maps.npy",
            "--out", "probability.npy", "--task", task]
    if config is not None:
        result = sandbox.run(argv, str(work), config=config, timeout=timeout, text=True)
        returncode, stdout, stderr, timed_out = result.returncode, result.stdout, result.stderr, result.timed_out
    else:
        env = dict(os.environ, PYTHONPATH=str(Path(package_paths()[1]).parent))
        try:
            run = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=timeout, env=env)
            returncode, stdout, stderr, timed_out = run.returncode, run.stdout, run.stderr, False
        except subprocess.TimeoutExpired:
            returncode, stdout, stderr, timed_out = -9, "", "", True
    if timed_out:
        return None, f"scoring the saved model took longer than {timeout} s: 0 points."
    messages = scorer_messages(stdout)
    if returncode != 0:
        reason = messages[-1].get("error") if messages else None
        return None, (reason or f"the model could not be scored (exit {returncode}): {stderr.strip()[-300:]}") + \
            " 0 points."
    try:
        return scoring.read_probabilities(Path(work) / "probability.npy", shape), None
    except scoring.ModelFileError as error:
        return None, f"{error} 0 points."


class FlagForReview(NbGraderPreprocessor):
    """After SaveAutoGrades: the withheld test cells of a flagged notebook need a manual grade."""

    def preprocess(self, nb, resources):
        withheld = (nb.metadata.get(REVIEW_KEY) or {}).get("withheld") or []
        if not withheld:
            return nb, resources
        from nbgrader.api import Gradebook

        info = resources["nbgrader"]
        with Gradebook(resources["nbgrader"]["db_url"] if "db_url" in info else self._db_url(),
                       self._course_id()) as book:
            notebook = book.find_submission_notebook(info["notebook"], info["assignment"], info["student"])
            for grade in notebook.grades:
                if grade.name in withheld:
                    grade.needs_manual_grade = True
            book.db.commit()
        return nb, resources

    def _db_url(self):
        from nbgrader.coursedir import CourseDirectory

        return CourseDirectory(config=self.config).db_url

    def _course_id(self):
        from nbgrader.coursedir import CourseDirectory

        return CourseDirectory(config=self.config).course_id


def protected_grades(source_nb, submitted_nb, folder=".", sandboxed=True, timeout=limits.CELL_TIMEOUT_S,
                     task_timeout=limits.TASK_TIMEOUT_S):
    """Grade ``submitted_nb`` against the instructor's ``source_nb`` as ``ProtectedExecute``
    and nbgrader's ``SaveAutoGrades`` do, without a gradebook (the files of ``folder`` beside
    it). The saved model's test (scored by the grader outside the notebook) is left out.

    Returns a dict: ``scores`` ``{grade_id: (points, max_points)}`` of every autograded test,
    ``review`` (what the notebook's code changed that the tests rely on; empty for honest
    work), ``withheld`` (the tests whose points wait for a review), ``problem`` (why the run
    stopped early, or None) and ``notebook`` (the graded copy, with the outputs a feedback
    page shows)."""
    from nbgrader.utils import determine_grade

    nb = nbformat.from_dict(json.loads(json.dumps(submitted_nb)))
    scored = answers.scored_by_grader(source_nb)
    plan = answers.plan(source_nb, nb, timeout=timeout)
    records, problem = run_plan(plan, folder, sandboxed, task_timeout)
    findings = apply_results(nb, plan, records, problem, timeout, scored=scored)
    tests = {answers.nbgrader_meta(c)["grade_id"] for c in source_nb.cells
             if answers.is_test(c) and answers.nbgrader_meta(c)["grade_id"] not in scored}
    scores = {}
    for cell in nb.cells:
        grade_id = answers.nbgrader_meta(cell).get("grade_id")
        if grade_id in tests and cell.cell_type == "code":
            points, max_points = determine_grade(cell)
            scores[grade_id] = (float(points or 0), float(max_points))
    for grade_id in tests - set(scores):  # a test cell the student deleted: nbgrader puts it back, unanswered
        scores[grade_id] = (0.0, float(next(answers.nbgrader_meta(c)["points"] for c in source_nb.cells
                                            if answers.nbgrader_meta(c).get("grade_id") == grade_id)))
    return {"scores": scores, "review": findings, "withheld": list(nb.metadata[REVIEW_KEY]["withheld"]),
            "problem": problem, "notebook": nb}


class ForgetUnknownCells(NbGraderPreprocessor):
    """Before nbgrader's ``OverwriteCells``: a cell whose ``grade_id`` the gradebook does not
    know (an editable cell that carries nbgrader metadata, a cell pasted from another
    notebook) loses its nbgrader metadata and becomes an ordinary cell. nbgrader 0.9.6 would
    delete only its ``grade_id`` and then, with ``add_missing_cells``, fail on the cell
    (``KeyError: 'grade_id'``): that student's notebook would not be graded at all."""

    def preprocess(self, nb, resources):
        from nbgrader.api import Gradebook, MissingEntry

        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as book:
            try:
                known = {cell.name for cell in book.find_notebook(info["notebook"], info["assignment"]).source_cells}
            except MissingEntry:
                return nb, resources
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader")
            if isinstance(meta, dict) and meta.get("grade_id") not in known:
                self.log.info("cell %r is not one of the assignment's: graded as an ordinary cell", meta.get("grade_id"))
                del cell.metadata["nbgrader"]
        return nb, resources
