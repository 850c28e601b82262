"""A read-only cache of simulations shared by every user (CRSKY_SHARED_CACHE) is read first;
the per-user cache is the fallback and the only place anything is written."""

import re
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from crsky import shared_cache
from crsky.experiment import DATA_SEED, PRESET, SIZES
from crsky.dataset import SHARED_CACHE_ENV, load_sky_maps, write_simulation
from crsky.presets import as_parameters
from crsky.simulate import SIMULATOR_VERSION

ROOT = Path(__file__).resolve().parents[1]
N = 20


def cache_name(n_maps=N, preset="textbook", seed=1):
    return f"sky_{preset}_{n_maps}_seed{seed}_v{SIMULATOR_VERSION}.npz"


def snapshot(folder):
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in Path(folder).iterdir()}


@pytest.fixture
def shared(tmp_path, monkeypatch):
    folder = tmp_path / "shared"
    write_simulation(folder / cache_name(), "textbook", N, seed=1, progress=False)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    monkeypatch.setenv(SHARED_CACHE_ENV, str(folder))
    yield folder
    folder.chmod(0o755)


def test_shared_file_is_read_and_nothing_is_written(shared, tmp_path):
    before = snapshot(shared)
    arrays = load_sky_maps("simulate", "textbook", N, seed=1, cache_dir=tmp_path / "user", progress=False)
    assert arrays["data"].shape == (N, 500, 4)
    assert not (tmp_path / "user").exists()
    assert snapshot(shared) == before


def test_same_maps_from_the_shared_and_the_user_cache(shared, tmp_path, monkeypatch):
    from_shared = load_sky_maps("simulate", "textbook", N, seed=1, cache_dir=tmp_path / "a", progress=False)
    monkeypatch.delenv(SHARED_CACHE_ENV)
    simulated = load_sky_maps("simulate", "textbook", N, seed=1, cache_dir=tmp_path / "b", progress=False)
    np.testing.assert_array_equal(from_shared["data"], simulated["data"])


def test_a_simulation_the_shared_cache_lacks_goes_to_the_user_cache(shared, tmp_path):
    load_sky_maps("simulate", "textbook", N + 1, seed=1, cache_dir=tmp_path / "user", progress=False)
    assert [p.name for p in (tmp_path / "user").iterdir()] == [cache_name(N + 1)]
    assert [p.name for p in shared.iterdir()] == [cache_name()]


def test_a_damaged_or_foreign_shared_file_is_passed_over(shared, tmp_path):
    shared.chmod(0o755)
    (shared / cache_name(N, seed=2)).write_bytes(b"truncated")
    shutil.copy(shared / cache_name(), shared / cache_name(N, preset="easy"))  # another preset's name, textbook maps
    for preset, seed in (("textbook", 2), ("easy", 1)):
        arrays = load_sky_maps("simulate", preset, N, seed=seed, cache_dir=tmp_path / "user", progress=False)
        assert arrays["params"] == as_parameters(preset) and (tmp_path / "user" / cache_name(N, preset, seed)).is_file()
    assert (shared / cache_name(N, seed=2)).read_bytes() == b"truncated"


def test_build_makes_world_readable_files_for_the_small_size(tmp_path):
    (path,) = shared_cache.build(tmp_path / "cache", sizes=["small"])
    assert path.name == cache_name(600)
    assert path.stat().st_mode & 0o777 == 0o644


def test_the_list_matches_what_the_notebooks_load():
    """Every load_sky_maps call in the notebooks, evaluated at each size, is in the list."""
    calls = []
    for path in sorted(ROOT.glob("solutions/*/*.ipynb")):
        text = path.read_text().replace('\\"', '"')
        found = re.findall(r"load_sky_maps\(((?:[^()]|\([^()]*\))*)\)", text)
        assert len(found) == text.count("load_sky_maps("), f"{path.name}: a call this test cannot read"
        for arguments in found:
            assert "preset=" not in arguments and "seed=" not in arguments, "the course's preset and seed"
            calls.append(re.search(r"n_maps=((?:[^(),]|\([^()]*\))+)", arguments).group(1))
    assert len(calls) == len(list(ROOT.glob("solutions/*/*.ipynb"))), calls  # one load per notebook
    for size in SIZES.values():
        loaded = {(PRESET, eval(n_maps, {"size": size, "min": min}), DATA_SEED) for n_maps in calls}
        assert loaded == set(shared_cache.notebook_simulations(size)), size.name
