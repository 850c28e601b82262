"""The student's path, as a new student walks it: the released notebooks (generated from
solutions/ by nbgrader, as `python -m crsky.release` does), answered, run top to bottom with
their last cell's self-check, then the commands the notebooks print, typed as printed in a
terminal that opens where JupyterLab's does (a hub's home, a laptop's clone). All at the
small size."""

import os
import re
import shutil
import subprocess
import sys
import zipfile

import nbformat
import pytest

from crsky.course import ASSIGNMENTS, COURSE_ROOT as ROOT, REPO_URL, SELFCHECK_ENV
from crsky.submit import FILES

MODEL = ROOT / "tests" / "fixtures" / "dgcnn_textbook.keras"  # a model trained at the CPU size: 4 of 4 points
COMMAND = re.compile(r"`(python -m crsky\.[^`]+)`")


def student_env(base):
    """The environment of a student's Jupyter server: the small size, nothing of grading set."""
    env = {k: v for k, v in os.environ.items() if k not in ("NBGRADER_EXECUTION", SELFCHECK_ENV, "CRSKY_SEED_FILE")}
    env.update(CRSKY_SIZE="small", CRSKY_CACHE=str(base / "cache"), JUPYTER_CONFIG_DIR=str(base / "jupyter-config"),
               JUPYTER_DATA_DIR=str(base / "jupyter-data"), JUPYTER_RUNTIME_DIR=str(base / "jupyter-runtime"),
               PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    return env


def release(folder, env):
    """The student notebooks nbgrader generates from solutions/ now, in ``folder``."""
    for assignment in ASSIGNMENTS:
        run = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force",
                              f"--CourseDirectory.release_directory={folder}",
                              f"--CourseDirectory.db_url=sqlite:///{folder.parent / 'gradebook.db'}"],
                             cwd=ROOT / "grading", capture_output=True, text=True, env=env)
        assert run.returncode == 0, run.stderr[-3000:]
    return folder


def answer(nb, assignment):
    """The released notebook ``nb`` with every exercise answered (the instructor's answers)."""
    solution = {c.metadata.nbgrader["grade_id"]: c.source for c in
                nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4).cells
                if c.metadata.get("nbgrader", {}).get("solution")}
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in solution:
            cell.source = "\n".join(line for line in solution[grade_id].splitlines()
                                    if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)
    return nb


