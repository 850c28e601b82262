"""nbgrader itself, run for the pipeline: one of its commands on a course folder with the
course's configuration (``grading/nbgrader_config.py``) in a clean environment, its feedback
pages through the Python API the formgrader calls, and why a run failed, in words, from its log."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from crsky import limits
from crsky.course import COURSE_ROOT
from crsky.grading import gradebook

GRADING_DIR = COURSE_ROOT / "grading"  # nbgrader's course configuration; nbgrader runs from here


def nbgrader(args, course_dir, db_url, env, timeout_s, cell_timeout_s=limits.CELL_TIMEOUT_S):
    """Run one nbgrader command on the course folder ``course_dir`` (``source/``, ``release/``,
    ``submitted/``, ``autograded/``, ``feedback/`` inside it) with the course's configuration.
    Returns the CompletedProcess; raises subprocess.TimeoutExpired after ``timeout_s``."""
    command = [
        sys.executable, "-m", "nbgrader", *args,
        f"--CourseDirectory.root={course_dir}", "--CourseDirectory.source_directory=source",
        "--CourseDirectory.release_directory=release", "--CourseDirectory.submitted_directory=submitted",
        "--CourseDirectory.autograded_directory=autograded", "--CourseDirectory.feedback_directory=feedback",
        f"--CourseDirectory.db_url={db_url}", f"--Exchange.root={Path(course_dir) / 'exchange'}",
        f"--Execute.timeout={cell_timeout_s}",
    ]
    if shutil.which("setpriv"):
        # If this worker dies, nbgrader (and with it the sandboxed kernel) dies too: a retry
        # elsewhere never races a leftover run of the same task.
        command = ["setpriv", "--pdeathsig", "KILL", "--", *command]
    process = subprocess.Popen(command, cwd=GRADING_DIR, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.communicate()
        raise
    return subprocess.CompletedProcess(command, process.returncode, output, "")


def feedback_config():
    """The sections of the course's nbgrader configuration (``grading/nbgrader_config.py``)
    that make feedback pages: ``GenerateFeedback`` (its preprocessors, among them
    :class:`crsky.grading.hidden.HideHiddenTests`) and ``HideHiddenTests``."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    loaded = PyFileConfigLoader("nbgrader_config.py", path=str(GRADING_DIR)).load_config()
    config = Config()
    for section in ("GenerateFeedback", "HideHiddenTests", "ClearHiddenTests"):
        if section in loaded:
            config[section] = loaded[section]
    return config


def generate_feedback(course_dir, db_url, assignment, student):
    """nbgrader's ``generate_feedback`` for one student, in this process (as the formgrader
    runs it: no student code runs here, and a process of its own would cost a second of
    imports per notebook), with the course's feedback preprocessors. Writes
    ``feedback/<student>/<assignment>/<assignment>.html``, and removes it again (raising
    RuntimeError) when it shows anything of the hidden tests (:func:`crsky.grading.hidden.leaks`)."""
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    from crsky.grading import hidden

    config = feedback_config()
    config.CourseDirectory.root = str(course_dir)
    config.CourseDirectory.db_url = db_url
    config.CourseDirectory.course_id = gradebook.COURSE_ID
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    result = api.generate_feedback(assignment, student, force=True)
    if not result.get("success"):
        raise RuntimeError((result.get("error") or result.get("log") or "")[-500:])
    page = Path(course_dir) / "feedback" / student / assignment / f"{assignment}.html"
    source = Path(course_dir) / "source" / assignment / f"{assignment}.ipynb"
    submitted = Path(course_dir) / "submitted" / student / assignment / f"{assignment}.ipynb"
    if page.is_file() and source.is_file():
        try:
            own = nbformat.read(submitted, as_version=4)
        except Exception:  # unreadable: no line of it is the student's own
            own = None
        shown = hidden.leaks(page.read_text(errors="replace"), nbformat.read(source, as_version=4), own)
        if shown:
            page.unlink()
            raise RuntimeError(f"the page showed {len(shown)} line(s) of the hidden tests and was withheld; "
                               "is HideHiddenTests in c.GenerateFeedback.preprocessors of grading/nbgrader_config.py?")


def nbgrader_env(folder):
    """A minimal environment for nbgrader: Jupyter's folders in ``folder``, no secrets."""
    keep = ("LANG", "LC_ALL", "TZ", "KERAS_BACKEND", "OMP_NUM_THREADS")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env.update(
        HOME=str(folder / "home"), JUPYTER_CONFIG_DIR=str(folder / "jupyter" / "config"),
        JUPYTER_DATA_DIR=str(folder / "jupyter" / "data"), JUPYTER_RUNTIME_DIR=str(folder / "jupyter" / "runtime"),
        IPYTHONDIR=str(folder / "ipython"), TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore",
        # nbgrader and the sandbox launcher use this checkout's course package.
        PYTHONPATH=str(COURSE_ROOT),
        # nbgrader runs `alembic` from PATH: this Python's scripts first (also for an unactivated venv).
        PATH=os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]),
    )
    for name in ("home", "ipython", "jupyter/config", "jupyter/data", "jupyter/runtime"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    return env


def failure_reason(log_text, cell_timeout_s):
    """Why nbgrader could not grade a notebook, in words, from its log."""
    checks = [
        (r"DeadKernelError|Kernel died|kernel died", "the notebook's kernel died while it ran (killed, crashed or out of memory)"),
        (r"CellTimeoutError|Timeout waiting for execute reply", f"a cell ran longer than {cell_timeout_s} s and "
                                                                  "could not be interrupted"),
        (r"MemoryError", "the notebook ran out of memory"),
        (r"No notebooks found", "no notebook with the assignment's name was submitted"),
    ]
    for pattern, reason in checks:
        if re.search(pattern, log_text):
            return reason
    lines = [line.strip() for line in log_text.splitlines()]
    # The exception's own line ("SomeError: what went wrong") says more than nbgrader's closing
    # "Please see the above traceback"; keep the last one, else the last ERROR line.
    raised = [line for line in lines if EXCEPTION_LINE.match(line)]
    errors = [line for line in lines if "ERROR" in line and "see the above traceback" not in line]
    chosen = (raised or errors or [line for line in lines if "ERROR" in line])
    return "autograding failed: " + (chosen[-1][:300] if chosen else "nbgrader exited with an error")


# A Python exception's last traceback line: "ValueError: ..." or "sqlite3.OperationalError: ...".
EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt)\b(?::|$)")


def retryable(log_text):
    return bool(re.search(r"database is locked|OperationalError|could not connect to server|Connection refused",
                          log_text))
