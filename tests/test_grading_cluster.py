"""Grading at scale: the same class graded serially (one worker), by an embedded local Dask
cluster of two workers, and by a separately started Dask scheduler with two workers and a
PostgreSQL gradebook gives the same grades.csv, also when a worker is killed mid-run."""

import os
import threading
import time

import pytest

from crsky.grading import pipeline, sandbox
from crsky.grading.samples import answered, submit
from crsky.course import COURSE_ROOT

from tests.services import DaskCluster, postgres_server

SEED = 424242
HELD_OUT_MAPS = 1_000  # fewer than a real class gets: the pipeline is the same
pytestmark = [pytest.mark.grading, pytest.mark.slow,
              pytest.mark.skipif(not sandbox.probe()[0] and os.environ.get("CRSKY_REQUIRE_SANDBOX") != "1",
                                 reason=f"no grading sandbox here: {sandbox.probe()[1]}")]
WRONG = "def kernel_nn(data, nodes=16):\n    return data[0]\n"


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    subs = tmp_path_factory.mktemp("class") / "submissions"
    for i in range(4):
        submit(subs, f"student{i}", "02_kernel", answered("02_kernel", {"kernel_nn": WRONG} if i == 2 else None))
    submit(subs, "student0", "01_sky")
    submit(subs, "student1", "03_training", model=COURSE_ROOT / "tests" / "fixtures" / "dgcnn_textbook.keras")
    return subs


def grades(rows_path):
    return sorted(rows_path.read_text().splitlines())


@pytest.fixture(scope="module")
def serial(submissions, tmp_path_factory):
    base = tmp_path_factory.mktemp("serial")
    pipeline.grade(submissions, base / "results", base / "work", seed=SEED, held_out_maps=HELD_OUT_MAPS, workers=1, quiet=True)
    return grades(base / "results" / "grades.csv")


def test_local_parallel_run_grades_like_the_serial_run(submissions, serial, tmp_path):
    pipeline.grade(submissions, tmp_path / "results", tmp_path / "work", seed=SEED, held_out_maps=HELD_OUT_MAPS, workers=2, quiet=True)
    assert grades(tmp_path / "results" / "grades.csv") == serial
    [trained] = [line.split(",") for line in serial if line.startswith("student1,03_training,")]
    assert float(trained[2]) > 6 and float(trained[3]) == 10, trained  # the exercises and part of the model's points


def test_a_remote_cluster_needs_a_shared_gradebook(submissions, tmp_path):
    with pytest.raises(pipeline.GradingError, match="needs a gradebook every worker can reach"):
        pipeline.grade(submissions, tmp_path / "results", tmp_path / "work", cluster="tcp://127.0.0.1:1")


def test_one_options_object_and_no_unknown_setting(submissions, tmp_path):
    """The command line's options are one :class:`pipeline.Options`; a mistyped setting is refused, not ignored."""
    options = pipeline.Options(cluster="tcp://127.0.0.1:1")
    with pytest.raises(pipeline.GradingError, match="needs a gradebook every worker can reach"):
        pipeline.grade(submissions, tmp_path / "results", tmp_path / "work", options)
    with pytest.raises(TypeError, match="held_out_map"):
        pipeline.grade(submissions, tmp_path / "results", tmp_path / "work", held_out_map=10)
    assert not (tmp_path / "work").exists()


def test_separate_cluster_with_postgresql_grades_the_same_even_when_a_worker_dies(submissions, serial, tmp_path):
    cluster = DaskCluster(workers=2)
    try:
        with postgres_server() as url:
            killed = threading.Event()

            def kill_one_worker_once_grading_runs():
                from distributed import Client

                with Client(cluster.address, timeout="30s") as client:
                    deadline = time.monotonic() + 300
                    while time.monotonic() < deadline:
                        if any(client.processing().values()):
                            time.sleep(3)  # well into a task
                            cluster.kill_worker(0)
                            killed.set()
                            return
                        time.sleep(0.2)

            killer = threading.Thread(target=kill_one_worker_once_grading_runs, daemon=True)
            killer.start()
            pipeline.grade(submissions, tmp_path / "results", tmp_path / "work", seed=SEED, held_out_maps=HELD_OUT_MAPS, cluster=cluster.address,
                           gradebook_url=url, quiet=True)
            killer.join(timeout=5)
            assert killed.is_set(), "the worker was never killed: the test did not test a lost worker"
            assert grades(tmp_path / "results" / "grades.csv") == serial
            from crsky.grading.gradebook import opened

            with opened(url) as gradebook:  # the gradebook the formgrader would read
                assert gradebook.find_submission("02_kernel", "student0").score == 6
    finally:
        cluster.close()
