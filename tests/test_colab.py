"""Colab: the set-up cells install the one pinned requirement and fail with a clear message;
check() reads Colab's notebook format; grading runs (autograde, validate) never train and a
self-check never starts a self-check."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
from colab_stub import install as install_colab

import crsky
from crsky import colab, course
from crsky.selfcheck import GUARD, check, check_file

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(ROOT.glob("solutions/*/*.ipynb")) + sorted(ROOT.glob("notebooks/*/*.ipynb"))


def setup_source(path):
    cell = nbformat.read(path, as_version=4).cells[1]
    assert cell.metadata.nbgrader.grade_id == "setup"
    return cell.source


# ------------------------------------------------------------- the set-up cells
def test_one_pinned_requirement_for_colab_and_the_package_version_agree():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert crsky.__version__ == version
    name, url = (part.strip() for part in course.COLAB_REQUIREMENT.split("@", 1))
    assert name == "crsky"
    assert url == f"{course.REPO_URL}/releases/download/v{version}/crsky-{version}-py3-none-any.whl"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_every_setup_cell_installs_the_requirement_of_crsky_course(path):
    source = setup_source(path)
    assert re.findall(r'^CRSKY = "(.*)"$', source, flags=re.M) == [course.COLAB_REQUIREMENT]
    assert "git+" not in source and "check=True" not in source


def run_setup_cell(monkeypatch, returncode, stderr=""):
    """Execute notebook 2's set-up cell with pip replaced by a stub; returns pip's calls."""
    calls = []

    def fake_run(args, **kwargs):
        calls.append(args)
        return subprocess.CompletedProcess(args, returncode, stdout="", stderr=stderr)

    monkeypatch.setattr(subprocess, "run", fake_run)
    exec(compile(setup_source(ROOT / "notebooks" / "02_kernel" / "02_kernel.ipynb"), "setup-cell", "exec"), {})
    return calls


def test_setup_cell_does_nothing_outside_colab(monkeypatch):
    assert not colab.in_colab()
    assert run_setup_cell(monkeypatch, returncode=1) == []


def test_setup_cell_on_colab_installs_the_pinned_wheel(monkeypatch):
    install_colab(monkeypatch, nbformat.v4.new_notebook())
    calls = run_setup_cell(monkeypatch, returncode=0)
    assert calls == [[sys.executable, "-m", "pip", "install", "-q", course.COLAB_REQUIREMENT]]


def test_setup_cell_on_colab_fails_fast_with_what_to_do(monkeypatch):
    install_colab(monkeypatch, nbformat.v4.new_notebook())
    stderr = "ERROR: HTTP error 404 while getting https://github.com/.../crsky-0.1.0-py3-none-any.whl"
    with pytest.raises(RuntimeError) as error:
        run_setup_cell(monkeypatch, returncode=1, stderr=stderr)
    message = str(error.value)
    assert message.startswith("Installing the course package failed (pip exit code 1)")
    assert stderr in message and "What to do:" in message and "Restart session" in message
    assert error.value.__cause__ is None and "CalledProcessError" not in message


# ---------------------------------------------------- check() in Colab's format
def small_graded_notebook():
    """Three cells: an answer and two tests (one passes, one fails), multi-line sources."""
    def meta(grade_id, grade, solution, points=None):
        m = {"grade": grade, "solution": solution, "locked": not solution, "grade_id": grade_id, "schema_version": 3}
        if points is not None:
            m["points"] = points
        return {"nbgrader": m}

    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1\ny = 2\n", metadata=meta("answer", False, True)),
        nbformat.v4.new_code_cell("assert x + y == 3\nprint('ok')\n", metadata=meta("test_sum", True, False, 1)),
        nbformat.v4.new_code_cell("assert x == 2, 'x is not 2'\n", metadata=meta("test_x", True, False, 2)),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def test_open_notebook_normalises_colabs_lists_of_lines(monkeypatch):
    install_colab(monkeypatch, small_graded_notebook())
    nb = colab.open_notebook()
    assert nb.cells[0].source == "x = 1\ny = 2\n"
    nbformat.validate(nb)


def test_check_in_colab_runs_the_open_notebook(monkeypatch, tmp_path, capsys):
    """check() and check("its name") alike: Colab's notebook lives in the browser, not on disk."""
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv(GUARD, raising=False)
    monkeypatch.chdir(tmp_path)
    install_colab(monkeypatch, small_graded_notebook())
    for args in ((), ("01_sky.ipynb",)):
        assert check(*args, timeout=60) is None
        out = capsys.readouterr().out
        assert out.startswith("checking the notebook open in Colab")
        assert re.search(r"^test_sum\s+passed\s+1.0/1", out, flags=re.M)
        assert re.search(r"^test_x\s+FAILED\s+0.0/2\s+AssertionError: x is not 2", out, flags=re.M)
        assert "visible tests: 1 of 3 points" in out


