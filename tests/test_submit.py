"""crsky.submit: the hand-in zip has the layout the grading script takes, and every way a
submission can be wrong stops it with a message."""

import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest
from colab_stub import install as install_colab

from crsky import submit as submit_module
from crsky.selfcheck import GUARD
from crsky.submit import ASSIGNMENTS, FILES, SubmissionError, hand_in, infer_assignment, main, submit

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "tests" / "fixtures" / "dgcnn_textbook.keras"


@pytest.fixture(autouse=True)
def _not_grading(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv(GUARD, raising=False)


def student_folder(tmp_path, assignment, model=True):
    folder = tmp_path / "work" / assignment
    shutil.copytree(ROOT / "solutions" / assignment, folder, ignore=shutil.ignore_patterns("*.keras"))
    if model:
        shutil.copy(MODEL, folder / "dgcnn.keras")
    return folder / f"{assignment}.ipynb"


def test_files_agree_with_the_grading_config():
    from traitlets.config import Config

    config = Config()
    namespace = {"get_config": lambda: config, "__file__": str(ROOT / "grading" / "nbgrader_config.py")}
    exec((ROOT / "grading" / "nbgrader_config.py").read_text(), namespace)
    assert {a: tuple(files) for a, files in config.Autograde.exclude_overwriting.items()} == FILES


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_assignment_is_found_from_the_notebook(assignment):
    nb = nbformat.read(ROOT / "notebooks" / assignment / f"{assignment}.ipynb", as_version=4)
    assert infer_assignment(nb) == assignment
    nb.cells[0].source = "no badge"
    assert infer_assignment(nb) is None
    assert infer_assignment(nb, f"somewhere/{assignment}.ipynb") == assignment


def test_training_notebook_zip_is_what_the_grader_collects(tmp_path):
    notebook = student_folder(tmp_path, "03_training")
    out = hand_in(notebook, out=tmp_path / "submissions" / "alice.zip")
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["03_training/03_training.ipynb", "03_training/dgcnn.keras"]
        assert archive.read("03_training/dgcnn.keras") == MODEL.read_bytes()
        nbformat.validate(nbformat.reads(archive.read("03_training/03_training.ipynb").decode(), as_version=4))
    from crsky.course import ASSIGNMENTS
    from crsky.grading.collect import collect

    [submission] = collect(tmp_path / "submissions", tmp_path / "staging", ASSIGNMENTS)
    assert submission.student == "alice" and submission.assignments == ["03_training"]
    assert not any(submission.problems.values()), submission.problems
    staged = submission.folder / "03_training"
    assert sorted(p.name for p in staged.iterdir()) == ["03_training.ipynb", "dgcnn.keras"]


def test_default_zip_is_named_after_the_assignment_beside_the_notebook(tmp_path, capsys):
    notebook = student_folder(tmp_path, "02_kernel", model=False)
    out = hand_in(notebook)
    assert out == notebook.parent / "02_kernel.zip"
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == ["02_kernel/02_kernel.ipynb"]
    assert "wrote" in capsys.readouterr().out


def test_missing_model_is_refused_with_what_to_do(tmp_path):
    notebook = student_folder(tmp_path, "03_training", model=False)
    with pytest.raises(SubmissionError, match=r"no dgcnn.keras in .*Run the training cells"):
        hand_in(notebook)
    assert not list(notebook.parent.glob("*.zip"))


def test_a_model_that_is_not_a_keras_file_is_refused(tmp_path):
    notebook = student_folder(tmp_path, "03_training", model=False)
    (notebook.parent / "dgcnn.keras").write_text("not a model")
    with pytest.raises(SubmissionError, match="not a saved Keras model"):
        hand_in(notebook)


def test_a_broken_notebook_is_refused(tmp_path):
    notebook = student_folder(tmp_path, "01_sky", model=False)
    notebook.write_text(notebook.read_text()[:-200])
    with pytest.raises(SubmissionError, match="not a valid notebook"):
        hand_in(notebook)
    assert main([str(notebook)]) == 1


def test_size_limits(tmp_path, monkeypatch):
    notebook = student_folder(tmp_path, "03_training")
    monkeypatch.setattr(submit_module, "MAX_FILE_BYTES", 1000)
    with pytest.raises(SubmissionError, match="dgcnn.keras is .* more than"):
        hand_in(notebook)
    monkeypatch.setattr(submit_module, "MAX_NOTEBOOK_BYTES", 1000)
    with pytest.raises(SubmissionError, match="more than .* allowed: clear large outputs"):
        hand_in(notebook)


def test_unknown_assignment(tmp_path):
    notebook = tmp_path / "mine.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), notebook)
    with pytest.raises(SubmissionError, match="cannot tell which assignment"):
        hand_in(notebook)
    with pytest.raises(SubmissionError, match="unknown assignment"):
        hand_in(notebook, assignment="05_other")


def test_colab_submits_the_open_notebook_and_downloads_the_zip(tmp_path, monkeypatch):
    nb = nbformat.read(ROOT / "notebooks" / "03_training" / "03_training.ipynb", as_version=4)
    downloads = install_colab(monkeypatch, nb)
    monkeypatch.chdir(tmp_path)  # Colab's working folder (/content), where model.save wrote the model
    shutil.copy(MODEL, tmp_path / "dgcnn.keras")
    out = hand_in()
    assert out == tmp_path / "03_training.zip" and downloads == [str(out)]
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["03_training/03_training.ipynb", "03_training/dgcnn.keras"]
        packed = nbformat.reads(archive.read("03_training/03_training.ipynb").decode(), as_version=4)
    assert [c.source for c in packed.cells] == [c.source for c in nb.cells]


def test_outside_colab_a_name_is_needed(tmp_path):
    with pytest.raises(SubmissionError, match="give the notebook's name"):
        hand_in()


def test_submit_inside_a_grading_run_does_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert hand_in() is None
    assert "submit() skipped" in capsys.readouterr().out


def test_in_a_notebook_a_failed_hand_in_is_one_line_and_nothing_is_shown(tmp_path, monkeypatch, capsys):
    notebook = student_folder(tmp_path, "03_training", model=False)
    monkeypatch.chdir(notebook.parent)
    assert submit("03_training.ipynb") is None
    out = capsys.readouterr().out
    assert out.startswith("nothing was handed in: no dgcnn.keras in ") and out.count("\n") == 1
    shutil.copy(MODEL, notebook.parent / "dgcnn.keras")
    assert submit("03_training.ipynb") is None
    assert "wrote 03_training.zip" in capsys.readouterr().out


def test_a_name_is_found_below_the_folder_a_terminal_opens_in(tmp_path, monkeypatch, capsys):
    notebook = student_folder(tmp_path, "02_kernel", model=False)
    monkeypatch.chdir(tmp_path)
    assert main(["02_kernel.ipynb"]) == 0
    assert (notebook.parent / "02_kernel.zip").is_file()
    assert main(["04_graph.ipynb"]) == 1
    assert "error: no 04_graph.ipynb in" in capsys.readouterr().err


def test_colab_packs_the_open_notebook_when_given_its_name(tmp_path, monkeypatch):
    nb = nbformat.read(ROOT / "notebooks" / "01_sky" / "01_sky.ipynb", as_version=4)
    downloads = install_colab(monkeypatch, nb)
    monkeypatch.chdir(tmp_path)
    out = hand_in("01_sky.ipynb")
    assert out == tmp_path / "01_sky.zip" and downloads == [str(out)]
