"""crsky.grading.feedback: what a student's outputs and markdown may put in a feedback page.

The unit tests feed :func:`sanitize_notebook` hostile notebooks and :func:`unsafe_html`
hostile pages; the end-to-end test runs nbgrader itself (generate_assignment, autograde
with the plain python3 kernel, generate_feedback) on a tiny course with a submission that
prints, displays and writes script, and checks the feedback page it returns."""

import base64
import os
import re
import struct
import subprocess
import sys
import time
import zlib

import nbformat
import pytest
from nbconvert.exporters import HTMLExporter
from nbconvert.filters.strings import strip_files_prefix

from crsky.grading.feedback import markdown_html_problems, safe_markdown, sanitize_notebook, unsafe_html

new_code, new_markdown, new_output = nbformat.v4.new_code_cell, nbformat.v4.new_markdown_cell, nbformat.v4.new_output


def png_bytes():
    """A real 1 x 1 PNG."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


PNG = base64.b64encode(png_bytes()).decode()
SVG = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert("svg")</script><circle r="5"/></svg>'


def render(nb):
    """The page nbconvert's classic template (the base of nbgrader's feedback template) makes."""
    return HTMLExporter(template_name="classic").from_notebook_node(nb)[0]


def hostile_outputs():
    return [
        new_output("stream", name="stdout", text="<script>alert('printed')</script>\n"),
        new_output("display_data", data={"text/html": "<script>alert('html')</script><style>body{display:none}</style>",
                                         "text/plain": "<IPython.core.display.HTML object>"}),
        new_output("display_data", data={"application/javascript": "alert('js')"}),
        new_output("display_data", data={"image/svg+xml": SVG, "text/plain": "<svg>"}),
        new_output("display_data", data={"text/markdown": "<img src=x onerror=alert('md')>"}),
        new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "1"},
                                         "text/plain": "IntSlider()"}),
        new_output("execute_result", execution_count=3,
                   data={"text/html": "<iframe src='javascript:alert(1)'></iframe>", "text/plain": "frame",
                         "image/png": PNG},
                   metadata={"image/png": {"width": '1" onerror="alert(2)', "height": 20},
                             "text/html": {"isolated": True}, "filenames": {"image/png": "javascript:alert(3)"}}),
        new_output("display_data", data={"image/png": base64.b64encode(b"<script>").decode(),
                                         "image/jpeg": 'AAAA" onerror="alert(4)'}),
        new_output("error", ename="ValueError", evalue="<b>bad</b>", traceback=["<script>alert('tb')</script>"]),
    ]


def hostile_notebook():
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "state": {}, "version_major": 2, "version_minor": 0, "x": "</script><script>alert('state')</script>"}}
    nb.cells = [
        new_code(source="show()", outputs=hostile_outputs(), execution_count=3),
        new_markdown("My <b>answer</b>: <script>alert('md')</script> <img src=x onerror=alert(1)> "
                     "<style>body{display:none}</style> and `a<b` and $x<y$.",
                     metadata={"nbgrader": {"grade": True, "solution": True, "grade_id": "explain", "points": 1,
                                            "schema_version": 3, "comment": "<script>alert('comment')</script>"}}),
        new_markdown("[click](javascript:alert(9))"),
        new_markdown("![x](attachment:a.svg) ![y](attachment:b.png)",
                     attachments={"a.svg": {"image/svg+xml": base64.b64encode(SVG.encode()).decode()},
                                  "b.png": {"image/png": PNG}}),
        new_code(source="pass", metadata={"nbgrader": {"grade_id": '"><script>alert("id")</script>', "grade": False,
                                                       "solution": True, "locked": False, "schema_version": 3}}),
        nbformat.v4.new_raw_cell("<script>alert('raw')</script>", metadata={"raw_mimetype": "text/html"}),
    ]
    return nb


# --------------------------------------------------------------- sanitizing
def test_outputs_keep_only_plain_text_and_real_images():
    nb = hostile_notebook()
    removed = sanitize_notebook(nb)
    nbformat.validate(nb)  # still a notebook nbgrader can render
    again = nbformat.from_dict(nbformat.reads(nbformat.writes(nb), as_version=4))
    assert sanitize_notebook(again) == [] and again == nb  # a second pass finds nothing to do
    outputs = nb.cells[0].outputs

    assert [o.output_type for o in outputs] == ["stream", "display_data", "display_data", "display_data",
                                                "display_data", "display_data", "execute_result", "display_data",
                                                "error"]
    assert outputs[0].text == "<script>alert('printed')</script>\n"  # plain text: nbconvert escapes it
    for output in outputs[1:-1]:
        assert set(output.data) <= {"text/plain", "image/png", "image/jpeg"}
    assert outputs[2].data == {"text/plain": "[application/javascript output: not shown in the feedback]"}
    assert outputs[6].data == {"text/plain": "frame", "image/png": PNG}
    assert outputs[6].metadata == {"image/png": {"height": 20}} and outputs[6].execution_count == 3
    assert "not a valid image" in outputs[7].data["text/plain"]
    assert outputs[8].traceback == ["<script>alert('tb')</script>"]
    log = "\n".join(removed)
    for word in ["text/html", "application/javascript", "image/svg+xml", "text/markdown",
                 "application/vnd.jupyter.widget-view+json", "widget state", "a.svg", "grade_id", "comment", "raw"]:
        assert word in log, word


def test_sanitized_page_holds_nothing_that_runs_and_the_raw_page_does():
    clean = nbformat.v4.new_notebook()
    clean.cells = [new_code(source="1", outputs=[new_output("stream", name="stdout", text="hello\n")]),
                   new_markdown("plain")]
    template = render(clean)
    raw = unsafe_html(render(hostile_notebook()), template)
    nb = hostile_notebook()
    sanitize_notebook(nb)
    page = render(nb)

    for payload in ["alert('html')", "display:none", "alert('js')", "svg+xml", "alert('md')", "onerror",
                    "javascript:alert(9)", "iframe", "widget"]:
        assert any(payload in finding for finding in raw), payload
    assert unsafe_html(page, template) == []
    assert "&lt;script&gt;alert(&#39;printed&#39;)" in page or "&lt;script&gt;alert('printed')" in page
    assert f"data:image/png;base64,{PNG}" in page
    assert "[click](javascript:alert(9))" in page  # shown as its source, not a link


@pytest.mark.parametrize("source", [
    "[a](javascript:alert(1))", "[a](JaVaScRiPt&colon;alert(1))", "[a](java\tscript:alert(1))",
    "[a][r]\n\n[r]: javascript:alert(1)", "![a](javascript:alert(1))", "[a](vbscript:msgbox)",
    "[a](data:text/html;base64,PHNjcmlwdD4=)", "<javascript:alert(1)>", "<a href='javascript:alert(1)'>a</a>",
    "<img src=x onerror=alert(1)>", "<svg onload=alert(1)>", "<iframe srcdoc='<script>alert(1)</script>'>",
    "para\n    <script>alert(1)</script>", "`unclosed <script>alert(1)</script>", "<!-- <script>alert(1)</script> -->",
    "```\n<b>fenced</b>\n```\n<script>alert(1)</script>", "$x$ <script>alert(1)</script> $$y$$",
    "<div style='position:fixed;top:0'>fake score: 10/10</div>", "| a |\n|---|\n| <script>alert(1)</script> |",
    "<details open ontoggle=alert(1)>", "![x](attachment:missing.png)",
    "[a](files/javascript:alert(1))", "[a](/files/javascript:alert(1))", "![a](files/data:text/html,x)",
])
def test_markdown_never_renders_markup_or_unsafe_links(source):
    new_source, _ = safe_markdown(source)
    rendered = strip_files_prefix(HTMLExporter().markdown2html({"cell": {}}, new_source))  # as the template does

    assert markdown_html_problems(rendered) == []
    assert unsafe_html(rendered) == []


def test_long_markdown_is_cut_before_nbconvert_parses_it():
    """400,000 characters of "[a](" keep nbconvert's markdown2html and strip_files_prefix busy
    for minutes; what is left of them renders in about a second, and a notebook's markdown
    beyond 100,000 characters is not shown."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [new_markdown("[a](" * 100_000)] + [new_markdown("An answer. " * 900) for _ in range(10)]
    start = time.perf_counter()
    log = sanitize_notebook(nb)
    page = render(nb)

    assert time.perf_counter() - start < 15
    assert nb.cells[0].source.startswith("```\n[a](") and len(nb.cells[0].source) < 10_100
    assert "longer than 10,000 characters (the start is shown)" in log[0]
    assert nb.cells[-1].source == "*(not shown here: see the submitted notebook)*"
    assert "markdown is longer than 100,000 characters" in log[-1]
    assert "[a](" in page


@pytest.mark.parametrize("source, shown", [
    ("x < 5 and <b>bold</b>", "x &lt; 5 and &lt;b&gt;bold&lt;/b&gt;"),
    ("`a<b` in code", "<code>a&lt;b</code>"),
    ("$x<y$ in math", "$x&lt;y$"),
    ("```python\nif a<b: pass\n```", "&lt;"),
    ("> a quote", "<blockquote>"),
    ("[a link](https://example.org) and ![img](data:image/png;base64,AAAA)", 'href="https://example.org"'),
    ("| a | b |\n|:--|--:|\n| 1 | 2 |", '<th style="text-align:left">'),
    ("# Title\n\n- [x] done\n\n1. one", "<h1"),
])
def test_markdown_that_is_only_markdown_renders_as_written(source, shown):
    new_source, _ = safe_markdown(source)
    rendered = HTMLExporter().markdown2html({"cell": {}}, new_source)

    assert shown in rendered
    assert "<pre><code>" not in rendered or "```" in source  # not turned into a source listing


@pytest.mark.parametrize("page", [
    "<script>alert(1)</script>", "<SCRIPT SRC=//evil.example/x.js></SCRIPT>", "<style>body{display:none}</style>",
    "<img src=x onerror=alert(1)>", "<img/src=\"x\"/onerror=alert(1)>", "<body onload=alert(1)>",
    "<a href='JaVa&#x09;Script:alert(1)'>x</a>", "<a href='  javascript:alert(1)'>x</a>",
    "<iframe src=https://example.org></iframe>", "<object data=x.swf></object>", "<embed src=x>",
    "<svg><script>alert(1)</script></svg>", "<math><mtext>x</mtext></math>", "<link rel=stylesheet href=x.css>",
    "<meta http-equiv=refresh content='0;url=javascript:alert(1)'>", "<base href=//evil.example/>",
    "<form action=javascript:alert(1)><button>x</button></form>", "<p style='color:red'>x</p>",
    "<img src='data:image/svg+xml;base64,PHN2Zz4='>", "<a href='data:text/html,x'>x</a>",
    "<img srcset='x.png 1x, javascript:alert(1) 2x'>", "<div srcdoc='x'></div>",
])
def test_unsafe_html_finds_what_could_run_or_restyle(page):
    assert unsafe_html(f"<html><body>{page}</body></html>")


@pytest.mark.parametrize("page", [
    "<p>x &lt;script&gt;alert(1)&lt;/script&gt;</p>", "<pre>&lt;img src=x onerror=alert(1)&gt;</pre>",
    f"<img src='data:image/png;base64,{PNG}' width=3>", "<a href='https://example.org/#x'>x</a>",
    "<a href='#top'>x</a>", "<span style='color: rgb(255,0,0)'>red</span>", "<meta charset='utf-8'>",
])
def test_unsafe_html_lets_plain_content_pass(page):
    assert unsafe_html(f"<!DOCTYPE html><html><body>{page}</body></html>") == []


def test_unsafe_html_discounts_only_what_the_template_holds_as_often():
    template = "<script src='https://cdn.example/mathjax.js'></script><style>.x{}</style>"
    assert unsafe_html(template + "<p>answer</p>", template) == []
    assert len(unsafe_html(template + "<style>.x{}</style>", template)) == 1  # a second copy is the student's
    assert unsafe_html(template + "<script>alert(1)</script>", template) == ["<script> content 'alert(1)'"]


# ---------------------------------------------------------- with nbgrader
# Hidden tests of the tiny course: their code must reach no feedback page (the failure
# messages written into their asserts do).
HIDDEN_ANSWER = """### BEGIN HIDDEN TESTS
secret_expected = int("4" + "2")
print("hidden input:", secret_expected * 1000)
assert type(answer()) is type(secret_expected), "answer() must return an int"
### END HIDDEN TESTS"""
HIDDEN_NAME = """### BEGIN HIDDEN TESTS
assert name().upper() == "OK" and len(name()) == 2
### END HIDDEN TESTS"""

SOURCE_CELLS = [
    ("markdown", "# A tiny assignment\n\nFill in `answer` and `name`; explain below.", None),
    ("code", "def answer():\n    ### BEGIN SOLUTION\n    return 42\n    ### END SOLUTION\n\n\n"
             "def name():\n    ### BEGIN SOLUTION\n    return 'ok'\n    ### END SOLUTION",
     {"grade": False, "solution": True, "locked": False, "grade_id": "answers"}),
    ("code", '"""answer() is 42"""\nassert answer() == 42\n' + HIDDEN_ANSWER,
     {"grade": True, "solution": False, "locked": True, "grade_id": "test_answer", "points": 1}),
    ("code", '"""name() is ok"""\nassert name() == "ok"\n' + HIDDEN_NAME,
     {"grade": True, "solution": False, "locked": True, "grade_id": "test_name", "points": 1}),
    ("markdown", "Why 42?\n\n", None),
    ("markdown", "### BEGIN SOLUTION\nBecause.\n### END SOLUTION",
     {"grade": True, "solution": True, "locked": False, "grade_id": "explain", "points": 1}),
]

HOSTILE_CELLS = [  # code a student adds: what it prints, displays and returns
    r"""print("<script>alert('stdout')</script>")
print('plain text survives')""",
    r"""from IPython.display import HTML, Javascript, SVG, Markdown, Image, display
display(HTML("<script>alert('html')</script><style>body{display:none}</style>"
             "<img src=x onerror=alert('img')><iframe src='javascript:alert(1)'></iframe>"))
display(Javascript("alert('js')"))
display(SVG(SVG_TEXT))
display(Markdown('<img src="x" onerror="alert(\'markdown-output\')">'))
display({"application/vnd.jupyter.widget-view+json": {"model_id": "x", "version_major": 2, "version_minor": 0},
         "text/plain": "a widget"}, raw=True)
display(Image(data=PNG_BYTES, format="png"))""",
    r"""class Page:
    def _repr_html_(self):
        return "<img src=x onerror=alert('repr')>"

Page()""",
]


def course_feedback_steps():
    """The dotted names of ``c.GenerateFeedback.preprocessors`` in grading/nbgrader_config.py."""
    from crsky.grading import nbgrader_cli

    return [f"{step.__module__}.{step.__qualname__}" if isinstance(step, type) else step
            for step in nbgrader_cli.feedback_config().GenerateFeedback.preprocessors]


def _nbgrader(course, env, *args):
    run = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, f"nbgrader {' '.join(args)}:\n{run.stdout}\n{run.stderr}"
    return run


def _answered(release, hostile, answer="42"):
    nb = nbformat.read(release, as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade_id") == "answers":
            cell.source = (f"def answer():\n    return {answer}\n\n\ndef name():\n"
                           + ("    raise ValueError(\"<script>alert('traceback')</script>\")" if hostile
                              else "    return 'ok'"))
        elif meta.get("grade_id") == "explain":
            cell.source = ("Because <b>it</b> is: <script>alert('answer')</script> <img src=x onerror=alert(5)> "
                           "<style>body{display:none}</style> and $x<y$." if hostile else "Because it is.")
    if hostile:
        at = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "answers")
        setup = f"import base64\nSVG_TEXT = {SVG!r}\nPNG_BYTES = base64.b64decode({PNG!r})"
        nb.cells[at + 1:at + 1] = [new_code(source) for source in [setup, *HOSTILE_CELLS]]
        nb.cells.append(new_markdown("See [my notes](javascript:alert(8)), [these](files/javascript:alert(10)) and "
                                     "<a href=\"javascript:alert('a')\">this</a>."))
        nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
            "state": {}, "version_major": 2, "version_minor": 0}}
    return nb


