"""Detecting submissions that tamper with what the in-notebook tests rely on.

nbgrader runs a student's cells and the test cells in one Python interpreter, so code in
a solution cell can replace what a test calls: builtins (``len``, ``all``), attributes of
imported modules or classes (``keras.Model.count_params``), IPython's input transformers
(turn every ``assert`` into ``pass``), display formatters (nbgrader takes partial credit
from the displayed value), import hooks. Such code gains nothing here:

1. :func:`scan` reads every code cell the student wrote (any cell whose source is not a
   cell of the released notebook) and lists the constructs that can reach the interpreter,
   the test machinery or the objects the tests use. The exercises need none of them; a
   notebook with any is flagged: its in-notebook test points are withheld and it goes to
   manual review with the reasons (grades.csv).
2. Canary cells (:func:`add_canaries`) are appended after every test cell at autograde:
   an ``assert`` that must fail, an exception that must propagate, an expression that must
   display its value. :func:`read_canaries` lists any canary whose output a clean
   interpreter would not give (the same consequence).

Tests that matter most do not run in the student's interpreter at all: the saved model's
accuracy is measured by a separate trusted process (:mod:`crsky.grading.scoring`).
"""

import ast
import builtins
import copy
import re
import secrets

import nbformat

# Modules that reach the interpreter, the process, the kernel or the grader. The exercises
# import none of them; `os` is among them because it can signal processes and read the
# environment.
REACHING_MODULES = {
    "builtins", "sys", "os", "posix", "importlib", "ctypes", "cffi", "gc", "inspect", "types", "marshal",
    "pickle", "dill", "cloudpickle", "copyreg", "code", "codeop", "runpy", "subprocess", "signal",
    "threading", "_thread", "multiprocessing", "concurrent", "asyncio", "atexit", "socket", "pty", "resource",
    "mmap", "site", "sysconfig", "IPython", "ipykernel", "jupyter_client", "traitlets", "zmq", "tornado",
    "unittest", "nbgrader", "nbclient", "nbformat", "crsky.grading", "pytest", "faulthandler", "trace",
    "tracemalloc", "weakref", "operator", "functools",
}
CALLS = {
    "get_ipython": "uses get_ipython() (IPython's hooks, formatters and transformers)",
    "exec": "runs code built at run time (exec)",
    "eval": "runs code built at run time (eval)",
    "compile": "compiles code at run time (compile)",
    "__import__": "imports through __import__",
    "globals": "reads or changes the notebook's globals()",
    "locals": "reads locals()",
    "vars": "reads an object's attribute dictionary (vars)",
    "setattr": "sets attributes by name (setattr)",
    "delattr": "deletes attributes by name (delattr)",
    "breakpoint": "calls breakpoint()",
}
HARMLESS_DUNDERS = {"__name__", "__doc__", "__version__", "__init__"}
BUILTIN_NAMES = set(dir(builtins))
UNSAFE_KEYWORDS = {("allow_pickle", True): "loads pickles (allow_pickle=True runs code)",
                   ("safe_mode", False): "loads a model with safe_mode=False (runs code)"}


def _release_sources(release):
    return {cell.source.strip() for cell in release.cells if cell.cell_type == "code"}


def _is_test(cell):
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def _is_solution(cell):
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


