"""The course installs on Colab without changing anything Colab ships.

The package is built as a wheel, then pip resolves it against PyPI for Colab's Python and
platform with Colab's published package versions as constraints (colab/pip-freeze.txt):
a requirement Colab's versions do not meet makes the resolution fail, and the report must
not install another version of any package Colab has.
"""

import email
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import unquote

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from crsky import course

ROOT = Path(__file__).resolve().parents[1]
FREEZE = ROOT / "colab" / "pip-freeze.txt"
SOURCES = ["pyproject.toml", "README.md", "LICENSE", "edgeconv.py", "crsky"]


def colab_snapshot():
    """``(pins, header)``: normalised name -> version (None where Colab installed it from a
    local file or a git commit), and the ``# key: value`` lines of the header."""
    pins, header = {}, {}
    for line in FREEZE.read_text().splitlines():
        line = line.strip()
        if line.startswith("#"):
            match = re.match(r"#\s*([a-z-]+):\s*(\S+)$", line)
            if match:
                header[match.group(1)] = match.group(2)
            continue
        if not line:
            continue
        if " @ " in line:
            name, url = line.split(" @ ", 1)
            wheel = unquote(url.split("#")[0].rsplit("/", 1)[-1])
            pins[canonicalize_name(name)] = wheel.split("-")[1] if wheel.endswith(".whl") else None
        else:
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins, header


def pypi_reachable():
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel, built from a copy of the sources (the build leaves nothing in the repository)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, src / name)
    dist = tmp_path_factory.mktemp("dist")
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", str(src), "-w", str(dist)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    (built,) = dist.glob("*.whl")
    return built


def wheel_requirements(path):
    with zipfile.ZipFile(path) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(name))
    return [Requirement(r) for r in metadata.get_all("Requires-Dist")]


def test_snapshot_header_names_its_source_and_date():
    text = FREEZE.read_text()
    assert "https://github.com/googlecolab/backend-info/blob/" in text and re.search(r"20\d\d-\d\d-\d\d", text)
    pins, header = colab_snapshot()
    assert {"ipykernel": "6.17.1", "ipython": "7.34.0", "jupyter-client": "7.4.9"}.items() <= pins.items()
    assert header["python-version"] and header["platform"].startswith("manylinux_")


def test_wheel_is_versioned_and_is_what_the_setup_cells_install(wheel):
    assert wheel.name == course.COLAB_REQUIREMENT.rsplit("/", 1)[-1]
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {"edgeconv.py", "crsky/course.py", "crsky/selfcheck.py", "crsky/submit.py", "crsky/colab.py"} <= names


def test_runtime_requirements_are_lower_bounds_colab_meets(wheel):
    pins, _ = colab_snapshot()
    runtime = [r for r in wheel_requirements(wheel) if r.marker is None]
    assert runtime, "the wheel declares no runtime requirements"
    for requirement in runtime:
        name = canonicalize_name(requirement.name)
        assert all(spec.operator == ">=" for spec in requirement.specifier), f"{requirement}: lower bounds only"
        assert name in pins, f"{requirement}: Colab does not ship {name}; the set-up cell would install it"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{requirement}: Colab has {pins[name]}"
    assert "ipykernel" not in {canonicalize_name(r.name) for r in runtime}


def platforms(newest):
    """pip's ``--platform`` values for a glibc ``newest`` (``manylinux_2_35_x86_64``): pip
    does not widen an explicit manylinux_2_x tag to the older ones the machine also runs."""
    major, minor, arch = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", newest).groups()
    tags = [f"manylinux_{major}_{m}_{arch}" for m in range(int(minor), 4, -1)]
    return tags + [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}", f"linux_{arch}"]


def resolve(requirements, tmp_path):
    """pip's dry-run resolution of ``requirements`` on Colab against PyPI alone; returns
    ``(returncode, installs {name: version}, stderr)``."""
    pins, header = colab_snapshot()
    constraints = tmp_path / "colab-constraints.txt"
    constraints.write_text("".join(f"{name}=={version}\n" for name, version in pins.items() if version))
    report = tmp_path / "report.json"
    python = header["python-version"]
    # PyPI only: none of this machine's pip configuration (local indexes, constraints).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k == "PIP_CERT"}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    run = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report),
         "--index-url", "https://pypi.org/simple", "--python-version", python, "--implementation", "cp",
         "--abi", "cp" + python.replace(".", ""), *(f"--platform={tag}" for tag in platforms(header["platform"])),
         "--only-binary=:all:",
         "-c", str(constraints), *map(str, requirements)],
        capture_output=True, text=True, env=env, timeout=600)
    installs = {}
    if run.returncode == 0:
        installs = {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
                    for item in json.loads(report.read_text())["install"]}
    return run.returncode, installs, run.stderr


needs_pypi = pytest.mark.skipif(not pypi_reachable(), reason="PyPI cannot be reached from here")


@needs_pypi
def test_installing_the_wheel_on_colab_changes_no_colab_package(wheel, tmp_path):
    returncode, installs, stderr = resolve([wheel], tmp_path)
    assert returncode == 0, f"pip cannot install the course with Colab's versions:\n{stderr[-3000:]}"
    assert installs.pop("crsky") == Version(wheel.name.split("-")[1]).public
    pins, _ = colab_snapshot()
    changed = {name: (pins[name], version) for name, version in installs.items()
               if name in pins and pins[name] and Version(version) != Version(pins[name])}
    assert not changed, f"installing the course would change Colab's packages (Colab's, new): {changed}"
    added = sorted(set(installs) - set(pins))
    assert not added, f"the course would add packages Colab lacks: {added}"


@needs_pypi
def test_the_check_catches_a_requirement_colab_does_not_meet(tmp_path):
    """What the course once asked for: ipykernel >= 6.25 where Colab has 6.17.1."""
    returncode, _, stderr = resolve(["ipykernel>=6.25"], tmp_path)
    assert returncode != 0 and "ipykernel" in stderr
