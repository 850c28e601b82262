"""environment.yml and constraints.txt hold the same pins: conda brings the interpreter, pip
installs everything else under constraints.txt, and no version is pinned twice differently."""

import re
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def constraints():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", line
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def environment():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    (pip,) = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    return env, conda, pip


def conda_spec(text):
    """``name=1.2`` or ``name==1.2.3`` or ``name >=1`` -> (name, operator, version)."""
    match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(==|=|>=|<=|>|<)?\s*([^\s]*)", text.strip())
    return canonicalize_name(match.group(1)), match.group(2), match.group(3)


def test_conda_pins_only_what_constraints_pin_the_same():
    pins = constraints()
    env, conda, _ = environment()
    assert env["channels"] == ["conda-forge"]
    for dependency in conda:
        name, operator, version = conda_spec(dependency)
        if name in pins:
            assert operator == "==" and version == pins[name], f"environment.yml pins {dependency}, constraints.txt {pins[name]}"
    python = next(conda_spec(d) for d in conda if conda_spec(d)[0] == "python")
    assert tuple(map(int, python[2].split(".")[:2])) >= (3, 11), "nbgrader 0.9.6 needs Python >= 3.11"
    assert "nbgrader" not in {conda_spec(d)[0] for d in conda}, "nbgrader 0.9.6 is not on conda-forge: it comes from pip"


def test_pip_installs_under_constraints_txt_and_pins_nothing_else():
    pins = constraints()
    _, _, pip = environment()
    assert pip[0] == "-c constraints.txt", "the pip section must read constraints.txt first"
    installed = set()
    for line in pip[1:]:
        if line.startswith("-e "):
            # The extras scripts/venv.sh installs: the same set on both ways of installing.
            venv = re.search(r'-e "\$ROOT\[([a-z,]+)\]"', (ROOT / "scripts" / "venv.sh").read_text())
            assert venv, "scripts/venv.sh installs no -e \"$ROOT[...]\""
            assert line == f"-e .[{venv.group(1)}]", f"environment.yml installs {line}, scripts/venv.sh {venv.group(0)}"
            assert "cpu" in venv.group(1).split(","), "the cpu extra (TensorFlow) is installed"
            continue
        requirement = Requirement(line)
        installed.add(canonicalize_name(requirement.name))
        for spec in requirement.specifier:
            assert spec.operator == "==" and spec.version == pins[canonicalize_name(requirement.name)], line
    # The pinned stack reaches the environment: the course's test extra brings nbgrader,
    # JupyterLab, nbclient and numpy; the cpu extra TensorFlow, pinned in both of its builds.
    assert "tensorflow-cpu" in pins and "tensorflow" in pins and pins["tensorflow"] == pins["tensorflow-cpu"]
    pyproject = (ROOT / "pyproject.toml").read_text()
    test_extra = re.search(r"^test = \[(.*?)\]", pyproject, flags=re.S | re.M).group(1)
    for name in ("nbgrader", "jupyterlab", "nbclient"):
        assert f'"{name}' in test_extra and name in pins
