"""What the grades table says when nbgrader could not grade a notebook: the cause in words,
read from nbgrader's log, never only its closing "see the above traceback"."""

from crsky.grading.nbgrader_cli import failure_reason

TRACEBACK = """\
[AutogradeApp | INFO] Sanitizing /work/submitted/ada/02_kernel/02_kernel.ipynb
[AutogradeApp | ERROR] There was an error processing assignment: /work/submitted/ada/02_kernel
[AutogradeApp | ERROR] Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/sqlalchemy/engine/base.py", line 1967, in _exec_single_context
    self.dialect.do_execute(
sqlite3.OperationalError: disk I/O error
[AutogradeApp | ERROR] Please see the above traceback for details.
"""


def test_the_exception_line_is_kept_over_nbgrader_s_closing_words():
    assert failure_reason(TRACEBACK, 120) == "autograding failed: sqlite3.OperationalError: disk I/O error"


def test_without_a_traceback_the_last_error_line_is_kept():
    log = "[AutogradeApp | ERROR] No such assignment: 07_extra\n[AutogradeApp | ERROR] Please see the above traceback"
    assert failure_reason(log, 120) == "autograding failed: [AutogradeApp | ERROR] No such assignment: 07_extra"


def test_known_causes_are_said_in_words():
    assert "kernel died" in failure_reason("nbclient.exceptions.DeadKernelError: Kernel died", 120)
    assert "longer than 45 s" in failure_reason("nbclient.exceptions.CellTimeoutError: ...", 45)
    assert failure_reason("", 120) == "autograding failed: nbgrader exited with an error"
