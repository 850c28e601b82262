"""Repair a submitted notebook's nbgrader metadata against the released notebook, before autograde.

Editors and Colab drop or alter cell metadata, students copy cells (Jupyter's copy-paste
copies the metadata, grade_id included) and can edit it. nbgrader then scores a correct
notebook 0 or crashes on it (measured with nbgrader 0.9.6 and this course's config, where
``OverwriteCells.add_missing_cells`` is on: a KeyError for stripped metadata, for a duplicated
cell and for an added cell with an unknown grade_id). ``repair`` matches every graded cell of the
release to a cell of the submission and puts the release's grading metadata back:

* A locked cell (read-only or test) is matched by cell id, then by the grade_id its metadata
  claims, then by its exact source. It is never matched by position: nbgrader overwrites a
  locked cell's source, so a wrong guess would erase student code, while putting the release's
  cell back loses nothing. A matched locked cell gets the release's source back (nbgrader does
  the same at autograde, from the gradebook).
* An answer cell (solution) is matched by cell id or claimed grade_id; when several cells
  qualify (a copied cell), the last one before the answer's first test cell is kept, as that is
  the definition the tests see. Otherwise by position: the unmatched cells of its type between
  the previous and the next matched cell of the release (any release cell with an id or an
  unchanged source is a landmark); of those, the one that defines the name the release cell
  defines (``def kernel_nn``). Otherwise the last unmatched code cell anywhere that defines
  that name (an answer moved elsewhere). A student's answer's source is never changed.
* What cannot be found is put back from the release where it belongs: a test or read-only
  cell (noted), an answer as released (``raise NotImplementedError()`` or ``YOUR ANSWER HERE``,
  reported in ``errors``). If the name is already defined by another answer cell, a comment
  cell is put back instead of the stub, so that the stub cannot replace the student's function.
* Every other cell loses its nbgrader metadata (unknown grade_ids, copies, cells a student
  marked as graded or locked): it runs as ordinary code, in order, and earns no points.

The repaired copy is returned with notes (what was repaired, in words for the student and the
instructor) and errors (what was missing). Repairing a repaired notebook changes nothing.
"""

import ast
import copy
import dataclasses
import hashlib
import re

import nbformat

CELL_ID = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")
# Restored beside metadata.nbgrader: nbgrader's UI flags, and the course's own key (which
# test the grader scores outside the kernel: crsky.grading.pipeline.trusted_tests).
UI_KEYS = ("deletable", "editable", "crsky")


@dataclasses.dataclass
class RepairResult:
    notebook: nbformat.NotebookNode  # a repaired copy (the input is never modified)
    notes: list  # what was repaired, in words a student and an instructor understand
    errors: list  # what could not be matched; the notebook is still graded as far as possible


# ------------------------------------------------------------------ cells
def _nbgrader(cell):
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else None


def _grade_id(cell):
    meta = _nbgrader(cell)
    gid = meta.get("grade_id") if meta else None
    return gid if isinstance(gid, str) and gid else None


def _is_solution(cell):
    return bool((_nbgrader(cell) or {}).get("solution"))


def _kind(cell):
    """Words for a release cell with nbgrader metadata."""
    meta, gid = _nbgrader(cell), _grade_id(cell)
    if meta.get("solution") and cell.cell_type == "markdown":
        return f"your written answer '{gid}'"
    if meta.get("solution"):
        return f"your answer cell '{gid}'"
    if meta.get("grade"):
        return f"the test cell '{gid}'"
    return f"the read-only cell '{gid}'"


def _same_source(a, b):
    return a.strip() == b.strip()


