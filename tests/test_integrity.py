"""Tamper detection: the static scan flags every way a solution cell can reach what the
tests rely on, and never the course's own answers; canaries catch a tampered kernel."""

import nbformat
import pytest

from crsky.course import ASSIGNMENTS, COURSE_ROOT
from crsky.grading import integrity
from crsky.grading.samples import answered

pytestmark = pytest.mark.grading


def notebooks(assignment):
    read = lambda folder: nbformat.read(COURSE_ROOT / folder / assignment / f"{assignment}.ipynb", as_version=4)
    return read("notebooks"), read("solutions")


def with_cell(assignment, code, position=None):
    nb = answered(assignment)
    index = position if position is not None else next(
        i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("solution")) + 1
    nb.cells.insert(index, nbformat.v4.new_code_cell(code))
    return nb


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_course_answers_are_not_flagged(assignment):
    release, source = notebooks(assignment)
    assert integrity.scan(answered(assignment), release, source) == []
    assert integrity.scan(source, release, source) == []  # the hidden tests are not student code either


HONEST = [
    "import numpy as np\nimport numpy as np",                      # importing again what the notebook imported
    "lon = 3\nvalues = [len(v) for v in ([1], [2, 3])]\nprint(max(values))",
    "def helper(v):\n    total = sum(v)\n    return total / len(v)\nhelper([1, 2])",
    "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()",
    "kernel_nn([keras.Input((4,)), keras.Input((4,))])",
    "from crsky.sky import vectors_to_lonlat\nvectors_to_lonlat(points[0])",
]


@pytest.mark.parametrize("code", HONEST)
def test_honest_extra_cells_are_not_flagged(code):
    release, source = notebooks("02_kernel")
    assert integrity.scan(with_cell("02_kernel", code), release, source) == []


ATTACKS = {
    # the five ways a wrong answer got full marks in the security review
    "input transformer": ("ip = get_ipython()\nip.input_transformers_cleanup.append(lambda lines: "
                          "[l.replace('assert', 'pass') for l in lines])", "get_ipython"),
    "shadowed builtins": ("len = lambda x: 3\ndef all(x):\n    return True\ntuple = lambda x: (None, 16)",
                          "rebinds the built-in name 'tuple'"),  # one the 02 tests read
    "patched method": ("import keras\nkeras.Model.count_params = lambda self: 4770", "changes an attribute of keras"),
    "replaced scorer": ("from crsky import grading as g\ng.scoring.score_saved_model = lambda *a, **k: 4.0",
                        "imports crsky.grading"),
    "display formatter": ("get_ipython().display_formatter.formatters['text/plain'].for_type(float, "
                          "lambda x, p, c: p.text('4.0'))", "get_ipython"),
    "import hook": ("import builtins\n_real = builtins.__import__\nbuiltins.__import__ = lambda *a, **k: _real(*a, **k)",
                    "imports builtins"),
    # and their disguises
    "dunder walk": ("f = [c for c in ().__class__.__base__.__subclasses__()]", "special attribute"),
    "builtins dict": ("__builtins__['len'] = lambda x: 3", "uses __builtins__"),
    "exec": ("exec(bytes.fromhex('6c656e203d2033').decode())", "exec"),
    "getattr by name": ("getattr(keras, 'Mo' + 'del')", "computed name"),
    "setattr": ("setattr(keras.Model, 'count_params', lambda self: 4770)", "setattr"),
    "shell escape": ("!kill -9 $PPID", "get_ipython"),
    "line magic": ("%load_ext something", "get_ipython"),
    "os": ("import os\nos.kill(os.getppid(), 9)", "imports os"),
    "from os": ("from os import environ", "imports os"),
    "sys.modules": ("import sys\nsys.modules['crsky.grading.scoring'] = None", "imports sys"),
    "subclass": ("class M(keras.Model):\n    def count_params(self):\n        return 4770", "defines a class"),
    "data overwritten": ("points[:] = 0", "changes the contents of points"),
    "data rebound": ("features = features * 0", "rebinds the name 'features'"),
    "module rebound": ("layers = None", "rebinds the name 'layers'"),
    "star import": ("from numpy import *", "imports *"),
    "pickle": ("import numpy\nnumpy.load('x.npy', allow_pickle=True)", "allow_pickle"),
    "global in function": ("def kernel_nn(data, nodes=16):\n    global tuple\n    tuple = None\n    return data[0]",
                           "rebinds the built-in name 'tuple'"),
    "type()": ("X = type('X', (object,), {})", "type()"),
    "globals": ("globals()['layers'] = None", "globals()"),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_tampering_is_flagged(name):
    code, expected = ATTACKS[name]
    release, source = notebooks("02_kernel")
    reasons = integrity.scan(with_cell("02_kernel", code), release, source)
    assert any(expected in reason for reason in reasons), reasons


def test_tampering_inside_the_solution_cell_is_flagged():
    release, source = notebooks("01_sky")
    nb = answered("01_sky", {"count_close_pairs": "def count_close_pairs(sky_map, psi_deg):\n    return 0\nabs = lambda v: 0"})
    reasons = integrity.scan(nb, release, source)
    assert reasons and reasons[0].startswith("count_close_pairs, line 3: rebinds the built-in name 'abs'")


def execute(nb):
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True).execute()
    return nb


def test_canaries_pass_in_a_clean_kernel_and_are_removed():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    with_canaries, token = integrity.add_canaries(nb)
    assert len(with_canaries.cells) == 4 and len(nb.cells) == 1
    executed = execute(with_canaries)
    assert integrity.read_canaries(executed, token) == []
    assert [c.source for c in integrity.remove_canaries(executed).cells] == ["x = 1"]


@pytest.mark.parametrize("tamper, expected", [
    ("get_ipython().input_transformers_cleanup.append(lambda lines: [l.replace('assert', 'pass') for l in lines])",
     "assert did not fail"),
    ("get_ipython().display_formatter.formatters['text/plain'].for_type(int, lambda x, p, c: p.text('4'))",
     "display is altered"),
    ("get_ipython().set_custom_exc((Exception,), lambda *a, **k: None)", "did not fail"),
])
def test_canaries_catch_a_tampered_kernel(tamper, expected):
    test_cell = nbformat.v4.new_code_cell("assert True")
    test_cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "grade_id": "t", "points": 1}
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(tamper), test_cell])
    with_canaries, token = integrity.add_canaries(nb)
    reasons = integrity.read_canaries(execute(with_canaries), token)
    assert any(expected in reason for reason in reasons), reasons
