"""Feedback pages that keep the hidden tests hidden.

nbgrader puts the hidden tests (the lines between ``### BEGIN HIDDEN TESTS`` and
``### END HIDDEN TESTS`` of a test cell) back into every test cell it autogrades, and its
``generate_feedback`` renders that autograded notebook as it is: every feedback page would
show the hidden tests' code, and their tracebacks quote it again (jupyter/nbgrader#1363).
A class that has seen its feedback has no hidden tests left for the next term.

:class:`HideHiddenTests`, listed in ``c.GenerateFeedback.preprocessors`` of
``grading/nbgrader_config.py`` (so the pipeline, ``nbgrader generate_feedback`` and the
formgrader's *Generate feedback* all use it), changes each cell that carries hidden tests
before the page is rendered (the autograded notebook itself, which instructors grade from,
keeps them):

- the source: the visible tests as the student's notebook has them; each hidden region
  becomes one comment line, :data:`NOT_SHOWN`;
- the outputs: an error keeps its name and message (the failure message the instructor
  wrote into the assert) and says whether it was raised in a hidden test or in the tests
  shown; its traceback, which quotes the failing line and the lines around it, is not
  shown; a message that quotes a hidden line is replaced. Everything else the cell
  printed or displayed (the values a hidden test passed to the student's code, say) is
  left out, with a note saying so.

The cell keeps its nbgrader metadata, so the page still shows its name and its points.
:func:`leaks` lists what of the hidden tests a rendered page still shows (the tests, and
the pipeline's last check of every page).
"""

import html
import re

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

BEGIN = "BEGIN HIDDEN TESTS"  # nbgrader's ClearHiddenTests.begin_test_delimeter
END = "END HIDDEN TESTS"      # nbgrader's ClearHiddenTests.end_test_delimeter
NOT_SHOWN = "# (hidden tests: not shown)"
MIN_LINE_CHARS = 8  # shorter hidden lines (")", "else:") say nothing and are not searched in pages
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_LINE = re.compile(r"(?:Cell In ?\[\d*\]|Input In ?\[\d*\]), line (\d+)")


def split(source, begin=BEGIN, end=END):
    """``(visible_lines, hidden_lines, hidden_numbers)`` of a cell's source: the lines outside
    the hidden regions (each region replaced by one :data:`NOT_SHOWN` line at the marker's
    indent), the lines inside them (markers excluded) and the 1-based numbers of every line
    of every region, markers included. A region without its end runs to the end of the cell."""
    visible, hidden, numbers = [], [], set()
    inside = False
    for number, line in enumerate(source.split("\n"), 1):
        if begin in line:
            if not inside:
                visible.append(line[:len(line) - len(line.lstrip())] + NOT_SHOWN)
            inside = True
            numbers.add(number)
        elif inside and end in line:
            inside = False
            numbers.add(number)
        elif inside:
            hidden.append(line)
            numbers.add(number)
        else:
            visible.append(line)
    return visible, hidden, numbers


def _source(cell):
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _normal(text):
    return re.sub(r"\s+", " ", text).strip()


def secret_lines(source_nb, also_visible=(), begin=BEGIN, end=END):
    """The hidden lines of ``source_nb`` (the instructor's notebook) that a page must not show:
    whitespace-normalised, at least :data:`MIN_LINE_CHARS` long, and not also a visible line
    of the notebook or a line of ``also_visible`` (e.g. the student's own notebook: a student
    who wrote the same line sees it)."""
    visible, hidden = set(), set()
    for cell in source_nb.cells:
        shown, secret, _ = split(_source(cell), begin, end)
        visible.update(_normal(line) for line in shown)
        hidden.update(_normal(line) for line in secret)
    visible.update(_normal(line) for line in also_visible)
    return sorted(line for line in hidden - visible if len(line) >= MIN_LINE_CHARS)


def page_text(page_html):
    """What a page shows as text: tags removed, entities decoded, whitespace normalised."""
    return _normal(html.unescape(re.sub(r"<[^>]*>", "", page_html)))


