"""Feedback pages that cannot carry script.

nbgrader's ``generate_feedback`` renders the autograded notebook to HTML as it is: what a
student's code displayed (``text/html``, SVG, JavaScript, Markdown, widgets) and what a
student wrote in a markdown cell end up in the page returned to the student, scripts,
styles and event handlers included; its template also prints a cell's ``grade_id`` without
escaping. :func:`sanitize_notebook` is run on each autograded notebook before
``generate_feedback``; :func:`unsafe_html` lists what in a page could run or restyle, for
the tests and as a last check of every page written.

What :func:`sanitize_notebook` keeps:

- outputs: ``text/plain``, ``image/png`` and ``image/jpeg`` (base64 that decodes to such an
  image, width and height as numbers and nothing else of the metadata), streams and errors
  (nbconvert escapes their text); every other representation is dropped, and an output
  left with none says in plain text what was removed;
- markdown cells: every ``<`` outside code and math becomes ``&lt;``, so raw HTML shows as
  text; the result is rendered with nbconvert's own Markdown renderer (the one the feedback
  template uses) and checked against the few tags and attributes Markdown makes, with
  links and images only to ``http``, ``https``, ``mailto``, relative addresses and embedded
  PNG/JPEG/GIF. A cell that fails the check (a ``javascript:`` link, say) is shown as its
  source in a code block instead. Attachments other than PNG/JPEG are removed;
- raw cells: ``<`` escaped and the MIME type removed (nbconvert renders a raw cell
  without one as HTML);
- nbgrader metadata: a ``grade_id`` nbgrader would not write (``[A-Za-z0-9_-]``) drops the
  cell's nbgrader metadata, and a ``comment`` is removed (GetGrades puts the grader's back);
- the notebook's widget state (it makes the page load and run the widget manager).

MathJax, which the feedback template loads, runs with its ``Safe`` extension
(``\\href{javascript:...}`` and the like are refused there).
"""

import base64
import binascii
import collections
import hashlib
import re
from html.parser import HTMLParser

import nbformat

_IMAGE_MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}\Z")
GRADE_ID = re.compile(r"[A-Za-z0-9_-]+\Z")  # what nbgrader's own tools write
# Markdown is parsed by nbconvert (mistune) and then searched by its strip_files_prefix, both
# in time that grows with the square of hostile text: 400,000 characters of "[a](" take
# minutes. A longer markdown cell is shown as the start of its source; beyond the notebook's
# budget, markdown cells are not shown at all.
MAX_MARKDOWN_CHARS = 10_000
MAX_NOTEBOOK_MARKDOWN_CHARS = 100_000
NOT_SHOWN = "*(not shown here: see the submitted notebook)*"

# Code and math, where Markdown shows '<' as text already: left as written (a wrong guess
# here costs looks, never safety: the rendered cell is checked either way).
_MARKDOWN_PROTECTED = re.compile(
    r"^[ ]{0,3}(?P<fence>`{3,}|~{3,})[^\n]*\n.*?(?:^[ ]{0,3}(?P=fence)[`~]*[ \t]*$|\Z)"  # fenced code
    r"|(?P<ticks>`+)[^`].*?(?<!`)(?P=ticks)(?!`)"  # inline code
    r"|\$\$.+?\$\$|\$[^$\n]+\$",  # display and inline math
    re.MULTILINE | re.DOTALL)

# What nbconvert's Markdown renderer makes, and nothing else.
_MARKDOWN_TAGS = frozenset(
    "a abbr b blockquote br code dd del div dl dt em h1 h2 h3 h4 h5 h6 hr i img input li ol p pre s span "
    "strong sub sup table tbody td th thead tr ul".split())
_MARKDOWN_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title", "width", "height"},
                        "ol": {"start"}, "input": {"type", "disabled", "checked"}, "td": {"style", "align"},
                        "th": {"style", "align"}}
_ALIGN = re.compile(r"text-align:\s*(left|right|center);?\Z")
_SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
_IMAGE_DATA = re.compile(r"data:image/(png|jpeg|gif);base64,", re.IGNORECASE)
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")

# What could run or restyle in a page.
_ACTIVE_TAGS = frozenset(
    "script style iframe frame frameset object embed applet base link form svg math template portal".split())
_URL_ATTRIBUTES = frozenset(
    "href src action formaction data xlink:href background poster lowsrc dynsrc codebase cite longdesc "
    "usemap ping srcset".split())
_ANSI_COLOUR = re.compile(r"((background-)?color: rgb\(\d{1,3},\d{1,3},\d{1,3}\);?\s*)+\Z")


