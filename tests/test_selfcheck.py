"""Students' self-check: the visible tests, run as nbgrader's Validate runs them, without
nbgrader; the saved model scored as the grader scores it, within the time Validate gives a
cell; every way it can fail said in one line."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from crsky import course, selfcheck
from crsky.course import SELFCHECK_ENV, find_notebook
from crsky.selfcheck import _result, check, check_file, check_notebook, main

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "tests" / "fixtures" / "dgcnn_textbook.keras"


@pytest.fixture(autouse=True)
def _not_grading(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv(SELFCHECK_ENV, raising=False)


def test_unanswered_notebook_reports_every_exercise_failing(tmp_path, capsys):
    shutil.copytree(ROOT / "notebooks" / "02_kernel", tmp_path / "02_kernel")
    rows = check_file(tmp_path / "02_kernel" / "02_kernel.ipynb")
    assert [r[0] for r in rows] == ["test_kernel_shape", "test_kernel_inputs", "test_kernel_trainable",
                                    "test_kernel_in_edgeconv"]
    assert all(r[1] == "FAILED" for r in rows)
    assert "NotImplementedError" in rows[0][4]
    assert "visible tests: 0 of 6 points; still failing" in capsys.readouterr().out
    assert main([str(tmp_path / "02_kernel" / "02_kernel.ipynb")]) == 1


def graded_cell(source, points, outputs):
    cell = nbformat.v4.new_code_cell(source, metadata={"nbgrader": {
        "grade": True, "solution": False, "locked": True, "grade_id": "test_x", "points": points, "schema_version": 3}})
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    return cell


def result(value, printed):
    return _result(graded_cell("score()", 4, [
        {"output_type": "stream", "name": "stdout", "text": printed},
        {"output_type": "execute_result", "execution_count": 1, "metadata": {}, "data": {"text/plain": value}}]), 120)


def test_a_zero_is_a_failure_with_its_reason_and_partial_credit_shows_the_rule():
    line = "test accuracy on 1000 held-out maps: 0.480 -> 0.00 of 4 points (full points from 0.917: ...)"
    assert result("0.0", f"Scored on the first 1,000 ...\n{line}\n") == ("FAILED", 0.0, line)
    assert result("0", "") == ("FAILED", 0.0, "0 of 4 points")
    line = line.replace("0.480 -> 0.00", "0.800 -> 2.85")
    assert result("2.85", line) == ("PARTIAL", 2.85, line)
    assert result("4.0", line.replace("2.85", "4.00")) == ("passed", 4.0, line.replace("2.85", "4.00"))


def one_test_notebook(source):
    return nbformat.v4.new_notebook(cells=[graded_cell(source, 1, [])], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def test_a_cell_past_the_time_limit_fails_and_the_check_goes_on(tmp_path):
    nb = one_test_notebook("import time\ntime.sleep(30)")
    nb.cells.append(graded_cell("assert True", 1, []))
    rows = check_notebook(nb, tmp_path, timeout=3, quiet=True)
    assert rows[0][1:4] == ("FAILED", 0.0, 1.0) and "ran longer than 3 s" in rows[0][4]
    assert rows[1][1] == "passed"


def test_the_check_runs_as_validate_with_the_self_checks_marker(tmp_path):
    """Training is skipped as under Validate; "autograde" stays the grader's own."""
    rows = check_notebook(one_test_notebook(
        "import os\nfrom crsky import course\nassert os.environ['NBGRADER_EXECUTION'] == 'validate'\n"
        "assert course.grading_run() and course.selfcheck_run()"), tmp_path, timeout=60, quiet=True)
    assert rows[0][1] == "passed", rows


