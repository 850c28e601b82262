"""docs/jupyterhub.md's rollout round (section 7, steps 4 and 5) on a real JupyterHub on
loopback: an instructor, in the hub's ``instructors`` group and given the image's instructor
configuration by values.yaml's own pre-spawn hook, and a student, two Unix users each with their
own single-user server. Every step is the request a JupyterLab button sends, through the hub's
proxy: the instructor generates and releases notebook 2 in the formgrader, the student lists,
fetches, answers (saved through the contents API), validates and submits it, the instructor
collects, autogrades (the course's steps: the protected test run in the sandbox, as that user),
generates and releases feedback, and the student fetches it. The single-user servers are the
image's: a new environment that docker/install_course.sh installed, as docker/Dockerfile does."""

import json
import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import nbformat
import pytest
import yaml

from crsky.course import COURSE_ROOT as ROOT
from crsky.grading import sandbox
from crsky.grading.samples import answered
from services import (HUB_OWNER, HUB_RUNS, CourseEnvironment, JupyterHub, UnixUser, clone_with_changes,
                      hub_run_folder, jupyterhub_missing, shared_python)

ASSIGNMENT = "02_kernel"
COURSE = "crsky"
MISSING = jupyterhub_missing() or (None if sandbox.probe()[0] else f"no grading sandbox: {sandbox.probe()[1]}")
pytestmark = [pytest.mark.grading,
              pytest.mark.skipif(MISSING is not None and os.environ.get("CRSKY_REQUIRE_HUB") != "1",
                                 reason=f"no JupyterHub here: {MISSING}")]


def values_yaml():
    return yaml.safe_load((ROOT / "docker" / "jupyterhub" / "values.yaml").read_text())


def hub_config(instructor, instructor_config):
    """values.yaml's hub settings for this hub: its instructors group (with this test's
    instructor) and its ``crsky-instructors`` hook as written there (the KubeSpawner's hook set
    on this hub's spawner, the image's instructor folder at its place in this test)."""
    values = values_yaml()["hub"]
    groups = values["config"]["JupyterHub"]["load_groups"]
    assert list(groups) == ["instructors"]
    hook = values["extraConfig"]["crsky-instructors"]
    image_folder = '"/etc/crsky/instructor"'
    assert "c.KubeSpawner.pre_spawn_hook" in hook and image_folder in hook, hook
    hook = hook.replace("c.KubeSpawner.", "c.Spawner.").replace(image_folder, repr(str(instructor_config)))
    return (f'c.JupyterHub.authenticator_class = {values["config"]["JupyterHub"]["authenticator_class"]!r}\n'
            f'c.JupyterHub.load_groups = {{"instructors": {{"users": [{instructor!r}]}}}}\n' + hook)


@pytest.fixture(scope="module")
def hub():
    if MISSING:
        pytest.fail(f"CRSKY_REQUIRE_HUB=1, but {MISSING}")
    base = hub_run_folder()  # not pytest's tmp_path: other users must reach it
    suffix = secrets.token_hex(3)
    users, started = {}, None
    try:
        (base / "homes").mkdir(mode=0o755)
        for role in ("instructor", "student"):
            users[role] = UnixUser(f"crsky{role[:4]}{suffix}", base / "homes")
        exchange = base / "exchange"
        exchange.mkdir()
        exchange.chmod(0o777)  # every user's pod mounts it writable (nbgrader sets inbound/ write-only itself)
        # The image's environment (docker/Dockerfile runs docker/install_course.sh), for everyone.
        base_python = shared_python()
        if base_python is None:
            pytest.fail("no Python >= 3.11 that other users can run (apt-get install python3 python3-venv)")
        python = CourseEnvironment(base / "env", base / "instructor-config", base_python=base_python).python
        # The instructor's course: a clone in their home (docs/jupyterhub.md, step 4), of what is here.
        course = clone_with_changes(users["instructor"].home / "crsky")
        users["instructor"].own(course)
        started = JupyterHub(base / "hub", [u.name for u in users.values()], python,
                             config=hub_config(users["instructor"].name, base / "instructor-config"),
                             spawner_env={"NBGRADER_EXCHANGE_ROOT": str(exchange), "CRSKY_COURSE_ID": COURSE,
                                          "CRSKY_SIZE": "small", "TF_CPP_MIN_LOG_LEVEL": "3"})
        for user in users.values():
            started.start(user.name)
        yield {"hub": started, "instructor": users["instructor"].name, "student": users["student"].name,
               "users": users, "exchange": exchange, "course": course}
    finally:
        if started is not None:
            started.close()
        for user in users.values():
            user.remove()
        shutil.rmtree(base, ignore_errors=True)


