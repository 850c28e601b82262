"""The structure docs/architecture.md promises: no import circle, no sys.path changes, and the
course's set-up typed in one place only."""

import ast
import re
from pathlib import Path

import nbformat
import pytest

from crsky.course import ASSIGNMENTS, COURSE_ROOT as ROOT

SOURCES = sorted([*ROOT.glob("crsky/**/*.py"), ROOT / "edgeconv.py"])
PYTHON_FILES = sorted(p for folder in ("crsky", "bench", "tests", "grading", "scripts") for p in (ROOT / folder).rglob("*.py"))


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path):
    """Project modules imported anywhere in the file (functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "crsky":
                found |= {f"crsky.{alias.name}" for alias in node.names}
            elif node.module.startswith("crsky.") or node.module == "edgeconv":
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] in ("crsky", "edgeconv")}
    return found - {module_name(path)}


def test_the_package_has_no_import_circle():
    graph = {module_name(p): project_imports(p) for p in SOURCES}
    state = {}

    def visit(module, path):
        state[module] = "open"
        for dependency in sorted(graph.get(module, ())):
            if state.get(dependency) == "open":
                pytest.fail("import circle: " + " -> ".join(path + [dependency]))
            if dependency not in state:
                visit(dependency, path + [dependency])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert "crsky.simulate" not in graph["crsky.fileformat"] and "crsky.dataset" not in graph["crsky.simulate"]


def test_nothing_changes_sys_path():
    offenders = [str(p.relative_to(ROOT)) for p in PYTHON_FILES
                 if re.search(r"sys\.path\.(insert|append)|spec_from_file_location", p.read_text())
                 and p.name != "test_architecture.py"]
    assert not offenders, f"sys.path is changed in {offenders}: import packages instead"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebooks_take_the_set_up_from_the_experiment_module(assignment):
    """The preset, seed and data size are typed in crsky/experiment.py, not in a notebook."""
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    for pattern in (r"seed\s*=\s*\d", r"preset\s*=\s*[\"']", r"50[_,]?000", r"\[:\s*-\s*n_val\]", r"x_train\[:5000\]"):
        assert not re.search(pattern, code), f"{assignment}: {pattern!r} typed in the notebook"
