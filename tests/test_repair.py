"""crsky.grading.repair on the course's four notebooks answered with the solutions, damaged the
ways editors and students damage them; then end to end with nbgrader on 02_kernel."""

import copy
import shutil

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from crsky.course import COURSE_ROOT as ROOT
from crsky.grading.repair import defined_names, repair
from crsky.grading.samples import answered

ASSIGNMENTS = ["01_sky", "02_kernel", "03_training", "04_graph"]


def release(assignment):
    return nbformat.read(ROOT / "notebooks" / assignment / f"{assignment}.ipynb", as_version=4)


def nbg(cell):
    return cell.metadata.get("nbgrader")


def gid(cell):
    return (nbg(cell) or {}).get("grade_id")


def graded_ids(nb):
    return [gid(c) for c in nb.cells if gid(c)]


def stripped(nb, new_ids=False):
    """All cell metadata gone (Colab, other editors); with new_ids, ids regenerated too."""
    nb = copy.deepcopy(nb)
    for n, cell in enumerate(nb.cells):
        cell.metadata = {}
        if new_ids:
            cell.id = f"regenerated-{n:03d}"
    return nb


def index_of(nb, grade_id):
    [i] = [i for i, c in enumerate(nb.cells) if gid(c) == grade_id]
    return i


def solutions(assignment):
    return [gid(c) for c in release(assignment).cells if (nbg(c) or {}).get("solution")]


def grade_cells_of(assignment):
    return [gid(c) for c in release(assignment).cells if (nbg(c) or {}).get("grade") and not nbg(c).get("solution")]


def checked(nb, rel):
    """repair(nb), checked for what holds in every case: the input untouched, a valid notebook
    that nbgrader's own validator accepts, nothing left to repair a second time."""
    from nbgrader.nbgraderformat import MetadataValidator

    before = copy.deepcopy(nb)
    result = repair(nb, rel)
    assert nb == before
    nbformat.validate(result.notebook)
    MetadataValidator().validate_nb(result.notebook)
    assert result.notebook.nbformat_minor >= 5
    again = repair(result.notebook, rel)
    assert again.notes == [] and again.notebook == result.notebook
    return result


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_notebook_is_returned_unchanged(assignment):
    nb = answered(assignment)
    result = checked(nb, release(assignment))
    assert result.notes == [] and result.errors == []
    assert result.notebook == nb and result.notebook is not nb


@pytest.mark.parametrize("new_ids", [False, True], ids=["same-ids", "new-ids"])
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_stripped_metadata_is_restored(assignment, new_ids):
    good = answered(assignment)
    result = checked(stripped(good, new_ids), release(assignment))
    assert result.errors == []
    assert [c.metadata for c in result.notebook.cells] == [c.metadata for c in good.cells]
    assert [(c.cell_type, c.source) for c in result.notebook.cells] == [(c.cell_type, c.source) for c in good.cells]
    assert len(result.notes) == len(graded_ids(good))
    if new_ids:  # found by content (locked cells) and position (answers); the student's ids are kept
        assert [c.id for c in result.notebook.cells] == [f"regenerated-{n:03d}" for n in range(len(good.cells))]
        assert all("found by its" in note for note in result.notes)


@pytest.mark.parametrize("assignment, grade_id", [(a, g) for a in ASSIGNMENTS for g in solutions(a)])
def test_duplicated_answer_keeps_the_last_copy(assignment, grade_id):
    nb = answered(assignment)
    i = index_of(nb, grade_id)
    first = nb.cells[i]
    first.source = first.source + "\n# first attempt"
    copy_ = copy.deepcopy(first)
    copy_.id = first.id + "-1"  # Jupyter's paste: same metadata, a new id
    copy_.source = copy_.source.replace("# first attempt", "# second attempt")
    nb.cells.insert(i + 1, copy_)
    result = checked(nb, release(assignment))
    cells = result.notebook.cells
    assert len(cells) == len(nb.cells) and result.errors == []
    assert nbg(cells[i]) is None and "# first attempt" in cells[i].source
    assert gid(cells[i + 1]) == grade_id and "# second attempt" in cells[i + 1].source
    assert graded_ids(result.notebook) == graded_ids(release(assignment))
    [note] = result.notes
    assert f"cell {i + 1} is a copy" in note and f"cell {i + 2}, the last copy" in note