def defined_names(source):
    """Names a code cell defines at its top level: functions, classes, assignments, imports."""
    lines = [line[:len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!")) else line
             for line in source.splitlines()]  # IPython magics and shell commands
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return set(re.findall(r"^(?:async\s+def|def|class)\s+([A-Za-z_]\w*)", source, re.M)) | set(
            re.findall(r"^([A-Za-z_]\w*)\s*(?::[^=]*)?=(?!=)", source, re.M))
    names = set()

    def targets(node):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                targets(element)
        elif isinstance(node, ast.Starred):
            targets(node.value)

    def visit(statements):
        for node in statements:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    targets(target)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                targets(node.target)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    names.add((alias.asname or alias.name).split(".")[0])
            for field in ("body", "orelse", "finalbody"):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    visit(getattr(node, field, []) or [])
            for handler in getattr(node, "handlers", []) or []:
                visit(handler.body)

    visit(tree.body)
    return names - {"_", "__"}


# --------------------------------------------------------------- notebook
def _normalise(nb, notes):
    """nbformat 4.5 or later, every cell with a valid, unique id (matching needs them)."""
    if nb.get("nbformat_minor", 0) < 5:
        nb.nbformat_minor = 5
    seen, fixed = set(), []
    for index, cell in enumerate(nb.cells):
        cid = cell.get("id")
        if isinstance(cid, str) and CELL_ID.match(cid) and cid not in seen:
            seen.add(cid)
            continue
        n = 0
        while True:
            new = "cell-" + hashlib.sha1(f"{index}:{n}:{cell.get('source', '')}".encode()).hexdigest()[:12]
            if new not in seen:
                break
            n += 1
        if cid is not None:
            fixed.append(f"cell {index + 1}")
        cell["id"] = new
        seen.add(new)
    if fixed:
        notes.append(f"{', '.join(fixed)} had a missing, invalid or repeated cell id; given a new one.")


def _order_key(candidates, limit):
    """The last candidate before ``limit`` (the first test of the answer), else the last."""
    before = [i for i in candidates if limit is None or i < limit]
    return max(before) if before else max(candidates)


# ------------------------------------------------------------------ repair
def repair(submitted, release):
    """A copy of ``submitted`` whose grading metadata matches ``release``; see the module doc."""
    nb = copy.deepcopy(submitted)
    notes, errors = [], []
    _normalise(nb, notes)
    cells, rel = nb.cells, release.cells
    graded = [k for k, c in enumerate(rel) if _grade_id(c)]
    rel_ids = {_grade_id(rel[k]) for k in graded}

    by_id = {c["id"]: i for i, c in enumerate(cells)}
    claims = {}
    for i, c in enumerate(cells):
        if _grade_id(c):
            claims.setdefault(_grade_id(c), []).append(i)

    match, how = {}, {}  # release index -> submitted index; how it was found
    used = set()  # submitted cells matched to graded release cells

    def take(k, i, method):
        match[k], how[k] = i, method
        used.add(i)

    # Landmarks for positions: every release cell found by id, or by unchanged source in order.
    landmark, last = {}, -1
    for k, r in enumerate(rel):
        i = by_id.get(r.get("id"))
        if i is None and not _grade_id(r) and r.source.strip():
            i = next((j for j, c in enumerate(cells) if j > last and c.cell_type == r.cell_type
                      and _same_source(c.source, r.source)), None)
        if i is not None:
            landmark[k] = i
            last = max(last, i)

    def neighbours(k):
        """Submitted positions of the nearest found release cells before and after k."""
        def found(j):
            return match.get(j, landmark.get(j))
        prev = next((found(j) for j in range(k - 1, -1, -1) if found(j) is not None), None)
        nxt = next((found(j) for j in range(k + 1, len(rel)) if found(j) is not None), None)
        return prev, nxt

    # 1. Cell ids (a release cell's id is unique; Jupyter keeps ids, copies get new ones).
    for k in graded:
        i = by_id.get(rel[k].get("id"))
        if i is not None:
            take(k, i, "id")

    # 2. Locked cells: claimed grade_id, then exact source (the first after the previous landmark).
    for k in graded:
        if k in match or _is_solution(rel[k]):
            continue
        r = rel[k]
        claimed = [i for i in claims.get(_grade_id(r), []) if i not in used and cells[i].cell_type == r.cell_type]
        same = [i for i, c in enumerate(cells) if i not in used and c.cell_type == r.cell_type
                and _same_source(c.source, r.source)]
        for method, candidates in (("claim", claimed), ("source", same)):
            if candidates:
                prev, _ = neighbours(k)
                after = [i for i in candidates if prev is None or i > prev]
                take(k, (after or candidates)[0], method)
                break

    def first_test_after(k):
        for j in range(k + 1, len(rel)):
            meta = _nbgrader(rel[j]) or {}
            if meta.get("grade") and not meta.get("solution") and j in match:
                return match[j]
        return None

    # 3. Answer cells, in release order (an answer found is a landmark for the next one).
    ambiguous = {}
    for k in graded:
        r = rel[k]
        if not _is_solution(r):
            continue
        gid = _grade_id(r)
        limit = first_test_after(k)
        pool = [i for i in claims.get(gid, []) if i not in used and cells[i].cell_type == r.cell_type]
        if k in match:  # found by id: copies of it still compete, the last one wins
            used.discard(match[k])
            pool = sorted(set(pool) | {match[k]})
        if pool:
            i = _order_key(pool, limit)
            take(k, i, how.get(k, "claim") if match.get(k) == i else "claim")
            if len(pool) > 1:
                ambiguous[k] = [j for j in pool if j != i]
            continue
        prev, nxt = neighbours(k)
        gap = [i for i in range(len(cells)) if (prev is None or i > prev) and (nxt is None or i < nxt)
               and i not in used and i not in landmark.values() and cells[i].cell_type == r.cell_type]
        if r.cell_type == "code":
            names = defined_names(r.source)
            defining = [i for i in gap if names & defined_names(cells[i].source)]
            if defining:
                take(k, _order_key(defining, limit), "position")
                continue
            if not names and gap:
                take(k, gap[-1], "position")
                continue
            elsewhere = [i for i, c in enumerate(cells) if i not in used and c.cell_type == "code"
                         and names & defined_names(c.source)]
            if elsewhere:
                take(k, _order_key(elsewhere, limit), "elsewhere")
                continue
        elif gap:
            answered = [i for i in gap if not _same_source(cells[i].source, r.source)]
            take(k, (answered or gap)[-1], "position")
            continue

    # 4. Restore matched cells; strip grading metadata from every other cell.
    where = {i: k for k, i in match.items()}
    for i, cell in enumerate(cells):
        if i in where:
            k = where[i]
            _restore(cell, rel[k], i, how[k], notes)
        elif "nbgrader" in cell.get("metadata", {}):
            meta, gid = _nbgrader(cell), _grade_id(cell)
            del cell.metadata["nbgrader"]
            plain = "runs as ordinary code" if cell.cell_type == "code" else "is an ordinary text cell"
            copy_of = next((k for k in ambiguous if i in ambiguous[k]), None)
            if copy_of is not None:
                notes.append(f"cell {i + 1} is a copy of {_kind(rel[copy_of])}: cell {match[copy_of] + 1}, the last "
                             f"copy, is graded as the answer; cell {i + 1} {plain} now.")
            elif gid in rel_ids:
                k = next(k for k in graded if _grade_id(rel[k]) == gid)
                where_k = (f"which is cell {match[k] + 1}" if k in match
                           else f"but it is a {cell.cell_type} cell, not a {rel[k].cell_type} cell")
                notes.append(f"cell {i + 1} claimed to be {_kind(rel[k])}, {where_k}; its grading metadata is "
                             f"removed, it {plain}.")
            elif gid is not None:
                meta = meta or {}
                claim = "graded" if meta.get("grade") else "locked" if meta.get("locked") else "an answer"
                points = f" worth {meta.get('points')} points" if meta.get("grade") else ""
                notes.append(f"cell {i + 1} claimed to be {claim} ('{gid}'{points}), which the released notebook "
                             f"has no cell for: its grading metadata is removed; it {plain} and earns no points.")
            else:
                notes.append(f"cell {i + 1} had incomplete grading metadata (no grade_id); removed, it {plain}.")

    # 5. Put back what is missing, where it belongs.
    inserts = []  # (slot, release index, cell)
    for k in graded:
        if k in match:
            continue
        r = rel[k]
        prev, nxt = neighbours(k)
        if prev is not None and (nxt is None or prev < nxt):
            slot = prev + 0.5
        elif nxt is not None:
            slot = nxt - 0.5
        else:
            slot = len(cells)
        cell = copy.deepcopy(r)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if _is_solution(r):
            names = defined_names(r.source) if r.cell_type == "code" else set()
            holder = next((j for j in graded if j in match and _is_solution(rel[j])
                           and names & defined_names(cells[match[j]].source)), None)
            if holder is not None:
                # The stub would replace the student's definition: a comment stands in its place.
                defined = ", ".join(sorted(names & defined_names(cells[match[holder]].source)))
                cell.source = f"# {defined}: answered in cell {match[holder] + 1} (put back by the grader)"
                notes.append(f"{_kind(r)} was missing: {defined} is defined in cell {match[holder] + 1}, together "
                             f"with {_kind(rel[holder])}, and graded from there; a comment cell stands in its place.")
            else:
                what = f"no cell defines {', '.join(sorted(names))}" if names else "no cell in its place"
                then = ("it is graded by hand as unanswered" if r.cell_type == "markdown"
                        else "the tests of this exercise fail")
                errors.append(f"{_kind(r)} was not found in the notebook ({what}); the empty exercise cell is put "
                              f"back, so {then}.")
        else:
            notes.append(f"{_kind(r)} was missing; put back from the released notebook.")
        inserts.append((slot, k, cell))
    if inserts:
        ids = {c["id"] for c in cells}
        for _, _, cell in inserts:
            base, n = cell.get("id") or "restored", 0
            while cell.get("id") in ids or not cell.get("id"):
                n += 1
                cell["id"] = f"{base[:54]}-restored{n if n > 1 else ''}"
            ids.add(cell["id"])
        out = []
        ordered = sorted(inserts, key=lambda t: (t[0], t[1]))
        for i, cell in enumerate(cells):
            while ordered and ordered[0][0] < i:
                out.append(ordered.pop(0)[2])
            out.append(cell)
        out.extend(t[2] for t in ordered)
        nb.cells = out
    return RepairResult(nb, notes, errors)


def _restore(cell, r, i, method, notes):
    """Give the submitted cell ``cell`` (position i) the grading metadata of release cell ``r``."""
    want, have = _nbgrader(r), _nbgrader(cell)
    found = {"source": ", found by its content", "position": ", found by its position",
             "elsewhere": ", found away from the exercise by the name it defines"}.get(method, "")
    if have != want:
        if have is None:
            why = "its grading metadata was missing"
        else:
            diff = [f"{key} {have.get(key)!r} instead of {want.get(key)!r}"
                    for key in sorted(set(have) | set(want)) if have.get(key) != want.get(key)]
            why = "its grading metadata was changed (" + ", ".join(diff) + ")"
        cell.metadata["nbgrader"] = copy.deepcopy(want)
        for key in UI_KEYS:
            if key in r.metadata:
                cell.metadata[key] = r.metadata[key]
            else:
                cell.metadata.pop(key, None)
        notes.append(f"{_kind(r)} (cell {i + 1}{found}): {why}; restored from the released notebook.")
    locked = want.get("locked") and not want.get("solution")
    if cell.cell_type != r.cell_type:
        notes.append(f"{_kind(r)} (cell {i + 1}) was turned into a {cell.cell_type} cell; it is a {r.cell_type} "
                     f"cell again (nbgrader does the same at grading).")
        _set_type(cell, r.cell_type)
    if locked and cell.source != r.source:
        cell.source = r.source
        notes.append(f"{_kind(r)} (cell {i + 1}) was edited; put back as released (nbgrader does the same "
                     f"at grading).")


def _set_type(cell, cell_type):
    """As nbgrader's OverwriteCells.update_cell_type: the source is kept, outputs go."""
    cell.cell_type = cell_type
    if cell_type == "code":
        cell["outputs"], cell["execution_count"] = [], None
    else:
        cell.pop("outputs", None)
        cell.pop("execution_count", None)
