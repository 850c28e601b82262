"""crsky.limits is the one home of the course's limits: the students' hand-in (crsky.submit)
refuses exactly what the grader's collection (crsky.grading.collect) would leave out, and the
nbgrader configurations give a cell the same time."""

import ast
import dataclasses
import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest
from traitlets.config import Config

from crsky import limits
from crsky import submit as submit_module
from crsky.course import ASSIGNMENTS
from crsky.grading.collect import Limits, collect
from crsky.submit import SubmissionError, pack

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "03_training"


def keras_file(path, size):
    """A zip (what a ``.keras`` file is) of exactly ``size`` bytes on disk."""
    def write(member_bytes):
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("model.weights.h5", bytes(member_bytes))

    write(0)
    write(size - path.stat().st_size)
    assert path.stat().st_size == size and zipfile.is_zipfile(path)
    return path


def student_notebook(tmp_path, model_size):
    folder = tmp_path / "work" / ASSIGNMENT
    shutil.copytree(ROOT / "solutions" / ASSIGNMENT, folder, ignore=shutil.ignore_patterns("*.keras"))
    keras_file(folder / "dgcnn.keras", model_size)
    return folder / f"{ASSIGNMENT}.ipynb"


def hand_in(notebook, out):
    """What ``crsky.submit`` does with a saved notebook: check it and its files, write the zip."""
    return pack(nbformat.read(notebook, as_version=4), ASSIGNMENT, notebook.parent, out)


def test_the_module_imports_nothing():
    """Colab's set-up and the hub's nbgrader configuration read it before anything else."""
    tree = ast.parse((ROOT / "crsky" / "limits.py").read_text())
    assert not [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


def test_the_grader_and_the_hand_in_use_the_same_numbers():
    defaults = {field.name: field.default for field in dataclasses.fields(Limits)}
    assert defaults == {"notebook_bytes": limits.NOTEBOOK_BYTES, "model_bytes": limits.MODEL_BYTES,
                        "other_file_bytes": limits.OTHER_FILE_BYTES, "submission_bytes": limits.SUBMISSION_BYTES,
                        "files": limits.SUBMISSION_FILES, "zip_members": limits.ZIP_MEMBERS}
    assert (submit_module.MAX_NOTEBOOK_BYTES, submit_module.MAX_FILE_BYTES) == (limits.NOTEBOOK_BYTES,
                                                                                limits.MODEL_BYTES)
    # What crsky.submit packs at most (a notebook and its files) fits in one submission.
    most = limits.NOTEBOOK_BYTES + limits.MODEL_BYTES * max(map(len, submit_module.FILES.values()))
    assert most <= limits.SUBMISSION_BYTES and 1 + max(map(len, submit_module.FILES.values())) <= limits.SUBMISSION_FILES
    assert (limits.MODEL_BYTES, limits.CELL_TIMEOUT_S, limits.TASK_TIMEOUT_S) == (25 * 2**20, 120, 900)
    assert limits.CELL_TIMEOUT_S < limits.TASK_TIMEOUT_S


def test_a_model_over_the_graders_limit_is_refused_at_hand_in(tmp_path):
    """A 30 MiB dgcnn.keras: the grader would stage at most 25 MiB of it, so submit refuses it."""
    notebook = student_notebook(tmp_path, 30 * limits.MiB)
    with pytest.raises(SubmissionError) as refused:
        hand_in(notebook, tmp_path / "alice.zip")
    message = str(refused.value)
    assert "dgcnn.keras is 30.0 MiB, more than the 25.0 MiB the grader takes" in message, message
    assert "left out at grading" in message and not (tmp_path / "alice.zip").exists()


@pytest.mark.parametrize("extra", [0, 1], ids=["at the limit", "one byte over"])
def test_what_submit_packs_the_grader_stages_whole(tmp_path, extra):
    """At exactly the limit both sides accept the model; one byte more, submit refuses it
    and the grader, handed the same file anyway, leaves it out."""
    size = limits.MODEL_BYTES + extra
    notebook = student_notebook(tmp_path, size)
    submissions = tmp_path / "submissions"
    if extra == 0:
        hand_in(notebook, submissions / "alice.zip")
    else:
        with pytest.raises(SubmissionError, match="more than the 25.0 MiB"):
            hand_in(notebook, submissions / "alice.zip")
        shutil.copytree(notebook.parent, submissions / "alice" / ASSIGNMENT)  # handed in some other way
    [alice] = collect(submissions, tmp_path / "staging", ASSIGNMENTS)
    staged = alice.folder / ASSIGNMENT / "dgcnn.keras"
    if extra == 0:
        assert not any(alice.problems.values()), alice.problems
        assert staged.stat().st_size == size
    else:
        assert not staged.exists()
        assert "left out 03_training/dgcnn.keras" in " ".join(alice.problems[ASSIGNMENT])
        assert "25.0 MiB" in " ".join(alice.problems[ASSIGNMENT])


def read_config(path):
    config = Config()
    namespace = {"get_config": lambda: config, "__file__": str(path), "load_subconfig": lambda _: None}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return config


@pytest.mark.parametrize("path", ["grading/nbgrader_config.py", "docker/jupyter/nbgrader_config.py"])
def test_nbgrader_gives_a_cell_the_course_limit(path):
    """Autograde (the course's configuration) and the hub's Validate button (the image's)."""
    assert read_config(ROOT / path).Execute.timeout == limits.CELL_TIMEOUT_S


def test_a_notebook_of_too_many_cells_is_refused_at_hand_in_and_at_grading(tmp_path):
    """Every cell costs the grader time: more than limits.NOTEBOOK_CELLS is refused on both sides."""
    notebook = student_notebook(tmp_path, 1000)
    nb = nbformat.read(notebook, as_version=4)
    nb.cells += [nbformat.v4.new_code_cell("") for _ in range(limits.NOTEBOOK_CELLS - len(nb.cells) + 1)]
    nbformat.write(nb, notebook)
    with pytest.raises(SubmissionError, match=f"{limits.NOTEBOOK_CELLS + 1:,} cells, more than the"):
        hand_in(notebook, tmp_path / "alice.zip")
    submissions = tmp_path / "submissions"
    shutil.copytree(notebook.parent, submissions / "alice" / ASSIGNMENT)
    [alice] = collect(submissions, tmp_path / "staging", ASSIGNMENTS)
    assert ASSIGNMENT not in alice.assignments
    assert f"{limits.NOTEBOOK_CELLS + 1:,} cells" in " ".join(alice.problems[ASSIGNMENT])