@pytest.fixture(scope="module")
def feedback_pages(tmp_path_factory):
    """Feedback pages nbgrader made for one tiny course: ``clean`` (an untouched correct
    notebook), ``raw`` (the hostile notebook as autograded) and ``sanitized`` (the same
    autograded notebook after :func:`sanitize_notebook`)."""
    course = tmp_path_factory.mktemp("course")
    source = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                               "language": "python"}})
    for kind, text, meta in SOURCE_CELLS:
        cell = new_code(text) if kind == "code" else new_markdown(text)
        if meta:
            cell.metadata["nbgrader"] = {"schema_version": 3, **meta}
        source.cells.append(cell)
    (course / "source" / "tiny").mkdir(parents=True)
    nbformat.write(source, course / "source" / "tiny" / "tiny.ipynb")
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        "c.CourseDirectory.course_id = 'tiny'\n"
        f"c.CourseDirectory.db_url = 'sqlite:///{course / 'gradebook.db'}'\n"
        f"c.Exchange.root = {str(course / 'exchange')!r}\n"
        "c.Execute.timeout = 60\n"
        "c.ExecutePreprocessor.kernel_name = 'python3'\n"
        # the course's feedback steps, as grading/nbgrader_config.py lists them
        "from traitlets.utils.importstring import import_item\n"
        f"c.GenerateFeedback.preprocessors = [import_item(name) for name in {course_feedback_steps()!r}]\n")
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(course / "jupyter" / "config"),
               JUPYTER_DATA_DIR=str(course / "jupyter" / "data"),
               JUPYTER_RUNTIME_DIR=str(course / "jupyter" / "runtime"), PYTHONWARNINGS="ignore",
               # nbgrader runs `alembic` from PATH: this Python's scripts first.
               PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))

    _nbgrader(course, env, "generate_assignment", "tiny", "--force")
    release = course / "release" / "tiny" / "tiny.ipynb"
    for student, hostile, answer in [("clean", False, "42"), ("raw", True, "42"), ("sanitized", True, "42"),
                                     ("float", False, "42.0")]:  # float: fails a hidden test only
        (course / "submitted" / student / "tiny").mkdir(parents=True)
        nbformat.write(_answered(release, hostile, answer), course / "submitted" / student / "tiny" / "tiny.ipynb")
    autograde = _nbgrader(course, env, "autograde", "tiny", "--force")
    autograded = course / "autograded" / "sanitized" / "tiny" / "tiny.ipynb"
    nb = nbformat.read(autograded, as_version=4)
    removed = sanitize_notebook(nb)
    nbformat.write(nb, autograded)
    _nbgrader(course, env, "generate_feedback", "tiny", "--force")
    pages = {s: (course / "feedback" / s / "tiny" / "tiny.html").read_text()
             for s in ("clean", "raw", "sanitized", "float")}
    return {**pages, "removed": removed, "source": source, "autograde_log": autograde.stdout + autograde.stderr,
            "autograded": nbformat.read(course / "autograded" / "float" / "tiny" / "tiny.ipynb", as_version=4)}


