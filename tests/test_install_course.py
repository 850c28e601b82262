"""The JupyterHub image: docker/Dockerfile runs docker/install_course.sh, and that script,
run in a fresh virtual environment (the base image cannot be pulled here), installs the
course, gives students and instructors their nbgrader extensions and fills the shared,
read-only simulation cache."""

import contextlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from crsky.simulate import SIMULATOR_VERSION
from services import CourseEnvironment, free_port, http

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()
SCRIPT = ROOT / "docker" / "install_course.sh"
STUDENT_PLUGINS = {"@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:validate-assignment"}
INSTRUCTOR_PLUGINS = {"@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                      "@jupyter/nbgrader:course-list"}


def test_dockerfile_is_on_a_dated_base_and_runs_the_install_script():
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", DOCKERFILE, flags=re.M).group(1)
    assert re.fullmatch(r"quay\.io/jupyter/(scipy|tensorflow)-notebook:20\d\d-\d\d-\d\d", base), base
    assert "bash /tmp/crsky/docker/install_course.sh /tmp/crsky" in DOCKERFILE
    assert "ARG CRSKY_VARIANT=cpu" in DOCKERFILE and 'CRSKY_VARIANT="${CRSKY_VARIANT}"' in DOCKERFILE
    for line in re.findall(r"^COPY (.+) /tmp/crsky/", DOCKERFILE, flags=re.M):
        for name in line.split():
            assert (ROOT / name).exists(), f"the Dockerfile copies {name}, which is missing"
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0


def test_image_and_hub_agree_on_the_shared_folders():
    env = dict(re.findall(r"^(?:ENV)?\s+(CRSKY_\w+|NBGRADER_\w+)=(\S+)", DOCKERFILE, flags=re.M))
    assert env["CRSKY_SHARED_CACHE"] == "/opt/crsky/cache"
    values = yaml.safe_load((ROOT / "docker" / "jupyterhub" / "values.yaml").read_text())
    mounts = {m["mountPath"] for m in values["singleuser"]["storage"]["extraVolumeMounts"]}
    assert env["NBGRADER_EXCHANGE_ROOT"] in mounts
    assert values["singleuser"]["extraEnv"]["NBGRADER_EXCHANGE_ROOT"] == env["NBGRADER_EXCHANGE_ROOT"]
    assert env["CRSKY_INSTRUCTOR_CONFIG"] in values["hub"]["extraConfig"]["crsky-instructors"]
    slugs = [p["slug"] for p in values["singleuser"]["profileList"]]
    assert slugs == ["cpu", "gpu-share"]
    gpu = values["singleuser"]["profileList"][1]["kubespawner_override"]
    assert gpu["extra_resource_limits"] == {"nvidia.com/gpu": "1"} and gpu["image"].endswith("-cuda")


def test_instructor_config_switches_on_exactly_what_students_lack():
    page = json.loads((ROOT / "docker" / "jupyter" / "instructor" / "labconfig" / "page_config.json").read_text())
    assert page["disabledExtensions"] == {name: False for name in INSTRUCTOR_PLUGINS}
    script = SCRIPT.read_text()
    for command in ("labextension disable", "labextension lock"):
        line = re.search(rf"{command} --level=sys_prefix \\\n\s+(.+)\n", script).group(1)
        assert set(line.split()) == INSTRUCTOR_PLUGINS, command
    server = json.loads((ROOT / "docker" / "jupyter" / "instructor" / "jupyter_server_config.json").read_text())
    enabled = {name for name, on in server["ServerApp"]["jpserver_extensions"].items() if on}
    line = re.search(r"server extension disable --sys-prefix \\\n\s+(.+)\n", script).group(1)
    assert set(line.split()) == enabled == {"nbgrader.server_extensions.formgrader",
                                            "nbgrader.server_extensions.course_list"}


def get(url, token, timeout=30):
    return http(url, token, timeout=timeout)


@contextlib.contextmanager
def jupyter_server(home, **env_extra):
    """A real Jupyter server of this environment on loopback; yields ``(base URL, token)``."""
    port, token = free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "CRSKY_", "NBGRADER_", "PYTHONPATH"))}
    env.update(HOME=str(home), JUPYTER_CONFIG_DIR=str(home / ".jupyter"), JUPYTER_RUNTIME_DIR=str(home / ".runtime"),
               TF_CPP_MIN_LOG_LEVEL="3", PATH=os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")]),
               **env_extra)
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "server.log", "wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "jupyter", "server", "--ServerApp.ip=127.0.0.1",
                                   f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
                                   "--ServerApp.open_browser=False", "--ServerApp.allow_root=True",
                                   f"--IdentityProvider.token={token}",
                                   f"--ServerApp.root_dir={home}"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, (home / "server.log").read_text()[-3000:]
            try:
                if get(f"{base}/api/status", token, timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the server did not answer in 90 s\n" + (home / "server.log").read_text()[-3000:]
            time.sleep(0.5)
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_instructors_formgrader_may_be_framed_by_their_own_jupyterlab(tmp_path):
    """JupyterHub's single-user server sends ``frame-ancestors 'none'`` unless the server's
    settings name a policy (jupyterhub/singleuser/extension.py): JupyterLab's *Nbgrader ->
    Formgrader* panel is an iframe of the same server, so the instructors' config names
    ``'self'``. Read from the formgrader page of a real server started with that config."""
    config = json.loads((ROOT / "docker" / "jupyter" / "instructor" / "jupyter_server_config.json").read_text())
    policy = config["ServerApp"]["tornado_settings"]["headers"]["Content-Security-Policy"]
    assert policy == "frame-ancestors 'self'"
    home = tmp_path / "instructor"
    # docs/jupyterhub.md: the instructor's course is a clone in their home, below the server's root.
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(home / "crsky")], check=True, timeout=120)
    with jupyter_server(home, JUPYTER_CONFIG_PATH=str(ROOT / "docker" / "jupyter" / "instructor"),
                        CRSKY_COURSE_ROOT=str(home / "crsky")) as (base, token):
        status, headers, body = get(f"{base}/formgrader", token)
    assert status == 200 and "formgrader" in body.lower(), (status, body[:500])
    # jupyter_server's own default would add a report-uri: this is the config's policy, whole.
    assert headers["Content-Security-Policy"] == policy


