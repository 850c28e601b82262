"""The grader's trusted scoring of a saved model (nbgrader's ScoreSavedModel step): a separate
process, sandboxed where the sandbox works, loads only the submitted file and predicts maps
without their labels; the points are the grading rule applied to its predictions. Each way a
model file can fail scores nothing and says why. Notebook 3's map classifier and notebook 5's
per-cosmic-ray model."""

import numpy as np
import pytest

from crsky import members
from crsky.course import COURSE_ROOT
from crsky.grading import nbgrader_steps, sandbox, scoring
from crsky.simulate import simulate

GOOD_MODEL = COURSE_ROOT / "tests" / "fixtures" / "dgcnn_textbook.keras"
MEMBER_MODEL = COURSE_ROOT / "tests" / "fixtures" / "members_cpu.keras"
pytestmark = pytest.mark.grading
SANDBOXED = sandbox.probe()[0]


@pytest.fixture(scope="module")
def sky():
    return simulate(n_maps=300, seed=11)


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """Model files a student may hand in by mistake: random bytes, and each task's model under the other's name."""
    from crsky.models import build_member_model, build_reference_model

    folder = tmp_path_factory.mktemp("models")
    (folder / "corrupt.keras").write_bytes(np.random.default_rng(0).bytes(4000))
    build_reference_model().save(folder / "classifier.keras")
    build_member_model().save(folder / "members.keras")
    return folder


def test_the_map_classifier_scores_as_the_rule_says_on_maps_it_sees_without_labels(sky):
    maps, labels = sky["data"], sky["label"]
    baseline = 0.7
    score, accuracy, message = nbgrader_steps.score_model_file(GOOD_MODEL, maps, labels, 4,
                                                               scoring.full_marks_accuracy(baseline), baseline, SANDBOXED)
    model = scoring.load_submitted_model(GOOD_MODEL)
    expected = scoring.held_out_accuracy(scoring.predict_signal_probability(model, maps), labels)
    assert accuracy == pytest.approx(expected, abs=1e-6)
    assert score == pytest.approx(round(scoring.accuracy_points(expected, 4, scoring.full_marks_accuracy(baseline)), 2))
    assert f"test accuracy on {len(labels)} held-out maps: {expected:.3f}" in message
    assert "measured by the grader" in message


@pytest.mark.parametrize("name, words", [
    ("missing.keras", "no trained model missing.keras was submitted"),
    ("corrupt.keras", "cannot be loaded"),
    ("members.keras", "must output (n, 2) class probabilities"),  # notebook 5's model handed in for notebook 3
])
def test_a_map_model_that_cannot_be_scored_gets_nothing_and_says_why(sky, broken, name, words):
    score, accuracy, message = nbgrader_steps.score_model_file(broken / name, sky["data"], sky["label"], 4, 0.9, 0.88,
                                                               SANDBOXED)
    assert score is None and accuracy is None
    assert words in message and message.endswith("0 points."), message


def member_held_out(sky):
    signal = sky["label"] == 1
    maps, truth = sky["data"][signal], members.member_targets(sky["source_id"][signal])
    baseline_scores = truth + np.random.default_rng(3).normal(0, 1.0, truth.shape)
    return {"maps": maps, "truth": truth, "baseline_scores": baseline_scores}


def test_the_member_model_scores_its_purity_at_the_baselines_efficiency(sky):
    held_out = member_held_out(sky)
    score, purity, message = nbgrader_steps.score_member_file(MEMBER_MODEL, held_out, 4, SANDBOXED)
    expected, result = members.score_member_model(scoring.load_submitted_model(MEMBER_MODEL), held_out["maps"],
                                                  held_out["truth"], held_out["baseline_scores"], points=4)
    assert purity == pytest.approx(result["purity"], abs=1e-6) and score == pytest.approx(round(expected, 2))
    assert purity > result["chance"] + 0.3  # the trained model finds the sources' cosmic rays
    assert f"purity on {len(held_out['maps'])} held-out maps with sources" in message
    assert "measured by the grader" in message and 0 < score <= 4