PAYLOADS = ["alert('html')", "display:none", "onerror", "alert('js')", "svg", "alert('markdown-output')",
            "alert('repr')", "alert('answer')", "alert(5)", "javascript:alert(8)", "javascript:alert(10)",
            "javascript:alert('a')", "iframe"]


@pytest.mark.grading
def test_nbgrader_feedback_of_a_hostile_notebook_carries_its_script(feedback_pages):
    """Without sanitizing, nbgrader's feedback holds every payload: the test sees them."""
    found = " ".join(unsafe_html(feedback_pages["raw"], feedback_pages["clean"]))
    for payload in PAYLOADS:
        assert payload in found, payload


@pytest.mark.grading
def test_nbgrader_feedback_of_a_sanitized_notebook_holds_nothing_that_runs(feedback_pages):
    page, clean = feedback_pages["sanitized"], feedback_pages["clean"]

    assert unsafe_html(clean)  # the template's own MathJax script and styles ...
    assert unsafe_html(page, clean) == []  # ... and nothing beyond them
    log = " ".join(feedback_pages["removed"])
    for mime in ["text/html", "application/javascript", "image/svg+xml", "text/markdown", "widget"]:
        assert mime in log, mime


@pytest.mark.grading
def test_nbgrader_feedback_of_a_sanitized_notebook_still_shows_text_images_and_results(feedback_pages):
    page = feedback_pages["sanitized"]

    assert "plain text survives" in page
    assert "<pre>&lt;script&gt;alert('stdout')&lt;/script&gt;" in page  # printed markup shows as text
    assert f"data:image/png;base64,{PNG}" in page
    assert "Score: 1.0 / 1.0" in page and "Score: 0.0 / 1.0" in page  # test_answer passed, test_name failed
    assert "test_answer" in page and "test_name" in page and "ValueError" in page
    assert "Because &lt;b&gt;it&lt;/b&gt; is" in page  # the written answer, its markup as text
    assert "&lt;IPython.core.display.HTML object&gt;" in page