def _python(source):
    """Cell source as plain Python: IPython's magics (%, !) become get_ipython() calls."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def _bound_names(tree):
    """Names a cell binds at notebook (module) level."""
    return {name for name, _ in _module_level_stores(tree)}


def _read_names(tree):
    """Names a cell reads that it does not bind itself: what it takes from the notebook."""
    loaded = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    bound = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {alias.asname or alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return loaded - bound


def _module_level_stores(tree):
    """(name, line) of every name a cell binds or deletes at notebook level (not inside a
    function, lambda or comprehension, which have their own scope), ``global`` included."""
    found = []

    def visit(node, top):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if top:
                found.append((node.name, node.lineno))
            for decorator in node.decorator_list:
                visit(decorator, top)
            for child in ast.walk(node):
                if isinstance(child, (ast.Global, ast.Nonlocal)):
                    found.extend((name, child.lineno) for name in child.names)
            return
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        if isinstance(node, ast.ClassDef) and top:
            found.append((node.name, node.lineno))
        if isinstance(node, (ast.Import, ast.ImportFrom)) and top:
            for alias in node.names:
                if alias.name != "*":
                    found.append((alias.asname or alias.name.split(".")[0], node.lineno))
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)) and top:
            found.append((node.id, node.lineno))
        if isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
            found.append((node.target.id, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child, top and not isinstance(node, ast.ClassDef))

    for statement in tree.body:
        visit(statement, True)
    return found


def _root_name(node):
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _imported_names(tree):
    return set(_import_bindings(tree))


def _import_bindings(tree):
    """{name: what it refers to} for the imports of a cell: ``import numpy as np`` binds
    np to "numpy", ``from keras import layers`` binds layers to "keras.layers"."""
    bindings = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                bindings[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                bindings[alias.asname or alias.name] = f"{'.' * node.level}{node.module or ''}.{alias.name}"
    return bindings


def _cell_reasons(tree, protected, exercise_names, imported, release_imports):
    """Reasons found in one parsed student cell. ``protected``: names the test cells read
    from the notebook; ``exercise_names``: what the student is asked to define;
    ``imported``: names any cell of the notebook binds by an import (modules and what
    they export, whose attributes the tests may use indirectly); ``release_imports``:
    what the released cells import under each name (importing it again is harmless)."""
    reasons = []
    same_import = {name for name, target in _import_bindings(tree).items() if release_imports.get(name) == target}

    def add(line, text):
        reasons.append(f"line {line}: {text}")

    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:  # `from crsky import grading` imports the module crsky.grading
                modules = [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
            reaching = [module for module in modules
                        if any(module == m or module.startswith(m + ".") for m in REACHING_MODULES)]
            if reaching:
                add(node.lineno, f"imports {reaching[0]}")
            if isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names):
                add(node.lineno, f"imports * from {node.module} (may replace any name)")
        elif isinstance(node, ast.Name):
            if node.id in CALLS:
                add(node.lineno, CALLS[node.id])
            elif node.id.startswith("__") and node.id not in HARMLESS_DUNDERS:
                add(node.lineno, f"uses {node.id}")
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("__") and node.attr.endswith("__") and node.attr not in HARMLESS_DUNDERS:
                add(node.lineno, f"uses the special attribute .{node.attr}")
            if isinstance(node.ctx, (ast.Store, ast.Del)):
                root = _root_name(node)
                if root in protected or root in BUILTIN_NAMES or root in imported:
                    add(node.lineno, f"changes an attribute of {root} (.{node.attr}), which the tests may use")
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, (ast.Store, ast.Del)):
            root = _root_name(node)
            if root in protected and root not in exercise_names:
                add(node.lineno, f"changes the contents of {root}, which the notebook set up")
        elif isinstance(node, ast.ClassDef):
            add(node.lineno, f"defines a class ({node.name}); its methods could stand in for what the tests call")
        elif isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name == "getattr" and (len(node.args) < 2 or not isinstance(node.args[1], ast.Constant)
                                      or str(node.args[1].value).startswith("__")):
                add(node.lineno, "reads attributes by computed name (getattr)")
            if name == "type" and len(node.args) == 3:
                add(node.lineno, "creates a class with type()")
            for keyword in node.keywords:
                if isinstance(keyword.value, ast.Constant) and (keyword.arg, keyword.value.value) in UNSAFE_KEYWORDS:
                    add(node.lineno, UNSAFE_KEYWORDS[(keyword.arg, keyword.value.value)])
    for name, line in _module_level_stores(tree):
        if name in exercise_names or name not in protected or name in same_import:
            continue
        kind = "the built-in name" if name in BUILTIN_NAMES else "the name"
        add(line, f"rebinds {kind} {name!r}, which the tests read")
    return reasons


def scan(submitted, release, source=None):
    """Reasons to review a submitted notebook by hand (an empty list when none).

    Args:
        submitted: the student's notebook (nbformat v4 node).
        release: the released notebook of the same assignment (what students started from).
        source: the instructor's notebook (with the hidden tests), if at hand: the names
            its test cells read are what student code must leave alone.

    Every code cell whose source is not one of the release's code cells is student code and
    is read; release cells (restored by nbgrader anyway when locked) are trusted. Protected
    are the names the test cells read from the notebook (imports, data, helpers, builtins);
    the exercise's own names (what the release's solution cells define) are the student's.
    """
    trusted = _release_sources(release)
    protected, exercise_names, release_imports = set(), set(), {}
    for cell in release.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(_python(cell.source))
        except SyntaxError:
            continue
        if _is_solution(cell):
            exercise_names |= _bound_names(tree)
        else:
            release_imports.update(_import_bindings(tree))
    for cell in (source or release).cells:
        if _is_test(cell):
            try:
                protected |= _read_names(ast.parse(_python(cell.source)))
            except SyntaxError:
                continue
    protected -= exercise_names
    reasons, student_cells, imported = [], [], set()
    for index, cell in enumerate(submitted.cells):
        if cell.get("cell_type") != "code":
            continue
        where = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {index + 1}"
        try:
            tree = ast.parse(_python(cell.source))
        except (SyntaxError, ValueError) as error:
            # Code Python cannot parse fails as a whole when it runs; only report it when it
            # mentions what tampering needs.
            if cell.source.strip() not in trusted and re.search(r"get_ipython|__|exec|eval", cell.source):
                reasons.append(f"{where}: cannot be read ({error}) and mentions the interpreter")
            continue
        imported |= _imported_names(tree)
        if cell.source.strip() not in trusted:
            student_cells.append((where, tree))
    for where, tree in student_cells:
        reasons += [f"{where}, {reason}"
                    for reason in _cell_reasons(tree, protected, exercise_names, imported, release_imports)]
    return reasons


# ------------------------------------------------------------------- canaries
CANARY_KEY = "crsky_canary"


def add_canaries(nb, token=None):
    """A copy of ``nb`` with canary cells after every test cell and at the end. Returns
    ``(notebook, token)``; the token (random unless given) marks the canaries' outputs."""
    token = token or secrets.token_hex(8)
    nb = copy.deepcopy(nb)
    left, right = secrets.randbelow(10**6), secrets.randbelow(10**6)
    cells = []

    def canary(kind, source):
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata[CANARY_KEY] = kind
        return cell

    for cell in nb.cells:
        cells.append(cell)
        if _is_test(cell):
            cells.append(canary("assert", f'assert {left} == {right} + 1, "canary {token}"'))
    cells += [canary("raise", f'raise RuntimeError("canary {token}")'),
              canary("display", f"{left} + {right}"),
              canary("print", f'print("canary {token}")')]
    nb.cells = cells
    nb.metadata[CANARY_KEY] = {"sum": str(left + right)}
    return nb, token


