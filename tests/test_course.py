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


def unanswered_kernel_nn(data, nodes=16):
    raise NotImplementedError()


def test_an_unanswered_kernel_inside_edgeconv_is_reported_as_the_students_cell():
    """Keras wraps the kernel's error into its own; uses_answers finds the student's
    NotImplementedError under it and says which exercise to write, in one line."""
    import keras

    from edgeconv import EdgeConv

    def kernel_nn(data, nodes=16):  # the student's cell, as released
        raise NotImplementedError()

    points, features = keras.Input((20, 3)), keras.Input((20, 4))
    with pytest.raises(course.MissingAnswer) as caught:
        with course.uses_answers("kernel_nn"):
            EdgeConv(lambda a: kernel_nn(a, nodes=8), next_neighbors=4)([points, features])
    assert str(caught.value) == ("write kernel_nn in its cell above first: it still raises NotImplementedError. "
                                 "Run that cell, then this one.")
    assert caught.value._render_traceback_() == [f"MissingAnswer: {caught.value}"]  # IPython shows this line


def test_an_undefined_answer_is_named_and_other_errors_pass_through():
    with pytest.raises(course.MissingAnswer, match=r"^kernel_nn is not defined: run its cell above first"):
        with course.uses_answers("kernel_nn"):
            kernel_nn  # noqa: B018, F821 (the cell that defines it was not run)
    with pytest.raises(NameError):
        with course.uses_answers("kernel_nn"):
            other_name  # noqa: B018, F821
    with pytest.raises(ValueError, match="a real error"):
        with course.uses_answers("kernel_nn"):
            raise ValueError("a real error")
    with pytest.raises(NotImplementedError):  # raised by a function that is not the answer
        with course.uses_answers("kernel_nn"):
            unanswered_kernel_nn(None)