def cell(nb, grade_id):
    (found,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    return found


def text_of(cell_, stream):
    return "".join(o.get("text", "") for o in cell_.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == stream)


def run_all(path, env, extra=()):
    """Run All on the notebook file ``path`` in its folder, as JupyterLab does, then the
    ``extra`` sources as new runs of the last cell; returns the executed notebook."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel(env=env):  # the kernel gets the server's environment
        for index, code_cell in enumerate(nb.cells):
            client.execute_cell(code_cell, index)
        for source in extra:
            nb.cells[-1].source = source
            client.execute_cell(nb.cells[-1], len(nb.cells) - 1)
    return nb


NEEDS = {"04_graph": ("03_training",)}  # notebook 4 reads the model notebook 3 saved
MEMBER_MODEL = ROOT / "tests" / "fixtures" / "members_cpu.keras"  # notebook 5's, trained at the CPU size
TRAINING = ("03_training", "05_sources")  # the notebooks that train and save a model


class Home:
    """A hub's home after the student fetched every notebook, answered it from its text and
    saved it. :meth:`run` runs one top to bottom as JupyterLab's *Run All* does (its last cell
    checks it; notebook 1's is run once more with its ``submit`` uncommented, as its text
    says), once, after the notebooks it needs (a training notebook that was not run leaves
    the model it saves at the CPU size instead)."""

    def __init__(self, base):
        self.env = student_env(base)
        released = release(base / "release", self.env)
        self.path = base / "home"
        for assignment in ASSIGNMENTS:
            shutil.copytree(released / assignment, self.path / assignment)
            path = self.notebook(assignment)
            nbformat.write(answer(nbformat.read(path, as_version=4), assignment), path)
        self.executed = {}

    def notebook(self, assignment):
        return self.path / assignment / f"{assignment}.ipynb"

    def run(self, assignment):
        for needed in NEEDS.get(assignment, ()):
            if needed in TRAINING and needed not in self.executed:
                self.with_models()  # what that notebook saves when trained at the CPU size
            else:
                self.run(needed)
        if assignment not in self.executed:
            path = self.notebook(assignment)
            extra = ()
            if assignment == "01_sky":  # "remove the # in front of submit and run the cell again"
                source = cell(nbformat.read(path, as_version=4), "selfcheck").source
                assert "# submit(" in source
                extra = (source.replace("# submit(", "submit("),)
            self.executed[assignment] = run_all(path, self.env, extra)
        return self.executed[assignment]

    def with_models(self):
        """The trained models beside notebooks 3 and 5, as after training at the CPU size."""
        shutil.copy(MODEL, self.path / "03_training" / "dgcnn.keras")
        shutil.copy(MEMBER_MODEL, self.path / "05_sources" / "members.keras")
        return self


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    return Home(tmp_path_factory.mktemp("student"))


def check_table(text):
    """``{grade_id: (status, detail)}`` of the self-check's table in ``text``."""
    rows = {}
    for line in text.splitlines():
        match = re.match(r"^(test_\w+)\s+(passed|PARTIAL|FAILED)\s+[\d.]+/\d+\s*(.*)$", line)
        if match:
            rows[match.group(1)] = (match.group(2), match.group(3))
    return rows


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_cell_runs_and_the_last_cell_checks_the_notebook(hub, assignment):
    nb = hub.run(assignment)
    errors = [(c.source[:60], o["ename"], o["evalue"][:200]) for c in nb.cells for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, f"{assignment}: {errors}"
    last = cell(nb, "selfcheck")
    assert not text_of(last, "stderr"), f"the check cell shows warnings: {text_of(last, 'stderr')[:500]}"
    assert not [o for o in last.outputs if o.get("output_type") == "execute_result"], "the check cell shows a value"
    out = text_of(last, "stdout")
    assert f"checking {assignment}.ipynb as saved at" in out
    rows = check_table(out)
    assert rows, out
    if assignment == "03_training":
        # The small size trains one epoch on a few hundred maps: the model's points may be
        # partial, and the row says why (its accuracy and the grading rule).
        status, detail = rows.pop("test_saved_model_accuracy")
        assert re.search(r"test accuracy on 1000 held-out maps: 0\.\d{3} -> \d\.\d\d of 4 points \(full points "
                         r"from 0\.\d{3}: the pair count's 0\.\d{3}", detail), detail
        assert status == "passed" or status in ("PARTIAL", "FAILED") and "still failing: test_saved_model_accuracy" in out
    if assignment == "05_sources":  # the same for the per-cosmic-ray model, by its purity
        status, detail = rows.pop("test_saved_member_model")
        assert re.search(r"purity on \d+ held-out maps with sources, at the baseline's efficiency 0\.\d{3}: "
                         r"0\.\d{3} -> \d\.\d\d of 4 points \(full points from 0\.\d{3}", detail), detail
        assert status == "passed" or status in ("PARTIAL", "FAILED") and "still failing: test_saved_member_model" in out
    assert all(status == "passed" for status, _ in rows.values()), out
    if assignment == "01_sky":
        assert "wrote 01_sky.zip" in out and (hub.path / "01_sky" / "01_sky.zip").is_file()


@pytest.mark.parametrize("assignment, figures", [("01_sky", 3), ("03_training", 2), ("04_graph", 1), ("05_sources", 2)])
def test_plots_are_drawn(hub, assignment, figures):
    images = [o for c in hub.run(assignment).cells for o in c.get("outputs", [])
              if o.get("output_type") == "display_data" and "image/png" in o["data"]]
    assert len(images) >= figures


def printed_text(nb):
    return "".join(text_of(c, "stdout") for c in nb.cells)


def test_the_training_notebook_saves_its_model_for_grading(hub):
    text = printed_text(hub.run("03_training"))
    assert "saved the trained model to dgcnn.keras" in text
    assert re.search(r"test accuracy on \d+ held-out maps: 0\.\d{3} -> \d+\.\d\d of 4 points", text)


def test_the_sources_notebook_saves_its_model_and_compares_it_with_the_baseline(hub):
    text = printed_text(hub.run("05_sources"))
    assert "saved the trained model to members.keras" in text
    assert re.search(r"member DGCNN +0\.\d{3} +0\.\d{3} +0\.\d{3}", text)
    assert re.search(r"classical baseline +0\.\d{3} +0\.\d{3} +0\.\d{3}", text)
    assert re.search(r"purity gain of the network at the baseline's efficiency: [+-]\d+\.\d points", text)
    assert re.search(r"purity on \d+ held-out maps with sources, at the baseline's efficiency 0\.\d{3}: 0\.\d{3} -> "
                     r"\d\.\d\d of 4 points", text)  # the saved model's graded cell, on public held-out maps


def printed_commands(nb):
    return COMMAND.findall(cell(nb, "selfcheck_intro").source)


def test_every_notebook_prints_a_check_and_a_hand_in_command(hub):
    for assignment in ASSIGNMENTS:
        assert printed_commands(nbformat.read(hub.notebook(assignment), as_version=4)) == [
            f"python -m crsky.selfcheck {assignment}.ipynb", f"python -m crsky.submit {assignment}.ipynb"]


def run_printed(command, folder, env, timeout):
    run = subprocess.run(command, shell=True, cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0 and not run.stderr, f"{command}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run.stdout


def hand_in_holds_what_the_grader_takes(folder, assignment):
    with zipfile.ZipFile(folder / assignment / f"{assignment}.zip") as archive:
        expected = [f"{assignment}/{assignment}.ipynb"] + [f"{assignment}/{name}" for name in FILES.get(assignment, ())]
        assert sorted(archive.namelist()) == sorted(expected)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_printed_check_works_from_the_folder_a_hub_terminal_opens_in(hub, assignment):
    """JupyterLab's terminal opens in the server's root: on a hub, the home that holds
    ``<assignment>/<assignment>.ipynb``. The check of a notebook that saves a model grades
    that model as the grader does (the student trained at the CPU size)."""
    check, _ = printed_commands(nbformat.read(hub.with_models().notebook(assignment), as_version=4))
    out = run_printed(check, hub.path, hub.env, 900)
    assert "all pass" in out and f"checking {assignment}/{assignment}.ipynb" in out
    if assignment == "03_training":
        assert "test_saved_model_accuracy  passed   4.0/4    test accuracy on 1000 held-out maps" in out
    if assignment == "05_sources":
        assert re.search(r"test_saved_member_model +passed +4\.0/4 +purity on \d+ held-out maps with sources", out), out


def test_every_printed_hand_in_works_from_the_folder_a_hub_terminal_opens_in(hub):
    for assignment in ASSIGNMENTS:
        _, hand_in = printed_commands(nbformat.read(hub.with_models().notebook(assignment), as_version=4))
        run_printed(hand_in, hub.path, hub.env, 300)
        hand_in_holds_what_the_grader_takes(hub.path, assignment)


def test_printed_commands_work_from_a_laptops_clone(hub, tmp_path):
    """On a laptop JupyterLab starts in the clone (docs/students.md): the released notebooks
    in ``notebooks/`` and the student's copies in ``my-work/``; the commands find the copy."""
    hub.with_models()
    clone = tmp_path / "crsky"
    shutil.copytree(ROOT / "crsky", clone / "crsky", ignore=shutil.ignore_patterns("__pycache__"))
    for assignment in ASSIGNMENTS:
        shutil.copytree(hub.path / assignment, clone / "notebooks" / assignment, ignore=shutil.ignore_patterns("*.zip"))
        shutil.copytree(hub.path / assignment, clone / "my-work" / assignment, ignore=shutil.ignore_patterns("*.zip"))
    for assignment in ASSIGNMENTS:
        check, hand_in = printed_commands(nbformat.read(hub.notebook(assignment), as_version=4))
        if assignment == "01_sky":
            assert "checking my-work/01_sky/01_sky.ipynb" in run_printed(check, clone, hub.env, 900)
        run_printed(hand_in, clone, hub.env, 300)
        assert (clone / "my-work" / assignment / f"{assignment}.zip").is_file()
        assert not (clone / "notebooks" / assignment / f"{assignment}.zip").exists()


def two_edgeconv_model(last):
    """The smallest DGCNN notebook 3's test of build_dgcnn accepts: two EdgeConvs, the last one
    called on ``[x, x]`` (``last="pair"``) or on one tensor (``"one tensor"``), both a dynamic graph."""
    import keras
    from keras import layers

    from crsky.models import EnergyScaling, edge_kernel, textbook_kernel
    from edgeconv import EdgeConv

    points = layers.Input((500, 3), name="points")
    features = layers.Input((500, 4), name="features")
    x = EdgeConv(lambda a: edge_kernel(a, nodes=8), next_neighbors=8)([points, EnergyScaling()(features)])
    x = layers.Activation("relu")(x)
    dynamic = EdgeConv(lambda a: textbook_kernel(a, nodes=32), next_neighbors=8)
    x = layers.Activation("relu")(dynamic([x, x] if last == "pair" else x))
    output = layers.Dense(2, activation="softmax")(layers.GlobalAveragePooling1D()(x))
    return keras.Model([points, features], output)


@pytest.mark.parametrize("last", [pytest.param("pair", marks=pytest.mark.slow), "one tensor"])
def test_notebook_4_draws_the_graphs_of_a_model_with_two_edgeconvs(tmp_path, last):
    """Notebook 3 accepts any DGCNN with two or more EdgeConvs: notebook 4 draws the first
    (fixed) and the last (dynamic) graph of the saved one, the cells up to the drawing run."""
    model = two_edgeconv_model(last)
    assert 1_000 <= model.count_params() <= 20_000, model.count_params()  # as notebook 3's test requires
    (tmp_path / "03_training").mkdir()
    model.save(tmp_path / "03_training" / "dgcnn.keras")
    nb = nbformat.read(ROOT / "solutions" / "04_graph" / "04_graph.ipynb", as_version=4)
    (drawing,) = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "graph_on_sky" in c.source]
    nb.cells = nb.cells[:drawing + 1] + [nbformat.v4.new_code_cell("print([ax.get_title() for ax in fig.axes])")]
    (tmp_path / "04_graph").mkdir()
    path = tmp_path / "04_graph" / "04_graph.ipynb"
    nbformat.write(nb, path)
    executed = run_all(path, student_env(tmp_path))
    errors = [(c.source[:60], o["ename"], o["evalue"][:300]) for c in executed.cells for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors
    assert "loaded ../03_training/dgcnn.keras" in "".join(text_of(c, "stdout") for c in executed.cells)
    assert text_of(executed.cells[-1], "stdout").strip() == str(["EdgeConv 1 of 2: fixed graph (on the sky)",
                                                                 "EdgeConv 2 of 2: dynamic graph (in feature space)"])


def github_anchor(heading):
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebooks_link_only_pages_a_student_can_open(assignment):
    """A Colab or hub student has the notebook, not the repository: every docs page a notebook
    names is a link to its published page, and the page and its section exist."""
    nb = nbformat.read(ROOT / "notebooks" / assignment / f"{assignment}.ipynb", as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    published = re.escape(f"{REPO_URL}/blob/main/")
    links = re.findall(rf"\]\({published}(docs/[\w.-]+\.md)(?:#([\w-]+))?\)", text)
    bare = re.sub(rf"\]\({published}docs/[^)]*\)", "](...)", text)
    assert not re.findall(r"docs/[\w.-]+\.md", bare), f"{assignment} names a repository file a student cannot open"
    for page, anchor in links:
        assert (ROOT / page).is_file(), f"{assignment} links {page}, which is not in the repository"
        if anchor:
            headings = [line.lstrip("#") for line in (ROOT / page).read_text().splitlines() if line.startswith("#")]
            assert anchor in {github_anchor(h) for h in headings}, f"{assignment}: no section #{anchor} in {page}"


def test_unanswered_notebook_2_stops_at_its_demo_with_the_students_exercise_named(tmp_path):
    """As delivered, notebook 2's first demo builds an EdgeConv with the unanswered kernel_nn:
    the cell says which exercise to write, in one line, not Keras's traceback."""
    nb = nbformat.read(ROOT / "notebooks" / "02_kernel" / "02_kernel.ipynb", as_version=4)
    (demo,) = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "uses_answers" in c.source]
    nb.cells = nb.cells[:demo + 1]
    (tmp_path / "02_kernel").mkdir()
    path = tmp_path / "02_kernel" / "02_kernel.ipynb"
    nbformat.write(nb, path)
    executed = run_all(path, student_env(tmp_path))
    errors = [(i, o) for i, c in enumerate(executed.cells) for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert [(i, o["ename"], o["evalue"]) for i, o in errors] == [(demo, "MissingAnswer", (
        "write kernel_nn in its cell above first: it still raises NotImplementedError. Run that cell, then this one."))]
    assert errors[0][1]["traceback"] == ["MissingAnswer: write kernel_nn in its cell above first: it still raises "
                                         "NotImplementedError. Run that cell, then this one."]


def exercises(assignment):
    """``[(grade_id, function name)]`` of the exercises of ``assignment`` whose answer is a function."""
    nb = nbformat.read(ROOT / "notebooks" / assignment / f"{assignment}.ipynb", as_version=4)
    found = []
    for code_cell in nb.cells:
        meta = code_cell.metadata.get("nbgrader", {})
        name = re.search(r"^def (\w+)\(", code_cell.source, flags=re.M)
        if meta.get("solution") and code_cell.cell_type == "code" and name and "NotImplementedError" in code_cell.source:
            found.append((meta["grade_id"], name.group(1)))
    return found


# every exercise of every notebook (about a minute in all: each run stops where the answer is first needed)
UNANSWERED = [pytest.param(assignment, grade_id, name, id=f"{assignment}-{name}")
              for assignment in ASSIGNMENTS for grade_id, name in exercises(assignment)]


def strip_ansi(text):
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def run_to_first_error(path, env):
    """Run the notebook's cells in order as JupyterLab's *Run All* does, which stops at the
    first error; returns ``(index of that cell, its error output)`` or None."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel(env=env):
        for index, code_cell in enumerate(nb.cells):
            if code_cell.cell_type != "code":
                continue
            client.execute_cell(code_cell, index)
            errors = [o for o in code_cell.outputs if o.get("output_type") == "error"]
            if errors:
                return index, errors[0]
    return None


@pytest.mark.parametrize("assignment, grade_id, name", UNANSWERED)
def test_an_unanswered_exercise_is_named_where_the_student_meets_it(tmp_path, assignment, grade_id, name):
    """Every other exercise answered, this one as delivered: *Run All* stops at the first
    cell that needs it, and what it shows names the exercise, in one line from the course
    (``write kernel_nn in its cell above first``) or as a traceback through the student's
    own function: never only a library's traceback."""
    nb = answer(nbformat.read(ROOT / "notebooks" / assignment / f"{assignment}.ipynb", as_version=4), assignment)
    delivered = cell(nbformat.read(ROOT / "notebooks" / assignment / f"{assignment}.ipynb", as_version=4), grade_id)
    cell(nb, grade_id).source = delivered.source
    for needed in NEEDS.get(assignment, ()):
        (tmp_path / needed).mkdir()
        shutil.copy(MODEL, tmp_path / needed / "dgcnn.keras")
    (tmp_path / assignment).mkdir()
    path = tmp_path / assignment / f"{assignment}.ipynb"
    nbformat.write(nb, path)
    stopped = run_to_first_error(path, student_env(tmp_path))
    assert stopped is not None, f"{assignment} ran to its end with {name} unanswered"
    index, error = stopped
    shown = strip_ansi("\n".join(error["traceback"]))
    if error["ename"] == "MissingAnswer":
        assert error["evalue"].startswith(f"write {name} in its cell above first"), error["evalue"]
        assert len(error["traceback"]) == 1, shown
    else:
        assert error["ename"] == "NotImplementedError", shown[-2000:]
        assert re.search(rf"in {name}\b", shown) and "raise NotImplementedError()" in shown, \
            f"cell {index} of {assignment} shows a traceback that does not reach {name}:\n{shown[-3000:]}"
