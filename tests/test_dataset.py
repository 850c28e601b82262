"""The cr_sphere file format: writing, loading, validation errors, the download fallback."""

import numpy as np
import pytest

from crsky import dataset
from crsky.dataset import (DataFileError, fetch_original, load_file, load_sky_maps, model_inputs, save_arrays,
                           train_test_split, write_simulation)
from crsky.simulate import PRESETS, simulate


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
    (x_train, y_train), (x_test, y_test) = train_test_split(arrays)
    assert len(x_test) == 120 and len(x_train) == 480  # a fifth of a small file
    np.testing.assert_array_equal(x_test, arrays["data"][-120:])
    points, features = model_inputs(x_test)
    assert points.shape == (120, 500, 3) and features.shape == (120, 500, 4)
    np.testing.assert_array_equal(features[..., 0], x_test[..., 3])
    np.testing.assert_array_equal(features[..., 1:], points)
    assert dataset.default_n_test(50000) == 10000
    with pytest.raises(ValueError, match="n_test must be between 1 and 599 for 600 maps, got 600"):
        train_test_split(arrays, n_test=600)
    with pytest.raises(ValueError, match=r"expected sky maps of shape \(n_maps, n_events, 4\), got \(3, 4\)"):
        model_inputs(np.zeros((3, 4)))


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

    monkeypatch.setattr(dataset, "iter_chunks", explode)
    with pytest.raises(KeyboardInterrupt):
        write_simulation(tmp_path / "sky.npz", "textbook", 10, seed=1)
    assert not list(tmp_path.iterdir())
