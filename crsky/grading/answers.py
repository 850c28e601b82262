"""Which cells of a submission the grader runs to score it, and in which order.

The protected test run (:mod:`crsky.grading.runner`) gets a plan built here from two
notebooks: the instructor's (nbgrader's source: set-up cells, tests with hidden tests) and
the student's submission. It runs

1. the **set-up**: the instructor's code cells before the first answer cell that are
   neither answers nor tests (imports, data), never the student's copy of them;
2. then, in the instructor's order, each **answer** (the student's cell with that answer
   cell's ``grade_id``) and each **test** (the instructor's cell). Right before an answer,
   the student's own cells it needs: a cell that defines a name the answer reads and
   neither the set-up nor a cell run before it has defined (a helper in a cell of its own,
   an import cell, a settings cell, a ``from module import *``), and what those need.

Nothing else of the submission runs: exploration, timing, plots or shell commands in
other cells can neither change a score nor be flagged.
"""

import ast
import builtins
import symtable

from IPython.core.inputtransformer2 import TransformerManager

BUILTIN_NAMES = frozenset(dir(builtins)) | {"get_ipython", "display", "In", "Out"}
STAR = "*"  # what bound_names says of ``from module import *``: names it cannot know without importing


def nbgrader_meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_answer(cell):
    return cell.get("cell_type") == "code" and bool(nbgrader_meta(cell).get("solution"))


def is_test(cell):
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def python(source):
    """A cell as plain Python (IPython's magics and shell escapes become calls)."""
    return TransformerManager().transform_cell(source)


# Magics that run their Python code in the notebook's namespace: %time, %%time, %%capture ...
PYTHON_MAGICS = frozenset({"time", "capture", "prun"})


def _tree(source):
    """The cell's code as a syntax tree, the code that its magics run inlined (``%%time`` around
    a definition still defines it; None when it is not Python)."""
    try:
        tree = ast.parse(python(source))
    except (SyntaxError, ValueError):
        return None
    body = []
    for node in tree.body:
        inner = _magic_body(node)
        body += inner if inner is not None else [node]
    tree.body = body
    return tree


def _magic_body(node):
    """The statements a magic of PYTHON_MAGICS runs (``get_ipython().run_cell_magic('time', '', code)``
    or ``run_line_magic('time', code)``), or None for any other statement."""
    call = node.value if isinstance(node, ast.Expr) else None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            and call.func.attr in ("run_cell_magic", "run_line_magic") and call.args
            and all(isinstance(arg, ast.Constant) and isinstance(arg.value, str) for arg in call.args)):
        return None
    name, code = call.args[0].value, call.args[-1].value
    if name not in PYTHON_MAGICS or len(call.args) != (3 if call.func.attr == "run_cell_magic" else 2):
        return None
    inner = _tree(code)
    return inner.body if inner is not None else None


def bound_names(source):
    """Names a cell binds at notebook level (assignments, defs, classes, imports; ``STAR`` for a
    ``from module import *``)."""
    tree = _tree(source)
    if tree is None:
        return set()
    names = set()
    for node in tree.body:
        for child in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                             ast.ClassDef)) else [node]:
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(child.name)
            elif isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                names.add(child.id)
            elif isinstance(child, (ast.Import, ast.ImportFrom)):
                names |= {STAR if alias.name == "*" else alias.asname or alias.name.split(".")[0]
                          for alias in child.names}
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for child in ast.walk(node):
                if isinstance(child, ast.Global):
                    names |= set(child.names)
    return names


def read_names(source):
    """Names a cell reads from the notebook's namespace that it does not bind there itself:
    at notebook level, in function and class bodies (names they do not bind locally) and in
    what Python evaluates where a function is defined (default values, decorators,
    annotations). Python's own scoping rules decide (``symtable``)."""
    tree = _tree(source)
    if tree is None:
        return set()
    try:
        top = symtable.symtable(ast.unparse(tree), "<cell>", "exec")
    except (SyntaxError, ValueError):
        return set()
    reads, bound = set(), set()
    tables = [top]
    while tables:
        table = tables.pop()
        for symbol in table.get_symbols():
            name = symbol.get_name()
            if table is top:
                if symbol.is_assigned() or symbol.is_imported():
                    bound.add(name)
                elif symbol.is_referenced():
                    reads.add(name)
            elif symbol.is_global():
                if symbol.is_declared_global() and symbol.is_assigned():
                    bound.add(name)
                elif symbol.is_referenced():
                    reads.add(name)
        tables += table.get_children()
    return reads - bound - BUILTIN_NAMES


def where(nb, index):
    """How a student finds a cell: its grade_id, or 'code cell N' counting code cells only."""
    cell = nb.cells[index]
    grade_id = nbgrader_meta(cell).get("grade_id")
    number = sum(c.cell_type == "code" for c in nb.cells[:index + 1])
    return f"{grade_id} (code cell {number})" if grade_id else f"code cell {number}"


