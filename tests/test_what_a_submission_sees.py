"""What a student's code can see while it is graded: a walk of the whole file system from
inside the grading sandbox (crsky.grading.nbgrader_steps.sandbox_config, where the protected
test run and the model's scoring run). Of the course checkout only the package and the layer
are there; no instructor notebook, hidden test, test, gradebook, git history or seed file is
readable anywhere."""

import json
import os
import sys
from pathlib import Path

import pytest

from crsky.course import COURSE_ROOT
from crsky.grading import nbgrader_steps, sandbox

pytestmark = [pytest.mark.grading,
              pytest.mark.skipif(not sandbox.probe()[0] and os.environ.get("CRSKY_REQUIRE_SANDBOX") != "1",
                                 reason=f"no grading sandbox here: {sandbox.probe()[1]}")]

WALK = r'''
import json, os, sys
# Not descended into: the kernel's views, the system and the Python installation (read-only
# copies of what every machine has; their top folders are still listed).
skip = {"/proc", "/sys", "/dev", "/usr", *json.loads(os.environ["PYTHON_PATHS"])}
found, readable_text = [], []
for top, folders, files in os.walk("/", onerror=lambda error: None):
    found += [os.path.join(top, f) for f in folders if os.path.join(top, f) in skip]
    folders[:] = [f for f in folders if os.path.join(top, f) not in skip]
    for name in files + [f for f in folders if os.path.islink(os.path.join(top, f))]:
        path = os.path.join(top, name)
        found.append(path)
        if path.startswith("/usr/") or "site-packages" in path or not os.path.isfile(path):
            continue
        try:
            with open(path, "rb") as handle:
                data = handle.read(2_000_000)
        except OSError:
            continue
        for marker in sys.argv[1:]:
            if marker.encode() in data:
                readable_text.append((path, marker))
print(json.dumps({"found": found, "markers": readable_text}))
'''


def hidden_lines():
    """The longest line of each hidden-test block of the instructor's notebooks."""
    import nbformat

    lines = []
    for path in sorted((COURSE_ROOT / "solutions").glob("*/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            blocks = cell.source.split("### BEGIN HIDDEN TESTS")[1:]
            for block in blocks:
                body = [line.strip() for line in block.split("### END HIDDEN TESTS")[0].splitlines()]
                lines.append(max(body, key=len))
    assert len(lines) >= 4, lines
    return lines


@pytest.fixture(scope="module")
def seen(tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    (work / "walk.py").write_text(WALK)
    secret = tmp_path_factory.mktemp("private") / "heldout.seed"
    secret.write_text("7405638211930155\n")
    markers = hidden_lines() + ["7405638211930155", "SQLite format 3", "[core]\n\trepositoryformatversion"]
    config = nbgrader_steps.sandbox_config()
    python = sorted({os.path.realpath(p) for p in sandbox.python_installation(sys.executable)})
    config.env = dict(config.env, PYTHON_PATHS=json.dumps(python))
    result = sandbox.run([sys.executable, "walk.py", *markers], str(work), config=config, timeout=600, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_of_the_checkout_only_the_package_and_the_layer_are_visible(seen):
    root = str(COURSE_ROOT.resolve())
    inside = {Path(path).relative_to(root).parts[0] for path in seen["found"] if path.startswith(root + os.sep)}
    python = {Path(path).resolve().relative_to(root).parts[0] for path in sandbox.python_installation(sys.executable)
              if Path(path).resolve().is_relative_to(root)}  # a virtual environment kept in the checkout
    assert inside <= {"crsky", "edgeconv.py"} | python, sorted(inside)
    assert "crsky" in inside and "edgeconv.py" in inside


def test_no_hidden_test_seed_gradebook_or_history_is_readable(seen):
    assert seen["markers"] == [], seen["markers"]


def test_the_instructors_and_the_graders_folders_are_absent(seen):
    paths = seen["found"]
    for name in ("solutions", "tests", "grading", ".git", "notebooks", "bench", "docs"):
        assert not any(p.startswith(str(COURSE_ROOT / name)) for p in paths), name
    home = str(Path.home().resolve())
    assert not any(p.startswith(home + os.sep + ".config") for p in paths)