def test_check_outside_colab_asks_for_the_notebooks_name(monkeypatch, capsys):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv(GUARD, raising=False)
    assert check() is None
    assert capsys.readouterr().out == ("the self-check could not run: give the notebook's name, e.g. "
                                       "check('02_kernel.ipynb'): only in Colab can the open notebook be read without it.\n")


# ------------------------------------------- grading runs and the recursion guard
@pytest.mark.parametrize("value, expected", [("autograde", True), ("validate", True), ("", False), ("other", False)])
def test_grading_run_is_autograde_or_validate(monkeypatch, value, expected):
    monkeypatch.setenv("NBGRADER_EXECUTION", value)
    assert course.grading_run() is expected


def test_validate_never_trains_at_full_size(monkeypatch):
    monkeypatch.setenv("CRSKY_SIZE", "gpu")
    monkeypatch.setenv("NBGRADER_EXECUTION", "validate")
    assert course.size(verbose=False).name == "small"


def test_training_notebook_skips_training_through_the_one_helper():
    for folder in ("solutions", "notebooks"):
        text = (ROOT / folder / "03_training" / "03_training.ipynb").read_text()
        assert "training.fit_unless_grading(" in text and "AUTOGRADING" not in text
        assert "NBGRADER_EXECUTION" not in text


@pytest.mark.parametrize("env", [{GUARD: "1"}, {"NBGRADER_EXECUTION": "validate"}, {"NBGRADER_EXECUTION": "autograde"}])
def test_check_inside_a_check_or_grading_run_returns_at_once(monkeypatch, capsys, env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert check("no-such-notebook.ipynb") is None
    assert "check() skipped" in capsys.readouterr().out


def test_a_notebook_that_checks_itself_does_not_recurse(monkeypatch, tmp_path, capsys):
    """The uncommented last cell: the self-check's kernel runs check() on the same notebook;
    that inner call must return at once (it once started a kernel per level, without end)."""
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv(GUARD, raising=False)
    nb = small_graded_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(
        "import contextlib, io\nfrom crsky.selfcheck import check\n"
        "with contextlib.redirect_stdout(io.StringIO()) as inner:\n    check('self.ipynb')\n"))
    nb.cells.append(nbformat.v4.new_code_cell(
        "assert inner.getvalue().startswith('check() skipped'), inner.getvalue()\n",
        metadata={"nbgrader": {"grade": True, "solution": False, "locked": True, "grade_id": "test_inner",
                               "points": 1, "schema_version": 3}}))
    nbformat.write(nb, tmp_path / "self.ipynb")
    rows = check_file(tmp_path / "self.ipynb", timeout=60)
    assert [r[:2] for r in rows] == [("test_sum", "passed"), ("test_x", "FAILED"), ("test_inner", "passed")]


def test_the_release_helper_finds_every_setup_cell_in_step():
    from crsky.release import sync

    assert sync(write=False) == []