# ------------------------------------------------------------ hidden tests
HIDDEN_CODE = ["BEGIN HIDDEN TESTS", "END HIDDEN TESTS", 'secret_expected = int("4" + "2")',
               "type(answer()) is type(secret_expected)", 'name().upper() == "OK"', "hidden input:", "42000"]


def _hidden_test_notebook():
    """An autograded notebook as nbgrader leaves it: a test cell with its hidden tests back
    in, a traceback (as IPython writes it) quoting the hidden line that failed."""
    source = '"""answer() is 42"""\nassert answer() == 42\n' + HIDDEN_ANSWER
    failing = source.split("\n").index('assert type(answer()) is type(secret_expected), "answer() must return an int"')
    traceback = ["\x1b[0;31m----------------------------------------------------------------------\x1b[0m",
                 "\x1b[0;31mAssertionError\x1b[0m                            Traceback (most recent call last)",
                 f"Cell \x1b[0;32mIn[3], line {failing + 1}\x1b[0m\n      1 # ...\n\x1b[0;32m----> {failing + 1}\x1b[0m "
                 "assert type(answer()) is type(secret_expected), \"answer() must return an int\"\n",
                 "\x1b[0;31mAssertionError\x1b[0m: answer() must return an int"]
    nb = nbformat.v4.new_notebook()
    nb.cells = [new_code("def answer():\n    return 42.0", metadata={"nbgrader": {
                    "grade": False, "solution": True, "locked": False, "grade_id": "answers", "schema_version": 3}}),
                new_code(source, execution_count=3, metadata={"nbgrader": {
                    "grade": True, "solution": False, "locked": True, "grade_id": "test_answer", "points": 1,
                    "schema_version": 3}},
                    outputs=[new_output("stream", name="stdout", text="hidden input: 42000\n"),
                             new_output("error", ename="AssertionError", evalue="answer() must return an int",
                                        traceback=traceback)])]
    return nb


