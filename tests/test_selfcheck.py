"""Students' self-check: the visible tests, run as the grader runs them, without nbgrader."""

import shutil
from pathlib import Path

from crsky.grading.selfcheck import check, main

ROOT = Path(__file__).resolve().parents[1]


def test_unanswered_notebook_reports_every_exercise_failing(tmp_path, capsys):
    shutil.copytree(ROOT / "notebooks" / "02_kernel", tmp_path / "02_kernel")
    rows = check(tmp_path / "02_kernel" / "02_kernel.ipynb")
    assert [r[0] for r in rows] == ["test_kernel_shape", "test_kernel_inputs", "test_kernel_trainable",
                                    "test_kernel_in_edgeconv"]
    assert all(r[1] == "FAILED" for r in rows)
    assert "NotImplementedError" in rows[0][4]
    assert "visible tests: 0 of 6 points; still failing" in capsys.readouterr().out


def test_answered_notebook_passes_and_command_exits_zero(tmp_path, capsys):
    shutil.copy(ROOT / "solutions" / "01_sky" / "01_sky.ipynb", tmp_path / "01_sky.ipynb")
    assert main([str(tmp_path / "01_sky.ipynb")]) == 0
    assert "visible tests: 4 of 4 points; all pass" in capsys.readouterr().out