# ------------------------------------------------------------------ sanitizing
def sanitize_notebook(nb: nbformat.NotebookNode) -> list[str]:
    """Make ``nb`` (an autograded notebook) safe to render as feedback, in place; returns
    one line per thing removed or changed, for the log."""
    removed = []
    if "widgets" in nb.metadata:
        del nb.metadata["widgets"]
        removed.append("notebook: removed the widget state (it would load and run the widget manager)")
    cells, budget = [], MAX_NOTEBOOK_MARKDOWN_CHARS
    for index, cell in enumerate(nb.cells, 1):
        where = f"cell {index} ({_shown(cell.get('cell_type'), 20)}"
        grade_id = _clean_nbgrader_metadata(cell, removed, f"cell {index}")
        where += f", {grade_id})" if grade_id else ")"
        if cell.get("cell_type") == "code":
            if not isinstance(cell.get("execution_count"), int) or isinstance(cell.get("execution_count"), bool):
                cell["execution_count"] = None
            cell.pop("attachments", None)
            outputs = []
            for number, output in enumerate(cell.get("outputs") or [], 1):
                clean = _clean_output(output, f"{where} output {number}", removed)
                if clean is not None:
                    outputs.append(clean)
            cell["outputs"] = outputs
        elif cell.get("cell_type") == "markdown":
            _clean_attachments(cell, where, removed)
            source = _text(cell.get("source"))
            budget -= min(len(source), MAX_MARKDOWN_CHARS)
            if budget < 0:
                source, note = NOT_SHOWN, f"not shown: the notebook's markdown is longer than " \
                                          f"{MAX_NOTEBOOK_MARKDOWN_CHARS:,} characters"
            else:
                source, note = safe_markdown(source, cell.get("attachments") or {})
            if note:
                removed.append(f"{where}: {note}")
            cell["source"] = source
        elif cell.get("cell_type") == "raw":
            cell.pop("attachments", None)
            for key in ("raw_mimetype", "format"):
                cell.metadata.pop(key, None)
            source = _text(cell.get("source"))
            if "<" in source:
                removed.append(f"{where}: escaped the raw cell's markup")
            cell["source"] = source.replace("<", "&lt;")
        else:
            removed.append(f"{where}: removed a cell of unknown type")
            continue
        cells.append(cell)
    nb.cells = cells
    return removed


def _shown(value, limit=60):
    """A value from the notebook as it can go into the log: escaped, cut short."""
    return (ascii(value)[1:-1] if isinstance(value, str) else ascii(value))[:limit]


def _text(value):
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return value if isinstance(value, str) else ""


def _clean_nbgrader_metadata(cell, removed, where):
    if not isinstance(cell.get("metadata"), dict):
        cell["metadata"] = nbformat.NotebookNode()
    meta = cell.metadata.get("nbgrader")
    if meta is None:
        return None
    grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
    valid = isinstance(grade_id, str) and GRADE_ID.match(grade_id)
    if not isinstance(meta, dict) or ("grade_id" in meta and not valid):
        del cell.metadata["nbgrader"]
        removed.append(f"{where}: removed nbgrader metadata with a grade_id nbgrader never writes: "
                       f"{_shown(grade_id, 80)}")
        return None
    if "comment" in meta:
        del meta["comment"]
        removed.append(f"{where}: removed a comment from the notebook (the grader's comments come from the gradebook)")
    return grade_id


def _image(value, mime):
    """The base64 of a real PNG/JPEG (whitespace removed), or None."""
    data = re.sub(r"\s+", "", _text(value))
    if not _BASE64.match(data):
        return None
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if raw.startswith(_IMAGE_MAGIC[mime]) else None