def test_hiding_takes_the_hidden_code_and_its_traceback_out_of_a_page():
    from crsky.grading.hidden import NOT_SHOWN, hide_hidden_tests, leaks

    nb = _hidden_test_notebook()
    source = nbformat.from_dict(nbformat.reads(nbformat.writes(nb), as_version=4))
    before = render(nb)
    assert len(leaks(before, source)) >= 4  # the markers and the hidden lines: the search finds them
    log = hide_hidden_tests(nb)
    nbformat.validate(nb)
    page = render(nb)

    assert leaks(page, source) == []
    for code in HIDDEN_CODE:
        assert code not in page, code
    test = nb.cells[1]
    assert test.source == '"""answer() is 42"""\nassert answer() == 42\n' + NOT_SHOWN
    assert test.metadata.nbgrader["grade_id"] == "test_answer" and test.metadata.nbgrader["points"] == 1
    assert [o.output_type for o in test.outputs] == ["stream", "error"]
    assert test.outputs[1].traceback == ["AssertionError: answer() must return an int (raised in a hidden test)"]
    assert "not shown: the cell runs hidden tests" in test.outputs[0].text
    assert log == ["test_answer: 3 hidden line(s) and 2 output(s) replaced"]
    assert hide_hidden_tests(nb) == []  # nothing left to hide