def read_canaries(nb, token):
    """What the canaries of an executed notebook say: an empty list when each gave what a
    clean interpreter gives, else one reason per canary that did not."""
    expected_sum = nb.metadata.get(CANARY_KEY, {}).get("sum")
    reasons = []
    canaries = [cell for cell in nb.cells if CANARY_KEY in cell.metadata]
    if not canaries:
        return ["the notebook's canary cells are missing after execution"]
    for cell in canaries:
        kind = cell.metadata[CANARY_KEY]
        outputs = cell.get("outputs", [])
        errors = [o for o in outputs if o.get("output_type") == "error"]
        if kind in ("assert", "raise"):
            ename = "AssertionError" if kind == "assert" else "RuntimeError"
            if not any(e.get("ename") == ename and token in str(e.get("evalue")) for e in errors):
                reasons.append(f"a failing {'assert' if kind == 'assert' else 'raise'} did not fail as it should "
                               "(assertions or exceptions are intercepted)")
        elif kind == "display":
            shown = [o.get("data", {}).get("text/plain") for o in outputs if o.get("output_type") == "execute_result"]
            if shown != [expected_sum]:
                reasons.append(f"an expression displayed {shown} instead of {expected_sum!r} (the display is altered)")
        elif kind == "print":
            text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
            if text != f"canary {token}\n":
                reasons.append("printed output is altered")
    return sorted(set(reasons))


def remove_canaries(nb):
    """``nb`` without its canary cells (in place; returns it)."""
    nb.cells = [cell for cell in nb.cells if CANARY_KEY not in cell.metadata]
    nb.metadata.pop(CANARY_KEY, None)
    return nb