# What a JupyterLab server in the environment really loads: the nbgrader server extensions
# (enabled or not) and the lab plugins JupyterLab's page config disables.
PROBE = """
import json
from jupyter_core.paths import jupyter_path
from jupyter_server.serverapp import ServerApp
from jupyterlab_server.config import get_page_config
from nbgrader.apps.nbgraderapp import NbGraderApp

app = ServerApp()
app.initialize(argv=["--ServerApp.open_browser=False", "--port=0"], find_extensions=True, new_httpserver=False)
server = sorted(k for k, v in app.extension_manager.extensions.items() if "nbgrader" in k and v.enabled)
disabled = get_page_config(jupyter_path("labextensions")).get("disabledExtensions", [])
disabled = disabled if isinstance(disabled, list) else [k for k, v in disabled.items() if v]
grader = NbGraderApp()
grader.initialize([])
print(json.dumps({"server": server, "lab_disabled": sorted(k for k in disabled if "nbgrader" in k),
                  "exchange": grader.config.Exchange.root, "course": grader.config.CourseDirectory.course_id,
                  "source": grader.config.CourseDirectory.get("source_directory")}))
"""


@pytest.mark.slow
def test_install_script_in_a_fresh_environment(tmp_path):
    """About 2 minutes: a new venv, everything installed from the package index."""
    installed = CourseEnvironment(tmp_path / "venv", tmp_path / "instructor", HOME=tmp_path / "home",
                                  CRSKY_CACHE_SIZES="small", CRSKY_SHARED_CACHE=tmp_path / "cache")
    python, env, venv = installed.python, installed.env, tmp_path / "venv"
    assert "install_course: done: crsky 0.1.0 nbgrader 0.9.6" in installed.log
    # What a hub spawns: jupyterhub-singleuser at the pinned version (the hub's major version).
    pin = re.search(r"^jupyterhub==(\S+)", (ROOT / "constraints.txt").read_text(), flags=re.M).group(1)
    assert f"jupyterhub {pin}" in installed.log and (venv / "bin" / "jupyterhub-singleuser").is_file()
    spawnable = subprocess.run([str(python), "-c", "from jupyterhub.singleuser import main"], env=env,
                               capture_output=True, text=True, timeout=120)
    assert spawnable.returncode == 0, spawnable.stderr[-2000:]
    assert not (ROOT / "build").exists(), "the install left a build folder in the repository"

    cached = list((tmp_path / "cache").iterdir())
    assert [p.name for p in cached] == [f"sky_textbook_600_seed1_v{SIMULATOR_VERSION}.npz"]
    assert cached[0].stat().st_mode & 0o777 == 0o444

    def probe(**extra):
        out = subprocess.run([str(python), "-c", PROBE], env={**env, **extra}, capture_output=True, text=True,
                             cwd=tmp_path, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    student = probe(NBGRADER_EXCHANGE_ROOT="/srv/x")
    assert student["server"] == ["nbgrader.server_extensions.assignment_list",
                                 "nbgrader.server_extensions.validate_assignment"]
    assert set(student["lab_disabled"]) == INSTRUCTOR_PLUGINS and not STUDENT_PLUGINS & set(student["lab_disabled"])
    assert (student["exchange"], student["course"], student["source"]) == ("/srv/x", "crsky", None)

    instructor = probe(JUPYTER_CONFIG_PATH=str(tmp_path / "instructor"), CRSKY_COURSE_ROOT=str(ROOT))
    assert len(instructor["server"]) == 4 and instructor["lab_disabled"] == []
    assert (instructor["exchange"], instructor["source"]) == ("/srv/nbgrader/exchange", "solutions")

    # A student's notebook reads the shared simulation and writes nothing into their home.
    load = subprocess.run([str(python), "-c", "from crsky.dataset import load_sky_maps; "
                           "print(load_sky_maps('simulate', n_maps=600, seed=1, progress=False)['data'].shape)"],
                          env=env, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert load.stdout.strip() == "(600, 500, 4)", load.stderr[-2000:]
    assert not (tmp_path / "home" / ".cache" / "crsky").exists()


@pytest.mark.slow
def test_the_images_pins_resolve_for_its_python(tmp_path):
    """The base image has Python 3.13: every pinned package must have a wheel for it (about a
    minute: pip fetches the metadata of TensorFlow and the CUDA wheels)."""
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
    except OSError:
        pytest.skip("PyPI cannot be reached from here")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k == "PIP_CERT"}
    env.update(PIP_CONFIG_FILE=os.devnull)
    tf = re.search(r"^tensorflow-cpu==(\S+)", (ROOT / "constraints.txt").read_text(), flags=re.M).group(1)
    for tensorflow in ("tensorflow-cpu", "tensorflow[and-cuda]"):
        run = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
             "--index-url", "https://pypi.org/simple", "--python-version", "3.13", "--implementation", "cp",
             "--abi", "cp313", "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_27_x86_64",
             "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64", "--only-binary=:all:",
             "-c", str(ROOT / "constraints.txt"), "nbgrader", "jupyterlab", "notebook", "nbclient", "jupyterhub", "keras", "numpy",
             f"{tensorflow}=={tf}"],
            capture_output=True, text=True, env=env, timeout=600)
        assert run.returncode == 0, f"{tensorflow}: {run.stderr[-3000:]}"