def leaks(page_html, source_nb, submitted_nb=None, begin=BEGIN, end=END):
    """What of the hidden tests of ``source_nb`` the page ``page_html`` shows: the markers and
    every line of :func:`secret_lines` found in its text. Lines and markers that the student's
    own ``submitted_nb`` holds are not counted. ``[]`` when nothing of them shows."""
    own = [line for cell in (submitted_nb.cells if submitted_nb is not None else []) for line in
           _source(cell).split("\n")]
    text = page_text(page_html)
    found = [marker for marker in (begin, end) if marker in text and not any(marker in line for line in own)]
    return found + [line for line in secret_lines(source_nb, own, begin, end) if line in text]


def _where(traceback, hidden_numbers):
    """Whether the traceback's first frame in the cell is a line of a hidden region."""
    text = _ANSI.sub("", "\n".join(str(t) for t in traceback or []))
    match = _CELL_LINE.search(text)
    if not match:
        return ""
    return " (raised in a hidden test)" if int(match.group(1)) in hidden_numbers else \
        " (raised in the tests shown above)"


def _reduced(outputs, hidden_numbers, secrets):
    kept, left_out = [], 0
    for output in outputs or []:
        if output.get("output_type") != "error":
            left_out += 1
            continue
        ename, evalue = str(output.get("ename") or "Error")[:200], str(output.get("evalue") or "")
        if any(line in _normal(evalue) for line in secrets):
            evalue = "(the message is not shown: it quotes a hidden test)"
        where = _where(output.get("traceback"), hidden_numbers)
        kept.append(nbformat.v4.new_output("error", ename=ename, evalue=evalue,
                                           traceback=[(f"{ename}: {evalue}" if evalue else ename) + where]))
    if left_out:
        kept.insert(0, nbformat.v4.new_output(
            "stream", name="stdout", text=f"({left_out} output{'s' if left_out > 1 else ''} of this test cell not "
                                          "shown: the cell runs hidden tests)\n"))
    return kept


def hide_hidden_tests(nb, begin=BEGIN, end=END):
    """Take the hidden tests out of ``nb`` (an autograded notebook, changed in place) as
    described in the module's docstring. Returns one line per cell changed, for the log."""
    changed = []
    for index, cell in enumerate(nb.cells, 1):
        source = _source(cell)
        if begin not in source:
            continue
        visible, hidden, numbers = split(source, begin, end)
        secrets = [line for line in (_normal(h) for h in hidden) if len(line) >= MIN_LINE_CHARS]
        cell["source"] = "\n".join(visible)
        name = (cell.get("metadata", {}).get("nbgrader") or {}).get("grade_id") or f"cell {index}"
        if cell.get("cell_type") == "code":
            before = len(cell.get("outputs") or [])
            cell["outputs"] = _reduced(cell.get("outputs"), numbers, secrets)
            cell["execution_count"] = None
            changed.append(f"{name}: {len(hidden)} hidden line(s) and {before} output(s) replaced")
        else:
            changed.append(f"{name}: {len(hidden)} hidden line(s) removed")
    return changed


class HideHiddenTests(NbGraderPreprocessor):
    """nbgrader preprocessor for ``GenerateFeedback``, after ``GetGrades``: the feedback page
    shows each test cell's name, points and failure message, nothing of its hidden tests."""

    begin_test_delimeter = Unicode(BEGIN, help="the line that starts hidden tests (as ClearHiddenTests)"
                                   ).tag(config=True)
    end_test_delimeter = Unicode(END, help="the line that ends hidden tests (as ClearHiddenTests)").tag(config=True)

    def preprocess(self, nb, resources):
        # Delimiters an instructor set for nbgrader's ClearHiddenTests hold here too.
        clear = self.config.get("ClearHiddenTests", {})
        begin = self.begin_test_delimeter if "begin_test_delimeter" in self.config.get("HideHiddenTests", {}) \
            else clear.get("begin_test_delimeter", self.begin_test_delimeter)
        end = self.end_test_delimeter if "end_test_delimeter" in self.config.get("HideHiddenTests", {}) \
            else clear.get("end_test_delimeter", self.end_test_delimeter)
        for line in hide_hidden_tests(nb, begin, end):
            self.log.debug("feedback without hidden tests: %s", line)
        return nb, resources
