"""Every sample submission of the two corpora, graded as nbgrader autograde grades it.

Each variant is handed in (tests/corpus.py), then graded by
:func:`crsky.grading.nbgrader_steps.protected_grades` in the bubblewrap sandbox: the
protected test run nbgrader's ProtectedExecute step runs (the saved model of notebook 3 is
scored elsewhere and left out here).

* An honest variant (tests/corpus_honest.py), a correct answer written another way, gets
  full points on every autograded test, no review finding and nothing withheld.
* A hostile variant (tests/corpus_hostile.py) gets no more than ``at_most`` on each test
  (tests it does not name: what the course's answer gets, their full points), and is
  flagged for review when ``flagged`` is True (not flagged when False; either when None).

A sandboxed run costs one process (5-15 s on two quiet cores, more for notebooks 2-4,
which import TensorFlow). The variants marked cheap below run by default; the others are
marked ``slow`` (``pytest -m slow tests/test_corpus.py``).
"""

import os

import nbformat
import pytest

import corpus
import corpus_honest
import corpus_hostile
from crsky import limits
from crsky.course import COURSE_ROOT
from crsky.grading import nbgrader_steps, sandbox

pytestmark = [pytest.mark.grading,
              pytest.mark.skipif(not sandbox.probe()[0] and os.environ.get("CRSKY_REQUIRE_SANDBOX") != "1",
                                 reason=f"no grading sandbox here: {sandbox.probe()[1]}")]

# Run by default (one of each kind of honest work, the attacks most likely to gain): the rest is slow.
CHEAP = {
    "o01_loops", "o01_cell_magic_time", "o01_shell_and_os", "o01_helper_cells", "o01_print_plot_warn",
    "o01_reimports_and_globals", "o01_reslice_data", "o01_exploration_cells", "o01_shadowed_builtin_names",
    "o02_check_cells", "o04_dict_of_lists_plot",
    # ways of writing that the grader once docked: nested Dense layers, clear_session, a star
    # import, an import or a settings cell of its own, a shared sky graph, metrics=["acc"]
    "o02_sequential_mlp", "o02_clear_session_seed", "o02_star_import_cell", "o05_ops_import_cell",
    "o03_settings_cell_defaults", "o03_neighbor_indices_shared_graph", "o03_metric_alias_acc",
    # a child process of the cells reading or patching the runner's memory (/proc/<parent>/mem)
    "h04_child_reads_runner_memory", "h04_child_patches_runner_bytecode",
    "h01_sysmodules_numpy_all", "h01_rebind_x", "h01_mutate_x_in_place", "h01_import_hook_builtins",
    "h01_sysmodules_fake_module", "h01_meta_path_finder", "h01_int_equal_to_everything",
    "h01_ndarray_comparisons_pass", "h01_glob_notebooks_and_seeds",
    "h01_os_exit_in_test", "h01_huge_output", "h02_ctypes_zero_features",
}


# Attacks that still gain: the tests run in the process that runs the answers, so an answer the
# test calls can reach the test's own frame (sys._getframe, a traceback, a gc callback, a
# __hash__ the test's Counter runs) and plant or swap names there, read the hidden test's
# constants, or patch a library function for one call and put it back before anything is
# compared. Only running the tests apart from the answers' code closes these; until then each
# is expected to gain (strict: the day one stops gaining, this list must shrink). The same
# reach lets h05_print_compiled_hidden_tests print the hidden tests' names and constants (no
# whole hidden line) from the worker's frame: it gains no points, so it passes here.
KNOWN_HOLES = {
    "h03_test_globals_shadow_float", "h04_test_globals_shadow_set", "h04_test_globals_self_removing",
    "h04_node_hash_injects", "h04_read_hidden_expected", "h04_gc_callback_injects",
    "h05_labels_self_restoring_np", "h05_loss_shadow_float_global", "h05_layer_call_patches_numpy",
}


def _param(variant):
    marks = [] if variant.name in CHEAP else [pytest.mark.slow]
    if variant.name in KNOWN_HOLES:
        marks.append(pytest.mark.xfail(strict=True, raises=AssertionError,
                                       reason="a known hole: the tests share a process with the answers' code"))
    return pytest.param(variant, id=variant.name, marks=marks)


_SOURCES = {}


