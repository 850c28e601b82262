"""Which cells the protected run takes from a submission (crsky.grading.answers): the names
a cell reads by Python's own scoping rules, and the student's own cells an answer needs,
found in the order the notebook runs them."""

import nbformat

from crsky.grading import answers


def test_a_cell_reads_the_default_values_decorators_and_free_names_of_its_functions():
    source = ("@register\n"
              "def build(k=k, widths=widths):\n"
              "    inner = ops.relu\n"
              "    return [inner(w) for w in widths] + [helper(k)]\n"
              "class Net(Base):\n"
              "    size = width\n"
              "    def call(self, x):\n"
              "        return ops.sum(x) * self.size\n")
    assert answers.read_names(source) == {"register", "k", "widths", "ops", "helper", "Base", "width"}


def test_a_cell_does_not_read_what_it_binds_itself():
    source = ("import numpy as np\n"
              "model = np.zeros(3)\n"
              "model = model + 1\n"
              "def f(x):\n"
              "    global g\n"
              "    g = x\n"
              "    return len(x)\n"
              "%time y = f(model)\n")
    assert answers.read_names(source) == set()
    assert answers.bound_names(source) >= {"np", "model", "f", "g", "y"}


def test_a_star_import_binds_what_it_cannot_name():
    assert answers.bound_names("from keras.layers import *\nfrom os import path") == {answers.STAR, "path"}


def _notebooks(student_cells):
    """An instructor's notebook (set-up, two answers and a test after each) and a student's copy
    whose code cells are ``student_cells``: (grade_id or None, source) in notebook order."""
    def cell(grade_id, source, solution=False, grade=False):
        made = nbformat.v4.new_code_cell(source)
        if grade_id:
            made.metadata["nbgrader"] = {"grade_id": grade_id, "solution": solution, "grade": grade,
                                         "locked": not solution, "schema_version": 3}
        return made

    source = nbformat.v4.new_notebook(cells=[
        cell("setup", "import numpy as np"),
        cell("first", "def first():\n    return np.ones(2)", solution=True),
        cell("test_first", "assert first().sum() == 2", grade=True),
        cell("second", "from keras import ops\ndef second(x):\n    return ops.sum(x)", solution=True),
        cell("test_second", "assert second(np.ones(2)) == 2", grade=True)])
    student = nbformat.v4.new_notebook(cells=[
        cell(gid, text, solution=gid in ("first", "second")) if gid else cell(None, text)
        for gid, text in student_cells])
    return source, student


def _helpers(plan):
    return [(step["kind"], step["source"]) for step in plan["steps"] if step["kind"] in ("helper", "answer")]


def test_an_import_in_a_cell_of_its_own_runs_before_the_answer_that_needs_it():
    """The instructor's later answer imports ``ops`` too: that is no reason to skip the
    student's own import cell before the first answer that reads it."""
    source, student = _notebooks([
        (None, "from keras import ops"),
        ("first", "def first():\n    return ops.ones(2)"),
        ("second", "from keras import ops\ndef second(x):\n    return ops.sum(x)")])
    assert _helpers(answers.plan(source, student)) == [
        ("helper", "from keras import ops"), ("answer", "def first():\n    return ops.ones(2)"),
        ("answer", "from keras import ops\ndef second(x):\n    return ops.sum(x)")]


def test_a_settings_cell_used_as_default_values_runs_and_a_star_import_cell_too():
    source, student = _notebooks([
        (None, "WIDTH = 2"),
        (None, "from numpy import *"),
        ("first", "def first(n=WIDTH):\n    return ones(n)"),
        (None, "print('exploring')"),
        ("second", "def second(x):\n    return x.sum()")])
    assert _helpers(answers.plan(source, student)) == [
        ("helper", "WIDTH = 2"), ("helper", "from numpy import *"),
        ("answer", "def first(n=WIDTH):\n    return ones(n)"), ("answer", "def second(x):\n    return x.sum()")]


def test_a_name_an_earlier_cell_bound_is_not_looked_for_again():
    source, student = _notebooks([
        ("first", "import math\ndef first():\n    return np.ones(2)"),
        (None, "import math"),
        ("second", "def second(x):\n    return math.fsum(x)")])
    assert [kind for kind, _ in _helpers(answers.plan(source, student))] == ["answer", "answer"]