def test_a_failure_in_the_visible_tests_says_so_and_a_message_quoting_hidden_code_is_replaced():
    from crsky.grading.hidden import hide_hidden_tests

    nb = _hidden_test_notebook()
    error = nb.cells[1].outputs[1]
    error.traceback = [t.replace("line 6", "line 2").replace("----> 6", "----> 2") for t in error.traceback]
    error.evalue = 'oops: assert type(answer()) is type(secret_expected), "answer() must return an int"'
    hide_hidden_tests(nb)
    assert nb.cells[1].outputs[1].traceback == [
        "AssertionError: (the message is not shown: it quotes a hidden test) (raised in the tests shown above)"]


def test_the_course_configuration_hides_hidden_tests_in_every_feedback_page():
    steps = course_feedback_steps()
    assert steps == ["nbgrader.preprocessors.getgrades.GetGrades", "crsky.grading.hidden.HideHiddenTests",
                     "nbconvert.preprocessors.csshtmlheader.CSSHTMLHeaderPreprocessor"], steps


@pytest.mark.grading
def test_no_hidden_test_line_reaches_a_feedback_page_of_nbgrader(feedback_pages):
    from crsky.grading.hidden import leaks

    for student in ("clean", "raw", "sanitized", "float"):
        page = feedback_pages[student]
        assert leaks(page, feedback_pages["source"]) == [], student
        for code in HIDDEN_CODE:
            assert code not in page, (student, code)
    # The autograded notebook (what instructors grade from) keeps them.
    assert any("BEGIN HIDDEN TESTS" in c.source for c in feedback_pages["autograded"].cells)