def test_a_killed_runs_users_and_folder_go_with_the_next_run():
    """A pytest killed mid-run leaves its Unix users and folder; the next run removes them,
    and keeps the folder of a run still going (here: its own)."""
    stale = Path(tempfile.mkdtemp(prefix=HUB_RUNS))
    (stale / "homes").mkdir()
    name = f"crskygone{secrets.token_hex(3)}"
    UnixUser(name, stale / "homes")
    ended = subprocess.Popen(["true"])
    ended.wait()
    (stale / HUB_OWNER).write_text(f"{ended.pid} 1\n")  # its process is gone
    mine = hub_run_folder()
    try:
        assert not stale.exists()
        with pytest.raises(KeyError):
            pwd.getpwnam(name)
        again = hub_run_folder()
        assert mine.is_dir() and again.is_dir(), "a run in progress lost its folder"
        shutil.rmtree(again)
    finally:
        shutil.rmtree(mine, ignore_errors=True)
        if stale.exists():
            UnixUser.forget(name)
            shutil.rmtree(stale, ignore_errors=True)


def call(hub, user, path, method="GET", body=None, status=200):
    """The JSON answer of a request a JupyterLab button sends to ``user``'s server."""
    found, _, text = hub["hub"].server(hub[user], path, method, body)
    assert found == status, f"{method} {path} as the {user}: {found}\n{text[-3000:]}\n{hub['hub'].log_text(3000)}"
    return json.loads(text) if text.strip() else None


def succeeded(answer, what):
    assert isinstance(answer, dict) and answer.get("success"), f"{what}: {json.dumps(answer)[-3000:]}"
    return answer


def test_each_role_gets_its_extensions_and_the_formgrader_may_be_framed(hub):
    """The formgrader is the instructor's only, and JupyterLab may show it in its frame:
    JupyterHub's single-user server sends ``frame-ancestors 'none'`` unless told otherwise."""
    status, headers, body = hub["hub"].server(hub["instructor"], "formgrader")
    assert status == 200 and "formgrader" in body.lower(), (status, body[:500])
    assert headers["Content-Security-Policy"] == "frame-ancestors 'self'"
    assert hub["hub"].server(hub["student"], "formgrader")[0] == 404
    assert call(hub, "student", f"assignments?course_id={COURSE}")["success"]


def test_release_fetch_submit_collect_autograde_feedback(hub):
    started = time.monotonic()
    # The instructor: Formgrader -> Manage Assignments -> Generate, then Release.
    succeeded(call(hub, "instructor", f"formgrader/api/assignment/{ASSIGNMENT}/assign", "POST"), "generate")
    succeeded(call(hub, "instructor", f"formgrader/api/assignment/{ASSIGNMENT}/release", "POST"), "release")

    # The student: the Assignments tab lists it; Fetch; answer and save; Validate; Submit.
    listed = call(hub, "student", f"assignments?course_id={COURSE}")["value"]
    assert [(a["assignment_id"], a["status"]) for a in listed] == [(ASSIGNMENT, "released")], listed
    call(hub, "student", "assignments/fetch", "POST", {"assignment_id": ASSIGNMENT, "course_id": COURSE})
    path = f"api/contents/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
    fetched = nbformat.from_dict(call(hub, "student", path + "?content=1")["content"])
    mine = answered(ASSIGNMENT)
    assert [c.metadata.get("nbgrader", {}).get("grade_id") for c in fetched.cells] == \
        [c.metadata.get("nbgrader", {}).get("grade_id") for c in mine.cells], "the fetched notebook is not the release"
    call(hub, "student", path, "PUT", {"type": "notebook", "format": "json", "content": mine})
    validated = call(hub, "student", "assignments/validate", "POST", {"path": f"{ASSIGNMENT}/{ASSIGNMENT}.ipynb"})
    assert validated["success"] and set(validated["value"]) <= {"failed"} and not validated["value"].get("failed"), \
        validated  # Validate's answer: no test failed
    call(hub, "student", "assignments/submit", "POST", {"assignment_id": ASSIGNMENT, "course_id": COURSE})

    # The instructor: Collect, Autograde (the button of the student's row), feedback for all.
    succeeded(call(hub, "instructor", f"formgrader/api/assignment/{ASSIGNMENT}/collect", "POST"), "collect")
    graded = succeeded(call(hub, "instructor", f"formgrader/api/submission/{ASSIGNMENT}/{hub['student']}/autograde",
                            "POST"), "autograde")
    submission = call(hub, "instructor", f"formgrader/api/submission/{ASSIGNMENT}/{hub['student']}")
    assert (submission["score"], submission["max_score"]) == (6, 6) and not submission["needs_manual_grade"], submission
    assert re.search(r"protected run in the sandbox: (\d+) of \1 steps", graded["log"]), graded["log"][-3000:]
    succeeded(call(hub, "instructor", f"formgrader/api/assignment/{ASSIGNMENT}/generate_feedback", "POST"), "feedback")
    succeeded(call(hub, "instructor", f"formgrader/api/assignment/{ASSIGNMENT}/release_feedback", "POST"), "release")

    # The student: Fetch Feedback; the page is in their home, with their points.
    call(hub, "student", "assignments/fetch_feedback", "POST", {"assignment_id": ASSIGNMENT, "course_id": COURSE})
    folder = call(hub, "student", f"api/contents/{ASSIGNMENT}/feedback")
    [stamp] = [entry["name"] for entry in folder["content"] if entry["type"] == "directory"]
    page = call(hub, "student", f"api/contents/{ASSIGNMENT}/feedback/{quote(stamp)}/{ASSIGNMENT}.html?content=1&format=text")
    assert "Score: 6.0 / 6.0" in page["content"] and "BEGIN HIDDEN TESTS" not in page["content"]
    print(f"the hub's round took {time.monotonic() - started:.0f} s")