def test_the_self_checks_own_errors_are_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "missing.ipynb")]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == f"error: no notebook at {tmp_path / 'missing.ipynb'}: give the path of your .ipynb file."
    (tmp_path / "broken.ipynb").write_text("{not json")
    assert main([str(tmp_path / "broken.ipynb")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'broken.ipynb'} is not a notebook") and err.count("\n") == 1
    assert check(str(tmp_path / "missing.ipynb")) is None
    out = capsys.readouterr().out
    assert out.startswith("the self-check could not run: no notebook at") and out.count("\n") == 1
    assert check() is None and "give the notebook's name" in capsys.readouterr().out


def test_a_bare_name_is_found_below_the_working_folder(tmp_path, monkeypatch):
    """A terminal opens in the server's root: the home on a hub, the clone on a laptop."""
    home = tmp_path / "home"
    for folder in ("01_sky", "01_sky/.ipynb_checkpoints", "01_sky/feedback/2026-01-01", ".local/share/x"):
        (home / folder).mkdir(parents=True)
    for path in ("01_sky/01_sky.ipynb", "01_sky/.ipynb_checkpoints/01_sky.ipynb", ".local/share/x/01_sky.ipynb",
                 "01_sky/feedback/2026-01-01/01_sky.ipynb"):
        (home / path).write_text("{}")
    monkeypatch.chdir(home)
    assert find_notebook("01_sky.ipynb") == Path("01_sky/01_sky.ipynb")
    assert find_notebook("01_sky/01_sky.ipynb") == Path("01_sky/01_sky.ipynb")
    with pytest.raises(FileNotFoundError, match=r"no 02_kernel.ipynb in .* give the notebook's path, e.g. "
                                                r"02_kernel/02_kernel.ipynb"):
        find_notebook("02_kernel.ipynb")
    (home / "copy").mkdir()
    (home / "copy" / "01_sky.ipynb").write_text("{}")
    with pytest.raises(ValueError, match=r"2 notebooks named 01_sky.ipynb .*01_sky/01_sky.ipynb.*copy/01_sky.ipynb"):
        find_notebook("01_sky.ipynb")


def test_in_a_clone_the_students_copy_comes_before_the_release(tmp_path):
    clone = tmp_path / "crsky"
    (clone / "crsky").mkdir(parents=True)
    (clone / "crsky" / "course.py").write_text("")
    for folder in ("solutions", "notebooks", "my-work"):
        (clone / folder / "01_sky").mkdir(parents=True)
        (clone / folder / "01_sky" / "01_sky.ipynb").write_text("{}")
    assert find_notebook("01_sky.ipynb", clone) == clone / "my-work" / "01_sky" / "01_sky.ipynb"
    shutil.rmtree(clone / "my-work")
    assert find_notebook("01_sky.ipynb", clone) == clone / "notebooks" / "01_sky" / "01_sky.ipynb"


def test_scoring_under_validate_uses_fewer_maps_and_says_so(monkeypatch, capsys):
    from crsky.scoring import score_saved_model

    monkeypatch.setenv("NBGRADER_EXECUTION", "validate")
    points = score_saved_model(MODEL, points=4, check_maps=200)
    out = capsys.readouterr().out
    assert "Scored on the first 200 of the 5,000 public held-out maps" in out
    assert "test accuracy on 200 held-out maps:" in out and "full points from" in out
    assert 0 < points <= 4
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert score_saved_model(MODEL) == 0
    assert "The grader scores your saved model outside this notebook" in capsys.readouterr().out


@pytest.mark.slow
def test_validate_scores_the_saved_model_within_the_time_per_cell_it_is_given(tmp_path, monkeypatch):
    """nbgrader's Validate gives a cell 30 s unless configured (Execute.timeout's default), too
    little for the scoring cell on a busy CPU. The hub's image (docker/jupyter) and a laptop's
    environment (scripts/venv.sh installs scripts/nbgrader_config.py) give it the grader's
    limit: there the training notebook, with a saved model, passes and its score is printed."""
    from nbgrader.preprocessors import Execute
    from nbgrader.validator import Validator
    from traitlets.config.loader import PyFileConfigLoader

    from crsky.limits import CELL_TIMEOUT_S

    assert Execute.class_traits()["timeout"].default_value == 30
    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT / "scripts")).load_config()
    assert config.Execute.timeout == CELL_TIMEOUT_S
    assert "scripts/nbgrader_config.py" in (ROOT / "scripts" / "venv.sh").read_text()
    monkeypatch.setenv("CRSKY_SIZE", "small")
    shutil.copytree(ROOT / "solutions" / "03_training", tmp_path / "03_training", ignore=shutil.ignore_patterns("*.keras"))
    shutil.copy(MODEL, tmp_path / "03_training" / "dgcnn.keras")
    result = Validator(config=config).validate(str(tmp_path / "03_training" / "03_training.ipynb"))
    assert not result.get("failed") and set(result) <= {"failed"}, json.dumps(result, indent=1)[:3000]


def test_check_and_submit_inside_a_check_do_nothing(monkeypatch, capsys):
    from crsky.submit import hand_in

    monkeypatch.setenv(SELFCHECK_ENV, "1")
    assert course.selfcheck_run()
    assert check("anything.ipynb") is None and "check() skipped" in capsys.readouterr().out
    assert hand_in("anything.ipynb") is None and "submit() skipped" in capsys.readouterr().out
    assert selfcheck.GUARD == SELFCHECK_ENV


def test_the_small_size_scores_the_first_maps_and_says_so(monkeypatch, capsys):
    """A quick try at the small size is no measure of the recipe: its model cell scores the
    first maps, as Validate does, and says so; the CPU and GPU sizes score all of them."""
    from crsky.scoring import public_maps_to_score, score_saved_model

    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setenv("CRSKY_SIZE", "small")
    assert 0 < score_saved_model(MODEL, points=4, check_maps=200) <= 4
    out = capsys.readouterr().out
    assert "Scored on the first 200 of the 5,000 public held-out maps, at the small size" in out
    assert "test accuracy on 200 held-out maps:" in out
    assert public_maps_to_score(300) == 300 and not capsys.readouterr().out  # a count asked for is kept
    for size in ("cpu", "gpu", ""):
        monkeypatch.setenv("CRSKY_SIZE", size)
        assert public_maps_to_score() == 5_000 and not capsys.readouterr().out


def test_the_old_name_still_checks_notebooks_released_before_the_move():
    """Notebooks released before the self-check moved to crsky.selfcheck end with
    ``from crsky.grading.selfcheck import check``; that import and ``python -m`` still work."""
    from crsky.grading import selfcheck as old

    assert old.check is check and old.main is main and old.GUARD == SELFCHECK_ENV
    done = subprocess.run([sys.executable, "-m", "crsky.grading.selfcheck", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "python -m crsky.selfcheck" in done.stdout
