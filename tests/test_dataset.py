"""The cr_sphere file format: writing, loading, validation errors, the download fallback;
the course's split and the model inputs."""

import numpy as np
import pytest

from crsky import experiment, simulate as simulate_module
from crsky.dataset import fetch_original, load_sky_maps
from crsky.fileformat import DataFileError, load_file, save_arrays
from crsky.models import model_inputs
from crsky.presets import PRESETS
from crsky.simulate import simulate, write_simulation


@pytest.fixture(scope="module")
def sky_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "sky.npz"
    write_simulation(path, "textbook", 600, seed=4, chunk_size=250, progress=False)
    return path


def test_written_file_documents_itself_and_matches_memory(sky_file):
    arrays = load_file(sky_file)
    assert arrays["data"].dtype == np.float32 and arrays["data"].shape == (600, 500, 4)
    assert arrays["label"].shape == (600,)
    assert arrays["params"] == PRESETS["textbook"]
    assert int(arrays["seed"]) == 4 and str(arrays["simulator_version"])
    memory = simulate("textbook", 600, seed=4)
    assert arrays["data"].tobytes() == memory["data"].tobytes()
    np.testing.assert_array_equal(arrays["source_id"], memory["source_id"])
    assert not list(sky_file.parent.glob("*.tmp"))  # no temporary file left behind


def test_textbook_split_and_model_inputs(sky_file):
    arrays = load_file(sky_file)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = experiment.split(arrays)
    assert len(x_test) == 120 and len(x_val) == 48 and len(x_train) == 432  # a fifth, then a tenth of the rest
    np.testing.assert_array_equal(x_test, arrays["data"][-120:])
    np.testing.assert_array_equal(x_val, arrays["data"][432:480])
    np.testing.assert_array_equal(y_train, arrays["label"][:432])
    points, features = model_inputs(x_test)
    assert points.shape == (120, 500, 3) and features.shape == (120, 500, 4)
    np.testing.assert_array_equal(features[..., 0], x_test[..., 3])
    np.testing.assert_array_equal(features[..., 1:], points)
    assert experiment.n_test(50_000) == 10_000 and experiment.n_test(600) == 120
    with pytest.raises(ValueError, match="the test set must hold between 1 and 599 of the 600 maps, got 600"):
        experiment.split(arrays, n_test_maps=600)
    with pytest.raises(ValueError, match=r"expected sky maps of shape \(n_maps, n_events, 4\), got \(3, 4\)"):
        model_inputs(np.zeros((3, 4)))


@pytest.mark.parametrize("n_maps, n_train, n_val, n_test", [(50_000, 36_000, 4_000, 10_000), (12, 8, 1, 3), (3, 1, 1, 1)])
def test_split_never_leaves_an_empty_training_set(n_maps, n_train, n_val, n_test):
    arrays = {"data": np.arange(n_maps), "label": np.arange(n_maps)}
    train, val, test = experiment.split(arrays, n_test_maps=n_test)
    assert (len(train[0]), len(val[0]), len(test[0])) == (n_train, n_val, n_test)
    assert np.concatenate([train[1], val[1], test[1]]).tolist() == list(range(n_maps))
    train, val, _ = experiment.split(arrays, n_test_maps=n_test, validation_fraction=0)
    assert len(val[0]) == 0 and len(train[0]) == n_maps - n_test
    with pytest.raises(ValueError, match="2 maps leave no training maps after 1 test and 1 validation maps"):
        experiment.split({"data": np.arange(2), "label": np.arange(2)}, n_test_maps=1)


def test_baseline_subset_is_the_first_training_maps():
    x, y = np.arange(12_000), np.arange(12_000) % 2
    x_base, y_base = experiment.baseline_subset(x, y)
    assert len(x_base) == experiment.BASELINE_MAX_TRAIN and x_base[0] == 0 and y_base[1] == 1


def good_arrays(n=4):
    sim = simulate("textbook", n, seed=1)
    return {"data": sim["data"], "label": sim["label"]}