def _clean_output(output, where, removed):
    kind = output.get("output_type") if isinstance(output, dict) else None
    if kind == "stream":
        name = output.get("name") if output.get("name") in ("stdout", "stderr") else "stdout"
        return nbformat.v4.new_output("stream", name=name, text=_text(output.get("text")))
    if kind == "error":
        traceback = output.get("traceback") if isinstance(output.get("traceback"), list) else []
        return nbformat.v4.new_output("error", ename=_text(output.get("ename")), evalue=_text(output.get("evalue")),
                                      traceback=[line for line in traceback if isinstance(line, str)])
    if kind not in ("execute_result", "display_data"):
        removed.append(f"{where}: removed an output of type {_shown(kind, 40)}")
        return None
    data = output.get("data") if isinstance(output.get("data"), dict) else {}
    metadata = output.get("metadata") if isinstance(output.get("metadata"), dict) else {}
    kept, dropped, sizes = {}, [], {}
    for mime, value in data.items():
        if mime == "text/plain":
            kept[mime] = _text(value)
        elif mime in _IMAGE_MAGIC and _image(value, mime):
            kept[mime] = _image(value, mime)
            given = metadata.get(mime) if isinstance(metadata.get(mime), dict) else {}
            size = {k: v for k, v in given.items() if k in ("width", "height") and type(v) is int and 0 < v <= 10000}
            if size:
                sizes[mime] = size
        else:
            dropped.append(mime if mime not in _IMAGE_MAGIC else f"{mime} (not a valid image)")
    listed = ", ".join(_shown(m) for m in dropped)
    if dropped:
        removed.append(f"{where}: removed {listed}")
    if not kept:
        kept["text/plain"] = f"[{listed or 'empty'} output: not shown in the feedback]"
    if kind == "execute_result":
        count = output.get("execution_count")
        return nbformat.v4.new_output(kind, data=kept, metadata=sizes,
                                      execution_count=count if type(count) is int else None)
    return nbformat.v4.new_output(kind, data=kept, metadata=sizes)


def _clean_attachments(cell, where, removed):
    attachments = cell.get("attachments")
    if attachments is None:
        return
    clean = {}
    for name, bundle in (attachments.items() if isinstance(attachments, dict) else []):
        kept = {m: _image(v, m) for m, v in (bundle.items() if isinstance(bundle, dict) else []) if m in _IMAGE_MAGIC}
        kept = {m: v for m, v in kept.items() if v}
        if not isinstance(bundle, dict) or len(kept) != len(bundle):
            what = ", ".join(sorted(set(bundle) - set(kept))) if isinstance(bundle, dict) else "malformed"
            removed.append(f"{where}: removed attachment {_shown(name)} ({what})")
        if kept:
            clean[name] = kept
    cell["attachments"] = clean
    if not clean:
        del cell["attachments"]


# -------------------------------------------------------------------- markdown
def safe_markdown(source: str, attachments: dict | None = None) -> tuple[str, str | None]:
    """Markdown that renders without raw HTML or unsafe links: ``(new source, note or None)``.

    Every ``<`` outside code and math becomes ``&lt;``; if nbconvert's rendering of that is
    still not plain Markdown output (see :func:`markdown_html_problems`), or the cell is
    longer than :data:`MAX_MARKDOWN_CHARS`, the cell becomes a code block showing its source.
    """
    if len(source) > MAX_MARKDOWN_CHARS:
        why = f"it is longer than {MAX_MARKDOWN_CHARS:,} characters (the start is shown)"
        source = source[:MAX_MARKDOWN_CHARS] + "\n[...]"
    else:
        escaped = _escape_markup(source)
        problems = markdown_html_problems(_render_markdown(escaped, attachments))
        if not problems:
            return escaped, ("escaped raw HTML" if escaped != source else None)
        why = f"rendered, it would hold {'; '.join(problems)[:300]}"
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", source)), default=0) + 1)
    shown = f"{fence}\n{source}\n{fence}"
    if markdown_html_problems(_render_markdown(shown, None)):  # not seen; kept so that nothing unsafe is left
        return NOT_SHOWN, f"not shown: {why}"
    return shown, f"shown as source code: {why}"


def _escape_markup(source):
    out, last = [], 0
    for match in _MARKDOWN_PROTECTED.finditer(source):
        out.append(source[last:match.start()].replace("<", "&lt;"))
        out.append(match.group())
        last = match.end()
    out.append(source[last:].replace("<", "&lt;"))
    return "".join(out)


_EXPORTER = None


def _render_markdown(source, attachments):
    """``source`` as the feedback template renders a markdown cell (``markdown2html |
    strip_files_prefix``: the second turns ``href="files/javascript:..."`` into
    ``href="javascript:..."``), or None where that fails (a missing attachment, say)."""
    global _EXPORTER
    from nbconvert.exporters import HTMLExporter
    from nbconvert.filters.strings import strip_files_prefix

    if _EXPORTER is None:
        _EXPORTER = HTMLExporter()
    try:
        return strip_files_prefix(_EXPORTER.markdown2html({"cell": {"attachments": attachments or {}}}, source))
    except Exception:  # nbconvert raises for a missing attachment; the source is shown instead
        return None