@pytest.mark.grading
def test_a_failed_hidden_test_shows_its_name_points_and_message(feedback_pages):
    page = feedback_pages["float"]
    assert "test_answer" in page and "Score: 0.0 / 1.0" in page and "Score: 1.0 / 1.0" in page  # test_name passed
    assert "AssertionError: answer() must return an int (raised in a hidden test)" in page
    from crsky.grading.hidden import NOT_SHOWN, page_text

    text = page_text(page)  # the code is highlighted: its words are spans of their own
    assert 'assert answer() == 42 ' + NOT_SHOWN in text  # the visible tests, as the student's notebook has them
    assert "(1 output of this test cell not shown: the cell runs hidden tests)" in text


CHECKSUM_WARNING = re.compile(r"WARNING\] Attribute 'checksum' for cell (\S+) has changed!")


@pytest.mark.grading
def test_nbgrader_warns_of_a_changed_checksum_for_exactly_the_cells_with_hidden_tests(feedback_pages):
    """What grading/README.md tells instructors: the warning comes for every cell with hidden
    tests, in every submission, and for no other cell of an untouched notebook."""
    warned = CHECKSUM_WARNING.findall(feedback_pages["autograde_log"])
    with_hidden = {c.metadata.nbgrader["grade_id"] for c in feedback_pages["source"].cells if "HIDDEN TESTS" in c.source}
    assert with_hidden == {"test_answer", "test_name"}
    assert sorted(warned) == sorted(list(with_hidden) * 4), warned  # four submissions


def test_the_readme_lists_exactly_the_cells_whose_checksum_warning_is_expected():
    from nbgrader.preprocessors import ClearHiddenTests
    from nbgrader.utils import compute_checksum

    from crsky.course import ASSIGNMENTS, COURSE_ROOT

    readme = (COURSE_ROOT / "grading" / "README.md").read_text()
    start = readme.index("are\nexactly those with hidden tests") if "are\nexactly those" in readme else \
        readme.index("exactly those with hidden tests")
    listed = set(re.findall(r"`(test_\w+)`", readme[start:readme.index("The same warning for any other cell")]))
    expected = set()
    for assignment in ASSIGNMENTS:
        nb = nbformat.read(COURSE_ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if not (meta.get("locked") or (meta.get("grade") and not meta.get("solution"))):
                continue
            release = nbformat.from_dict(cell)
            ClearHiddenTests()._remove_hidden_test_region(release)  # what generate_assignment does to it
            if compute_checksum(release) != compute_checksum(cell):  # what autograde compares
                expected.add(meta["grade_id"])
    assert expected and listed == expected, f"grading/README.md lists {sorted(listed)}, nbgrader warns for {sorted(expected)}"