def write(tmp_path, **arrays):
    return save_arrays(tmp_path / "bad.npz", **arrays)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda a: a.pop("label"), r"not a cr_sphere file: it lacks \['label'\]"),
        (lambda a: a.update(data=a["data"][..., :3]), r"shape \(n_maps, n_events, 4\).*got \(4, 500, 3\)"),
        (lambda a: a.update(data=a["data"].astype(np.int32)), "must be floating point, got dtype int32"),
        (lambda a: a.update(label=a["label"][:3]), r"'label' must have shape \(4,\).*got \(3,\)"),
        (lambda a: a.update(label=a["label"] + 1), r"labels must be 0 \(isotropic\) or 1 \(signal\), got also \[2\]"),
        (lambda a: a["data"].__setitem__((1, 7, 0), 3.0), "must be unit vectors.*map 1, event 7 has length"),
        (lambda a: a["data"].__setitem__((2, 3, 3), 1.5), r"normalised energy.*from .* to 1.5000"),
        (lambda a: a["data"].__setitem__((0, 0, 3), np.nan), "NaN or infinite values"),
    ],
)
def test_malformed_files_are_refused_with_a_clear_message(tmp_path, mutate, message):
    arrays = good_arrays()
    mutate(arrays)
    with pytest.raises(DataFileError, match=message):
        load_file(write(tmp_path, **arrays))


def test_missing_file(tmp_path):
    with pytest.raises(DataFileError, match="no sky-map file at .*missing.npz: simulate one with"):
        load_file(tmp_path / "missing.npz")


def test_truncated_file(tmp_path, sky_file):
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(sky_file.read_bytes()[: sky_file.stat().st_size // 2])
    with pytest.raises(DataFileError, match="truncated or corrupt"):
        load_file(truncated)


def test_corrupt_file(tmp_path):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(DataFileError, match="truncated or corrupt"):
        load_file(corrupt)


def test_simulated_data_is_cached_and_reread(tmp_path):
    first = load_sky_maps("simulate", "easy", 300, seed=2, cache_dir=tmp_path, progress=False)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    second = load_sky_maps("simulate", "easy", 300, seed=2, cache_dir=tmp_path, progress=False)
    assert files[0].stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(first["data"], second["data"])
    files[0].write_bytes(b"damaged")  # a damaged cache entry is simulated again
    third = load_sky_maps("simulate", "easy", 300, seed=2, cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(first["data"], third["data"])


def test_unreachable_download_is_not_cached_and_falls_back(tmp_path, monkeypatch, capsys):
    import gdown

    def unreachable(**kwargs):
        raise ConnectionError("drive.google.com is unreachable")

    monkeypatch.setattr(gdown, "download", unreachable)
    with pytest.raises(DataFileError, match="could not download the textbook's data.*unreachable"):
        fetch_original(tmp_path)
    assert not list(tmp_path.iterdir())
    arrays = load_sky_maps("original", "easy", 300, seed=1, cache_dir=tmp_path, progress=False)
    assert arrays["data"].shape == (300, 500, 4)
    assert "Falling back to simulated data (preset 'easy', 300 maps, seed 1)" in capsys.readouterr().out


def test_bad_download_is_never_cached(tmp_path, monkeypatch):
    import gdown

    def quota_page(id, output, quiet):  # Drive answers with an HTML page instead of the file
        with open(output, "w") as handle:
            handle.write("<html>Google Drive - Quota exceeded</html>")
        return output

    monkeypatch.setattr(gdown, "download", quota_page)
    with pytest.raises(DataFileError, match="truncated or corrupt"):
        fetch_original(tmp_path)
    assert not list(tmp_path.iterdir())


def test_good_download_is_validated_and_cached(tmp_path, monkeypatch):
    import gdown

    def good_file(id, output, quiet):
        arrays = good_arrays()
        with open(output, "wb") as handle:
            np.savez(handle, **arrays)
        return output

    monkeypatch.setattr(gdown, "download", good_file)
    path = fetch_original(tmp_path)
    assert path.name == "cr_sphere.npz" and load_file(path)["data"].shape == (4, 500, 4)
    assert [p.name for p in tmp_path.iterdir()] == ["cr_sphere.npz"]


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(simulate_module, "iter_chunks", explode)
    with pytest.raises(KeyboardInterrupt):
        write_simulation(tmp_path / "sky.npz", "textbook", 10, seed=1)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("n_maps, seed, message", [
    (-5, 1, "n_maps must be a positive integer, got -5"),
    (10, -1, "seed must be a non-negative integer, got -1"),
    (2.5, 1, "n_maps must be a positive integer, got 2.5"),
])
def test_bad_requests_are_refused_before_anything_is_allocated(tmp_path, n_maps, seed, message):
    with pytest.raises(ValueError, match=message):
        write_simulation(tmp_path / "sky.npz", "textbook", n_maps, seed=seed)
    assert not list(tmp_path.iterdir())