def markdown_html_problems(rendered: str | None) -> list[str]:
    """What in rendered Markdown goes beyond the tags and attributes Markdown itself makes,
    with links and images to safe addresses only; [] when nothing does."""
    if rendered is None:
        return ["markdown that nbconvert cannot render"]
    problems = []
    for tag, attrs, _ in _parse(rendered):
        if tag.startswith("<"):  # a comment, declaration or processing instruction
            problems.append(f"markup {tag[:40]}")
            continue
        if tag not in _MARKDOWN_TAGS:
            problems.append(f"<{tag}>")
            continue
        for name, value in attrs:
            value = value or ""
            if name in ("class", "id"):
                continue
            if name not in _MARKDOWN_ATTRIBUTES.get(tag, ()):
                problems.append(f"<{tag} {name}=...>")
            elif name == "style" and not _ALIGN.match(value):
                problems.append(f"<{tag} style={value[:40]!r}>")
            elif name in ("href", "src") and not _url_is_safe(value, image=name == "src"):
                problems.append(f"<{tag} {name}={value[:60]!r}>")
    return problems


def _url_is_safe(url, image):
    # As a browser reads it: tabs and newlines anywhere, control characters and spaces around.
    url = re.sub(r"[\t\n\r]", "", url).strip("".join(map(chr, range(33))))
    scheme = _SCHEME.match(url)
    if scheme is None:
        return True  # relative
    if scheme.group(1).lower() in _SAFE_SCHEMES:
        return True
    return image and _IMAGE_DATA.match(url) is not None


# ---------------------------------------------------------------- page check
class _Parser(HTMLParser):
    """(tag, attributes, text of script/style) for every start tag; comments and declarations
    as ('<!...', [], '')."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.items = []
        self._open = None

    def handle_starttag(self, tag, attrs):
        self.items.append([tag, attrs, ""])
        self._open = self.items[-1] if tag in ("script", "style") else None

    def handle_startendtag(self, tag, attrs):
        self.items.append([tag, attrs, ""])

    def handle_endtag(self, tag):
        self._open = None

    def handle_data(self, data):
        if self._open is not None:
            self._open[2] += data

    def handle_comment(self, data):
        self.items.append([f"<!--{data}-->", [], ""])

    def handle_decl(self, decl):
        if decl.lower() != "doctype html":
            self.items.append([f"<!{decl}>", [], ""])

    def unknown_decl(self, data):
        self.items.append([f"<![{data}]>", [], ""])

    def handle_pi(self, data):
        self.items.append([f"<?{data}>", [], ""])


def _parse(text):
    parser = _Parser()
    parser.feed(text)
    parser.close()
    return parser.items


def _quote(text, limit=60):
    text = " ".join(text.split())
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} chars, sha256 {digest})"


def unsafe_html(html_text: str, template_html: str | None = None) -> list[str]:
    """What in a page could run script or restyle it: script, style, link, iframe, object,
    embed, SVG, MathML, form, template and base elements and meta refresh; event handlers
    (``on*``); ``style``, ``srcdoc`` and ``formaction`` attributes; addresses with a scheme
    other than http, https and mailto (``javascript:``, ``vbscript:``, ``data:``), embedded
    PNG/JPEG/GIF images excepted. The colours nbconvert gives coloured terminal text
    (``style="color: rgb(...)"`` on a span) are not counted.

    With ``template_html`` (the same template's page for a clean notebook), what that page
    holds as well, item for item, is not reported: what remains came from the notebook.
    """
    found = _findings(html_text)
    if template_html is None:
        return found
    excess = collections.Counter(found) - collections.Counter(_findings(template_html))
    result = []
    for item in found:
        if excess[item] > 0:
            excess[item] -= 1
            result.append(item)
    return result


def _findings(text):
    found = []
    for tag, attrs, content in _parse(text):
        if tag.startswith("<"):
            continue
        if tag in _ACTIVE_TAGS:
            detail = "".join(f" {k}={_quote(v or '', 80)}" for k, v in attrs)
            body = f" content {_quote(content, 160)}" if content.strip() else ""
            found.append(f"<{tag}{detail}>{body}")
        elif tag == "meta" and "http-equiv" in dict(attrs):
            found.append(f"<meta http-equiv={_quote(dict(attrs)['http-equiv'] or '')}>")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):
                found.append(f"<{tag} {name}={_quote(value)}>: an event handler")
            elif name == "style" and not (tag == "span" and _ANSI_COLOUR.match(value)):
                found.append(f"<{tag} style={_quote(value)}>")
            elif name in ("srcdoc", "formaction"):
                found.append(f"<{tag} {name}={_quote(value)}>")
            elif name in _URL_ATTRIBUTES and tag not in _ACTIVE_TAGS:
                urls = [u.strip().split(" ")[0] for u in value.split(",")] if name == "srcset" else [value]
                found.extend(f"<{tag} {name}={_quote(url)}>" for url in urls if not _url_is_safe(url, image=True))
    return found