def chromium_missing():
    for program in ("chromium", "chromedriver"):
        if shutil.which(program) is None:
            return f"{program} is not installed (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    return None


@pytest.fixture(scope="module")
def browser():
    """Chromium, headless, driven by Selenium through Debian's chromedriver (nothing downloaded)."""
    missing = chromium_missing()
    if missing:
        if os.environ.get("CRSKY_REQUIRE_HUB") == "1":
            pytest.fail(f"no browser to drive: {missing}")
        pytest.skip(f"no browser to drive: {missing}")
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                     "--disable-gpu"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")),
                              options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def log_in_and_open_nbgrader_menu(browser, hub, user):
    """Log in on the hub's page as ``user``, open their JupyterLab and its *Nbgrader* menu;
    returns the menu's item labels."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{hub['hub'].url}/hub/logout")  # whoever was logged in before
    browser.get(f"{hub['hub'].url}/hub/login")
    browser.find_element(By.ID, "username_input").send_keys(hub[user])
    browser.find_element(By.ID, "password_input").send_keys("any")
    browser.find_element(By.ID, "login_submit").click()
    browser.get(f"{hub['hub'].url}/user/{hub[user]}/lab")
    wait = WebDriverWait(browser, 180)
    menu = wait.until(shown.element_to_be_clickable(
        (By.XPATH, "//li[contains(@class, 'lm-MenuBar-item')][.//div[text()='Nbgrader']]")))
    menu.click()
    wait.until(shown.visibility_of_element_located((By.CSS_SELECTOR, ".lm-Menu .lm-Menu-itemLabel")))
    return [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".lm-Menu .lm-Menu-itemLabel") if e.text]


def test_the_instructors_jupyterlab_shows_the_formgrader_and_the_students_does_not(hub, browser):
    """*Nbgrader -> Formgrader* opens the formgrader inside the instructor's JupyterLab (in a
    frame the single-user server must allow); a student's menu has no formgrader at all."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    assert "Formgrader" in log_in_and_open_nbgrader_menu(browser, hub, "instructor")
    browser.find_element(By.XPATH, "//div[contains(@class, 'lm-Menu-itemLabel')][text()='Formgrader']").click()
    frame = WebDriverWait(browser, 120).until(shown.presence_of_element_located((By.CSS_SELECTOR,
                                                                                  "iframe[src*='formgrader']")))
    browser.switch_to.frame(frame)
    try:
        # The formgrader's own page, listing the course's assignments (solutions/ of the clone);
        # a frame the server forbids stays empty.
        WebDriverWait(browser, 60).until(lambda b: "Manage Assignments" in b.find_element(By.TAG_NAME, "body").text
                                         and ASSIGNMENT in b.find_element(By.TAG_NAME, "body").text.split())
    except TimeoutException:
        pytest.fail("the formgrader's frame in JupyterLab shows: "
                    + repr(browser.find_element(By.TAG_NAME, "body").text[:500]))
    finally:
        browser.switch_to.default_content()
    items = log_in_and_open_nbgrader_menu(browser, hub, "student")
    assert "Formgrader" not in items and "Assignment List" in items, items