@pytest.mark.parametrize("assignment, grade_id", [(a, g) for a in ASSIGNMENTS for g in solutions(a)])
def test_deleted_answer_is_put_back_unanswered_and_reported(assignment, grade_id):
    rel = release(assignment)
    nb = answered(assignment)
    del nb.cells[index_of(nb, grade_id)]
    result = checked(nb, rel)
    assert graded_ids(result.notebook) == graded_ids(rel)  # in its place, before its tests
    put_back = result.notebook.cells[index_of(result.notebook, grade_id)]
    original = rel.cells[index_of(rel, grade_id)]
    assert put_back.source == original.source and nbg(put_back) == nbg(original)
    assert "NotImplementedError" in put_back.source or "YOUR ANSWER HERE" in put_back.source
    [error] = result.errors
    assert grade_id in error and "not found" in error
    assert result.notes == []


@pytest.mark.parametrize("assignment, grade_id", [(a, g) for a in ASSIGNMENTS for g in grade_cells_of(a)])
def test_deleted_test_cell_is_put_back(assignment, grade_id):
    rel = release(assignment)
    nb = answered(assignment)
    del nb.cells[index_of(nb, grade_id)]
    result = checked(nb, rel)
    assert result.errors == []
    assert graded_ids(result.notebook) == graded_ids(rel)
    cell = result.notebook.cells[index_of(result.notebook, grade_id)]
    assert cell == {**rel.cells[index_of(rel, grade_id)], "outputs": [], "execution_count": None}
    [note] = result.notes
    assert grade_id in note and "put back" in note


def test_deleted_read_only_cell_is_put_back():
    rel = release("04_graph")
    nb = answered("04_graph")
    del nb.cells[index_of(nb, "question_intro")]
    result = checked(nb, rel)
    assert graded_ids(result.notebook) == graded_ids(rel) and result.errors == []
    assert "question_intro" in result.notes[0]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_added_cell_claiming_points_is_stripped(assignment):
    nb = answered(assignment)
    bonus = new_code_cell("print('full marks please')")
    bonus.metadata.nbgrader = {"grade": True, "solution": False, "locked": True, "grade_id": "bonus",
                               "points": 100, "schema_version": 3}
    at = index_of(nb, solutions(assignment)[0]) + 1
    nb.cells.insert(at, bonus)
    result = checked(nb, release(assignment))
    cell = result.notebook.cells[at]
    assert cell.source == bonus.source and "nbgrader" not in cell.metadata
    assert graded_ids(result.notebook) == graded_ids(release(assignment))
    [note] = result.notes
    assert "'bonus'" in note and "100 points" in note and "no points" in note


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_edited_points_are_restored(assignment):
    nb = answered(assignment)
    test = grade_cells_of(assignment)[0]
    i = index_of(nb, test)
    nb.cells[i].metadata.nbgrader["points"] = 100
    result = checked(nb, release(assignment))
    assert result.notebook == answered(assignment)
    [note] = result.notes
    assert test in note and "points 100 instead of" in note


def test_edited_test_cell_gets_its_source_back():
    nb = answered("02_kernel")
    nb.cells[index_of(nb, "test_kernel_shape")].source = "pass"
    result = checked(nb, release("02_kernel"))
    assert result.notebook == answered("02_kernel")
    assert "test_kernel_shape" in result.notes[0] and "edited" in result.notes[0]


def test_answer_in_a_new_cell_below_the_stub_is_found():
    """The student kept the unanswered cell and wrote the answer in a cell below; the editor
    then dropped all metadata and ids: the cell that defines kernel_nn last is the answer."""
    rel = release("02_kernel")
    nb = answered("02_kernel")
    i = index_of(nb, "kernel_nn")
    nb.cells.insert(i, copy.deepcopy(rel.cells[index_of(rel, "kernel_nn")]))
    result = checked(stripped(nb, new_ids=True), rel)
    cells = result.notebook.cells
    assert "NotImplementedError" in cells[i].source and nbg(cells[i]) is None
    assert gid(cells[i + 1]) == "kernel_nn" and "NotImplementedError" not in cells[i + 1].source


