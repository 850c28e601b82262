"""The structure docs/architecture.md promises: no import circle, no sys.path changes, and the
course's set-up typed in one place only."""

import ast
import re
import sys

import nbformat
import pytest

from crsky.course import ASSIGNMENTS, COURSE_ROOT as ROOT

SOURCES = sorted([*ROOT.glob("crsky/**/*.py"), ROOT / "edgeconv.py"])
PYTHON_FILES = sorted(p for folder in ("crsky", "bench", "tests", "grading", "scripts") for p in (ROOT / folder).rglob("*.py"))


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path, modules):
    """Project modules imported anywhere in the file (functions included): ``from crsky.grading
    import cluster`` and ``from . import cluster`` import the module ``crsky.grading.cluster``
    (one of ``modules``), ``from crsky.grading import check`` the package ``crsky.grading``."""
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the file's own package upwards
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = ".".join(filter(None, [base, node.module]))
            else:
                module = node.module or ""
            if module.split(".")[0] not in ("crsky", "edgeconv"):
                continue
            for alias in node.names:
                found.add(f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] in ("crsky", "edgeconv")}
    return found - {this}


def import_graph(paths):
    modules = {module_name(p) for p in paths}
    return {module_name(p): project_imports(p, modules) for p in paths}


def find_circle(graph):
    """The first import circle of ``graph`` (module -> modules it imports) as a list of
    modules, the first repeated at the end; None when there is none."""
    state = {}

    def visit(module, path):
        state[module] = "open"
        for dependency in sorted(graph.get(module, ())):
            if state.get(dependency) == "open":
                return path[path.index(dependency):] + [dependency]
            if dependency not in state:
                circle = visit(dependency, path + [dependency])
                if circle:
                    return circle
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            circle = visit(module, [module])
            if circle:
                return circle
    return None


def test_the_package_has_no_import_circle():
    graph = import_graph(SOURCES)
    circle = find_circle(graph)
    assert circle is None, "import circle: " + " -> ".join(circle)
    assert "crsky.simulate" not in graph["crsky.fileformat"] and "crsky.dataset" not in graph["crsky.simulate"]


def test_the_circle_finder_sees_circles_inside_a_package(tmp_path, monkeypatch):
    """Imports of a package's modules by ``from package import module``, relative or inside
    a function, are edges of the graph: two modules that import each other so are a circle."""
    folder = tmp_path / "crsky" / "grading"
    folder.mkdir(parents=True)
    (tmp_path / "crsky" / "__init__.py").write_text("")
    (tmp_path / "crsky" / "experiment.py").write_text("import numpy\n")
    (folder / "__init__.py").write_text("from crsky.grading.tool import helper\n")
    (folder / "tool.py").write_text("def helper():\n    from crsky.grading import runner\n")
    (folder / "runner.py").write_text("from . import tool\nfrom crsky import experiment\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    graph = import_graph(sorted(tmp_path.rglob("*.py")))
    assert graph == {"crsky": set(), "crsky.experiment": set(), "crsky.grading": {"crsky.grading.tool"},
                     "crsky.grading.tool": {"crsky.grading.runner"},
                     "crsky.grading.runner": {"crsky.grading.tool", "crsky.experiment"}}
    assert find_circle(graph) == ["crsky.grading.tool", "crsky.grading.runner", "crsky.grading.tool"]
    (folder / "runner.py").write_text("from crsky import experiment\n")
    assert find_circle(import_graph(sorted(tmp_path.rglob("*.py")))) is None


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


STUDENTS_SIDE = ("crsky.selfcheck", "crsky.submit", "crsky.colab", "crsky.scoring", "crsky.members", "crsky.training")


def reachable(graph, module):
    seen, todo = set(), [module]
    while todo:
        for dependency in graph.get(todo.pop(), ()):
            if dependency not in seen:
                seen.add(dependency)
                todo.append(dependency)
    return seen


@pytest.mark.parametrize("module", STUDENTS_SIDE)
def test_what_students_run_needs_nothing_of_the_instructors_side(module):
    """The self-check, the hand-in, the Colab helpers and the scoring rule their notebooks use
    import nothing of crsky.grading (the instructors' pipeline, sandbox and trusted process)."""
    graph = import_graph(SOURCES)
    grading = sorted(m for m in reachable(graph, module) if m == "crsky.grading" or m.startswith("crsky.grading."))
    assert not grading, f"{module} imports the instructors' side: {grading}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_student_notebooks_import_nothing_of_the_instructors_side(assignment):
    nb = nbformat.read(ROOT / "notebooks" / assignment / f"{assignment}.ipynb", as_version=4)
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    assert not re.search(r"crsky\.grading|from crsky import grading", code), f"{assignment} imports crsky.grading"


def test_limits_are_read_by_name_from_their_one_home():
    """A limit is ``limits.NAME`` (crsky/limits.py): no fallback number that hides a missing
    name, and no second module that defines a timeout of the grader's own."""
    offenders = []
    for path in SOURCES:
        text = path.read_text()
        if re.search(r"getattr\(\s*limits\s*,", text):
            offenders.append(f"{path.relative_to(ROOT)}: getattr(limits, ...)")
        if path.name != "limits.py":
            offenders += [f"{path.relative_to(ROOT)}: {m}" for m in re.findall(r"^(\w*TIMEOUT_S)\s*=", text, re.M)]
    assert not offenders, offenders