def plan(source_nb, submitted_nb, timeout=120):
    """The protected run's plan: ``{"steps": [{"kind", "id", "source", "where"}], "answer_names",
    "course_answers", "timeout"}``.

    ``kind`` is ``setup``, ``helper`` (a student cell an answer needs), ``answer`` or ``test``;
    ``id`` the grade_id (tests, answers) or where the cell is. A missing answer cell runs as
    an empty cell (its tests then fail with a NameError that says which name is missing)."""
    cells = source_nb.cells
    first_answer = next((i for i, c in enumerate(cells) if is_answer(c)), len(cells))
    steps = [{"kind": "setup", "id": f"setup {i}", "source": c.source, "where": f"set-up cell {i}"}
             for i, c in enumerate(cells[:first_answer]) if c.cell_type == "code" and not is_test(c)]
    provided = set().union(*(bound_names(s["source"]) for s in steps)) if steps else set()
    answers = {}
    for i, cell in enumerate(submitted_nb.cells):
        grade_id = nbgrader_meta(cell).get("grade_id")
        if is_answer(cell) and grade_id and grade_id not in answers:
            answers[grade_id] = (i, cell.source)
    # What the tests get of the student's work: the names the instructor's answer cells define
    # (the exercise's interface), never a set-up name (the tests' own data) or a built-in.
    # Whatever else a student's answer cell binds stays the student's: their functions still
    # see it, the tests do not (a test's own variables cannot collide with it).
    answer_names = set()
    for cell in cells:
        if is_answer(cell):
            answer_names |= bound_names(cell.source)
    answer_names -= provided | BUILTIN_NAMES | {STAR}
    # The student's other code cells, by the names they bind (the last binding before use wins).
    student_cells = [(i, c.source) for i, c in enumerate(submitted_nb.cells)
                     if c.cell_type == "code" and not nbgrader_meta(c).get("grade_id")]
    bound_by = {i: bound_names(source) for i, source in student_cells}
    binders = {}
    for i, source in student_cells:
        for name in bound_by[i]:
            binders.setdefault(name, []).append((i, source))
    # What has been bound when an answer runs: the set-up's names and those of the student's
    # cells run before it (a name a later cell binds is not there yet: its helper runs first).
    included, available = set(), set(provided)
    for cell in cells[first_answer:]:
        meta = nbgrader_meta(cell)
        if is_answer(cell):
            grade_id = meta.get("grade_id")
            index, source = answers.get(grade_id, (None, ""))
            for helper_index, helper_source in _needed(source, index, available, binders, included):
                steps.append({"kind": "helper", "id": where(submitted_nb, helper_index), "source": helper_source,
                              "where": where(submitted_nb, helper_index)})
                available |= bound_by[helper_index]
            available |= bound_names(source)
            steps.append({"kind": "answer", "id": grade_id, "source": source,
                          "where": where(submitted_nb, index) if index is not None else f"{grade_id} (missing)"})
        elif is_test(cell) and not (cell.metadata.get("crsky") or {}).get("scored_by_grader"):
            steps.append({"kind": "test", "id": meta.get("grade_id"), "source": cell.source,
                          "where": meta.get("grade_id")})
    return {"steps": steps, "answer_names": sorted(answer_names), "course_answers": course_answers(source_nb),
            "timeout": timeout}


def course_answers(source_nb):
    """The course package's functions that answer an exercise of ``source_nb`` (the instructor's
    notebook, never the student's copy): ``{"crsky.models.build_reference_model": "build_dgcnn"}``,
    from the answer cells' metadata ``{"crsky": {"course_answers": [dotted names]}}``. The
    protected run watches them: the student's answer calling one while a test runs is a finding."""
    found = {}
    for cell in source_nb.cells:
        if is_answer(cell):
            for dotted in (cell.metadata.get("crsky") or {}).get("course_answers") or ():
                found[str(dotted)] = nbgrader_meta(cell).get("grade_id") or "?"
    return found


def _needed(source, before, provided, binders, included):
    """The student cells (index, source), in notebook order, that define what ``source`` reads;
    a name no cell binds by name may come from a ``from module import *`` cell (each such cell
    before the answer is taken)."""
    wanted, found, todo = set(), [], [source]

    def take(index, helper):
        if index not in included:
            included.add(index)
            found.append((index, helper))
            todo.append(helper)

    while todo:
        for name in read_names(todo.pop()) - provided - wanted:
            wanted.add(name)
            candidates = [c for c in binders.get(name, []) if before is None or c[0] < before] or binders.get(name, [])
            if candidates:
                take(*candidates[-1])
            else:
                for star in binders.get(STAR, []):
                    if before is None or star[0] < before:
                        take(*star)
    return sorted(found)


def scored_by_grader(source_nb):
    """The instructor's test cells whose points the grader measures itself (the saved model):
    ``{grade_id: {"model": file name, ...}}``, from the cell metadata
    ``{"crsky": {"scored_by_grader": {...}}}`` of the source notebook (never the student's copy)."""
    found = {}
    for cell in source_nb.cells:
        spec = (cell.metadata.get("crsky") or {}).get("scored_by_grader")
        if spec and is_test(cell):
            found[nbgrader_meta(cell)["grade_id"]] = dict(spec)
    return found