def source_notebook(assignment):
    if assignment not in _SOURCES:
        _SOURCES[assignment] = nbformat.read(COURSE_ROOT / "solutions" / assignment / f"{assignment}.ipynb",
                                             as_version=4)
    return _SOURCES[assignment]


def grade(variant, tmp_path, monkeypatch):
    """The variant handed in and graded in the sandbox: protected_grades' result."""
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")  # as nbgrader autograde runs it: the small size
    folder = corpus.submit(variant, tmp_path)
    submitted = nbformat.read(folder / f"{variant.assignment}.ipynb", as_version=4)
    return nbgrader_steps.protected_grades(source_notebook(variant.assignment), submitted, folder=folder)


def failures(result):
    """Each test cell's error outputs on the graded copy: {grade_id: 'Name: message'}."""
    found = {}
    for cell in result["notebook"].cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        errors = [f"{o.get('ename')}: {o.get('evalue', '')[:300]}" for o in cell.get("outputs", [])
                  if o.get("output_type") == "error"]
        if grade_id and errors:
            found[grade_id] = "; ".join(errors)
    return found


@pytest.mark.parametrize("variant", [_param(v) for v in corpus_honest.VARIANTS])
def test_honest_work_gets_full_points(variant, tmp_path, monkeypatch):
    result = grade(variant, tmp_path, monkeypatch)
    errors = failures(result)
    lost = {g: f"{p:g}/{m:g} ({errors.get(g, 'no error shown')})" for g, (p, m) in result["scores"].items() if p < m}
    assert result["scores"], f"{variant.name}: no autograded test was scored ({result['problem']})"
    assert not lost and not result["review"] and not result["withheld"] and result["problem"] is None, (
        f"honest variant {variant.name} ({variant.note}) lost points: {lost or 'none'}; "
        f"review findings: {result['review'] or 'none'}; withheld: {result['withheld'] or 'none'}; "
        f"problem: {result['problem']}")


@pytest.mark.parametrize("variant", [_param(v) for v in corpus_hostile.VARIANTS])
def test_hostile_work_gains_nothing(variant, tmp_path, monkeypatch):
    result = grade(variant, tmp_path, monkeypatch)
    errors = failures(result)
    at_most = variant.at_most or {}
    unknown = set(at_most) - set(result["scores"]) - set(nbgrader_steps.answers.scored_by_grader(
        source_notebook(variant.assignment)))
    assert not unknown, f"{variant.name}: at_most names tests the notebook does not have: {sorted(unknown)}"
    gained = {g: f"{p:g} > at most {at_most[g]:g} ({errors.get(g, 'passed')})"
              for g, (p, _) in result["scores"].items() if g in at_most and p > at_most[g] + 1e-9}
    assert not gained, (f"hostile variant {variant.name} ({variant.note}) gained points: {gained}; "
                        f"review findings: {result['review'] or 'none'}")
    if variant.flagged is True:
        assert result["review"] and result["withheld"], (
            f"hostile variant {variant.name} ({variant.note}) was not flagged for review; "
            f"scores {result['scores']}, test errors {errors}")
    elif variant.flagged is False:
        assert not result["review"], (
            f"hostile variant {variant.name} ({variant.note}) was flagged, but it changes nothing the tests rely "
            f"on (its test failures are the verdict): findings {result['review']}")
    size = len(nbformat.writes(result["notebook"]))
    assert size < limits.NOTEBOOK_BYTES, f"hostile variant {variant.name}: a graded notebook of {size:,} bytes"
    outputs = str([cell.get("outputs", []) for cell in result["notebook"].cells])
    leaked = [text for text in corpus_hostile.MUST_NOT_LEAK if text in outputs]
    assert not leaked, f"hostile variant {variant.name}: the graded notebook's outputs show {leaked}"


def test_the_lists_name_variants_of_the_corpora():
    honest = {v.name for v in corpus_honest.VARIANTS}
    hostile = {v.name for v in corpus_hostile.VARIANTS}
    assert CHEAP <= honest | hostile, f"CHEAP names no variant: {sorted(CHEAP - honest - hostile)}"
    assert KNOWN_HOLES <= hostile, f"KNOWN_HOLES names no hostile variant: {sorted(KNOWN_HOLES - hostile)}"