def test_answer_moved_away_from_the_exercise_is_found_by_name():
    nb = answered("02_kernel")
    answer = nb.cells.pop(index_of(nb, "kernel_nn"))
    answer.metadata, answer.id = {}, "moved"
    nb.cells.insert(3, answer)
    result = checked(nb, release("02_kernel"))
    assert gid(result.notebook.cells[3]) == "kernel_nn" and result.errors == []
    assert "by the name it defines" in result.notes[0]


def test_missing_answer_defined_in_another_answer_is_not_overwritten_by_the_stub():
    """to_lonlat and count_close_pairs in one cell: the unanswered count_close_pairs cell would
    replace the student's function, so a comment cell stands in its place."""
    nb = answered("01_sky")
    i, j = index_of(nb, "to_lonlat"), index_of(nb, "count_close_pairs")
    nb.cells[i].source += "\n\n" + nb.cells[j].source
    del nb.cells[j]
    result = checked(nb, release("01_sky"))
    put_back = result.notebook.cells[index_of(result.notebook, "count_close_pairs")]
    assert "count_close_pairs" not in defined_names(put_back.source) and put_back.source.startswith("#")
    assert result.errors == [] and "count_close_pairs" in result.notes[0]


def test_old_notebook_format_without_ids():
    nb = answered("03_training")
    nb.nbformat_minor = 4
    for cell in nb.cells:
        del cell["id"]
    result = checked(nb, release("03_training"))
    assert result.notes == [] and result.errors == []
    assert all(c.get("id") for c in result.notebook.cells)


def test_defined_names():
    assert defined_names("import numpy as np\nfrom a import b\ndef f(): x = 1\nclass C: pass\ny, (z, w) = 1, (2, 3)\n"
                         "if True:\n    g = 1\n%matplotlib inline\n!pip install x") == {"np", "b", "f", "C", "y", "z",
                                                                                         "w", "g"}
    assert defined_names("def f(:\n    pass\nk = 1") == {"f", "k"}  # a syntax error: read line by line


# ------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def autograded(tmp_path_factory):
    """02_kernel released by nbgrader with the course config, four students autograded in one run."""
    from nbgrader.api import Gradebook, MissingEntry

    from crsky.grading import nbgrader_cli

    work = tmp_path_factory.mktemp("repair-course")
    env = nbgrader_cli.nbgrader_env(work)
    db_url = f"sqlite:///{work / 'gradebook.db'}"
    assignment = "02_kernel"
    shutil.copytree(ROOT / "solutions" / assignment, work / "source" / assignment)
    run = nbgrader_cli.nbgrader(["generate_assignment", assignment, "--force"], work, db_url, env, 300)
    assert run.returncode == 0, run.stdout[-2000:]
    rel = nbformat.read(work / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    duplicated = answered(assignment)
    i = index_of(duplicated, "kernel_nn")
    copy_ = copy.deepcopy(duplicated.cells[i])
    copy_.id += "-1"
    duplicated.cells.insert(i + 1, copy_)
    students = {
        "stripped": stripped(answered(assignment)),
        "stripped_repaired": repair(stripped(answered(assignment)), rel).notebook,
        "duplicated": duplicated,
        "duplicated_repaired": repair(duplicated, rel).notebook,
    }
    for student, nb in students.items():
        folder = work / "submitted" / student / assignment
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{assignment}.ipynb")
    nbgrader_cli.nbgrader(["autograde", assignment, "--force"], work, db_url, env, 600, 60)
    scores = {}
    with Gradebook(f"sqlite:///{work / 'gradebook.db'}") as gradebook:
        for student in students:
            try:
                scores[student] = gradebook.find_submission(assignment, student).score
            except MissingEntry:
                scores[student] = None
    return scores


@pytest.mark.grading
@pytest.mark.parametrize("student, expected", [
    ("stripped", 0),             # nbgrader: KeyError in OverwriteCells.add_missing_grade_cells
    ("stripped_repaired", 6),
    ("duplicated", 6),           # nbgrader alone: KeyError in add_missing_task_cells; the course's ForgetUnknownCells drops the emptied copy
    ("duplicated_repaired", 6),
])
def test_repaired_notebooks_score_full_points_with_nbgrader(autograded, student, expected):
    assert autograded[student] == expected
