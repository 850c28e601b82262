"""The notebooks' size switch."""

import pytest

from crsky import course
from crsky.experiment import SIZES


def test_size_switch(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setenv("CRSKY_SIZE", "small")
    assert course.size(verbose=False) == SIZES["small"]
    monkeypatch.setenv("CRSKY_SIZE", "GPU ")
    assert course.size(verbose=False).name == "gpu"
    monkeypatch.setenv("CRSKY_SIZE", "huge")
    with pytest.raises(ValueError, match=r"CRSKY_SIZE must be one of \['cpu', 'gpu', 'small'\] or unset, got 'huge'"):
        course.size()


def test_autograding_never_trains_at_full_size(monkeypatch, capsys):
    monkeypatch.setenv("CRSKY_SIZE", "gpu")
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert course.size().name == "small"
    assert "autograding" in capsys.readouterr().out


def test_without_a_switch_the_hardware_decides(monkeypatch):
    monkeypatch.delenv("CRSKY_SIZE", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setattr(course, "has_gpu", lambda: False)
    assert course.size(verbose=False).name == "cpu"
    monkeypatch.setattr(course, "has_gpu", lambda: True)
    assert course.size(verbose=False).name == "gpu"


def test_the_assignments_are_the_solution_folders():
    folders = sorted(p.name for p in (course.COURSE_ROOT / "solutions").iterdir() if p.is_dir())
    assert list(course.ASSIGNMENTS) == folders
    assert sorted(p.name for p in (course.COURSE_ROOT / "notebooks").iterdir() if p.is_dir()) == folders