@pytest.mark.parametrize("name, words", [
    ("missing.keras", "no trained model missing.keras was submitted"),
    ("corrupt.keras", "cannot be loaded"),
    ("classifier.keras", "one probability per cosmic ray"),  # notebook 3's model handed in for notebook 5
])
def test_a_member_model_that_cannot_be_scored_gets_nothing_and_says_why(sky, broken, name, words):
    score, purity, message = nbgrader_steps.score_member_file(broken / name, member_held_out(sky), 4, SANDBOXED)
    assert score is None and purity is None
    assert words in message and message.endswith("0 points."), message


def test_the_scoring_process_refuses_an_unknown_task(tmp_path):
    with pytest.raises(ValueError, match="task must be one of"):
        scoring.predict_file(GOOD_MODEL, tmp_path / "maps.npy", tmp_path / "out.npy", task="regression")


def _score_notebook_3(steps, folder, held_out_file):
    """Notebook 3's answered notebook through the preprocessors ``steps`` (in order), as autograde
    runs them on a submission in ``folder``; returns the scored cell and the notebook's verdict."""
    from nbgrader.preprocessors import NbGraderPreprocessor
    from traitlets.config import Config

    from crsky.grading import answers
    from crsky.grading.samples import answered

    config = Config()
    config.CourseDirectory.root = str(COURSE_ROOT)
    config.CourseDirectory.source_directory = "solutions"
    config.ScoreSavedModel.held_out_file = str(held_out_file)
    config.ScoreSavedModel.sandboxed = SANDBOXED
    nb = answered("03_training")
    resources = {"nbgrader": {"assignment": "03_training", "notebook": "03_training"},
                 "metadata": {"path": str(folder)}}
    for step in steps:
        assert issubclass(step, NbGraderPreprocessor)
        nb, resources = step(config=config).preprocess(nb, resources)
    (cell,) = [c for c in nb.cells if answers.nbgrader_meta(c).get("grade_id") == "test_saved_model_accuracy"]
    assert nbgrader_steps.PENDING_KEY not in resources, "the collecting step leaves no scoring behind"
    return cell, nb.metadata.get(nbgrader_steps.REVIEW_KEY, {})


def test_scoring_begun_before_the_protected_run_gives_what_scoring_after_it_gives(sky, tmp_path):
    """StartScoring (before ProtectedExecute) scores in a thread, ScoreSavedModel collects: the
    same output and points as ScoreSavedModel alone; a configuration error reaches the cell."""
    import shutil

    folder = tmp_path / "submission"
    folder.mkdir()
    shutil.copy(GOOD_MODEL, folder / "dgcnn.keras")
    held_out = tmp_path / "held-out.npz"
    np.savez(held_out, maps=sky["data"], labels=sky["label"], baseline=np.float64(0.7))
    alone = _score_notebook_3([nbgrader_steps.ScoreSavedModel], folder, held_out)
    begun = _score_notebook_3([nbgrader_steps.StartScoring, nbgrader_steps.ScoreSavedModel], folder, held_out)
    assert begun == alone
    cell, verdict = begun
    assert cell.outputs[-1]["output_type"] == "execute_result"
    assert verdict["scored"]["test_saved_model_accuracy"]["points"] == float(cell.outputs[-1]["data"]["text/plain"])
    missing = tmp_path / "no-such-held-out.npz"
    cell, _ = _score_notebook_3([nbgrader_steps.StartScoring, nbgrader_steps.ScoreSavedModel], folder, missing)
    assert [o.get("ename") for o in cell.outputs] == ["ModelNotScored"], cell.outputs


def test_only_the_scoring_processs_own_json_lines_are_read():
    printed = '{not json\n{"error": "the model cannot be loaded"}\n[1, 2]\n{"maps": 3}\nWARNING {x}\n'
    assert nbgrader_steps.scorer_messages(printed) == [{"error": "the model cannot be loaded"}, {"maps": 3}]
    assert nbgrader_steps.scorer_messages("") == []
