"""The laptop install (scripts/venv.sh, environment.yml: ``-e .[test,cpu,jax]`` under
constraints.txt) resolves to wheels on each platform docs/students.md lists: the markers of
pyproject.toml choose TensorFlow's CPU build where it has wheels and the standard build
elsewhere, and pip finds a wheel of every pinned package for that platform.

pip evaluates markers for the machine it runs on, not for ``--platform``: the requirements
are read from pyproject.toml with their markers evaluated here for the target platform, then
handed to ``pip install --dry-run --only-binary=:all: --platform ...``. Needs PyPI: skipped
when it cannot be reached."""

import json
import os
import re
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPI = "https://pypi.org/simple/"

# (name, marker environment, pip's --platform tags; pip does not widen manylinux tags itself)
PLATFORMS = {
    "linux-x86_64": ({"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
                      "os_name": "posix"},
                     [f"manylinux_2_{v}_x86_64" for v in (28, 27, 17)] + ["manylinux2014_x86_64"]),
    "linux-aarch64": ({"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "aarch64",
                       "os_name": "posix"},
                      [f"manylinux_2_{v}_aarch64" for v in (28, 27, 17)] + ["manylinux2014_aarch64"]),
    "macos-arm64": ({"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64",
                     "os_name": "posix"},
                    ["macosx_14_0_arm64"]),  # pip accepts wheels for older macOS versions
}


def laptop_extras():
    """The extras scripts/venv.sh installs (environment.yml installs the same, test_environment)."""
    match = re.search(r'-e "\$ROOT\[([a-z,]+)\]"', (ROOT / "scripts" / "venv.sh").read_text())
    assert match, "scripts/venv.sh installs no -e \"$ROOT[...]\""
    return match.group(1).split(",")


def requirements_for(environment, extras):
    """pyproject.toml's requirements of the course with ``extras``, markers evaluated for ``environment``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    chosen = []
    for line in lines:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(environment):
            requirement.marker = None
            chosen.append(str(requirement))
    return chosen


def target_environment(name):
    environment = default_environment()
    environment.update(PLATFORMS[name][0], python_version="3.11", python_full_version="3.11.9",
                       implementation_name="cpython", platform_python_implementation="CPython")
    return environment


def tensorflow_builds(name):
    names = {canonicalize_name(Requirement(r).name) for r in requirements_for(target_environment(name), ["cpu"])}
    return names & {"tensorflow", "tensorflow-cpu"}


def test_exactly_one_tensorflow_build_on_every_platform():
    assert tensorflow_builds("linux-x86_64") == {"tensorflow-cpu"}
    assert tensorflow_builds("linux-aarch64") == {"tensorflow"}
    assert tensorflow_builds("macos-arm64") == {"tensorflow"}
    for system, machine in (("win32", "AMD64"), ("win32", "ARM64"), ("darwin", "x86_64"), ("linux", "ppc64le")):
        environment = default_environment() | {"sys_platform": system, "platform_machine": machine}
        builds = {canonicalize_name(Requirement(r).name) for r in requirements_for(environment, ["cpu"])}
        assert len(builds & {"tensorflow", "tensorflow-cpu"}) == 1, (system, machine, builds)
    assert "cpu" in laptop_extras()


def pypi_reachable():
    try:
        with urllib.request.urlopen(PYPI + "pip/", timeout=10) as response:
            return response.status == 200
    except OSError:
        return False


# The platforms docs/students.md names. CI installs on Linux x86_64 for real (scripts/venv.sh),
# so that resolution is a slow repeat; macOS is resolved in every run (a minute at most).
@pytest.mark.parametrize("platform", [pytest.param("linux-x86_64", marks=pytest.mark.slow), "macos-arm64"])
def test_the_laptop_install_resolves_to_wheels(platform, tmp_path):
    if not pypi_reachable():
        pytest.skip(f"PyPI ({PYPI}) cannot be reached from here: the resolution needs it")
    requirements = requirements_for(target_environment(platform), laptop_extras())
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
               "--report", str(tmp_path / "report.json"), "--only-binary=:all:", "--python-version", "3.11",
               "--implementation", "cp", "--abi", "cp311", "--index-url", PYPI,
               "-c", str(ROOT / "constraints.txt")]
    for tag in PLATFORMS[platform][1]:
        command += ["--platform", tag]
    # This machine's pip configuration (mirrors, constraints of its own) stays out of it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    run = subprocess.run(command + requirements, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, f"{platform}: pip could not resolve {requirements}:\n{run.stderr[-3000:]}"
    installed = {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
                 for item in json.loads((tmp_path / "report.json").read_text())["install"]}
    (build,) = tensorflow_builds(platform)
    assert build in installed, f"{platform}: {build} missing from {sorted(installed)}"
    pins = {canonicalize_name(Requirement(line.split("#")[0]).name): Requirement(line.split("#")[0]).specifier
            for line in (ROOT / "constraints.txt").read_text().splitlines() if line.split("#")[0].strip()}
    for name, version in installed.items():
        if name in pins:
            assert version in pins[name], f"{platform}: {name} {version}, constraints.txt {pins[name]}"
    for name in ("keras", "numpy", "nbgrader", "jupyterlab", "jax"):
        assert name in installed, f"{platform}: {name} missing from {sorted(installed)}"
