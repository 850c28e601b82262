"""Loading sky maps: the simulation (cached as a file), the textbook's original file
(downloaded with gdown, falling back to the simulation), or any local file.

The file format itself is :mod:`crsky.fileformat`; the split into training, validation
and test maps is :func:`crsky.experiment.split`.
"""

import os
from pathlib import Path

from crsky import experiment
from crsky.fileformat import DataFileError, atomic_file, load_file
from crsky.presets import as_parameters
from crsky.simulate import SIMULATOR_VERSION, write_simulation

ORIGINAL_FILE_ID = "1XKN-Ik7BDyMWdQ230zWS2bNxXL3_9jZq"  # the textbook's cr_sphere.npz on Google Drive
ORIGINAL_NAME = "cr_sphere.npz"
DEFAULT_CACHE = Path(os.environ.get("CRSKY_CACHE", Path.home() / ".cache" / "crsky"))
# A read-only folder of simulations made once for everyone (a JupyterHub image: see
# `python -m crsky.shared_cache`): read first, never written; the per-user cache is the fallback.
SHARED_CACHE_ENV = "CRSKY_SHARED_CACHE"


def fetch_original(cache_dir=DEFAULT_CACHE, quiet=True):
    """Download the textbook's cr_sphere.npz with gdown into ``cache_dir``, validate it and
    return its path. A failed or invalid download raises :class:`DataFileError` and
    leaves nothing in the cache."""
    cache_dir = Path(cache_dir)
    target = cache_dir / ORIGINAL_NAME
    if target.is_file():
        return target
    import gdown

    with atomic_file(target, suffix=".part") as tmp:
        try:
            result = gdown.download(id=ORIGINAL_FILE_ID, output=tmp, quiet=quiet)
        except Exception as error:  # network errors, Drive quota pages, ...
            raise DataFileError(f"could not download the textbook's data from Google Drive "
                                f"({type(error).__name__}: {error}).") from error
        if result is None:
            raise DataFileError("could not download the textbook's data from Google Drive (gdown returned nothing).")
        load_file(tmp)  # a bad download is never cached
    return target


def load_sky_maps(source="simulate", preset=experiment.PRESET, n_maps=experiment.N_MAPS, seed=experiment.DATA_SEED,
                  cache_dir=DEFAULT_CACHE, processes=1, progress=True):
    """Sky maps as a dict of arrays (see :func:`load_file`), from

    - ``source="simulate"``: the simulator (``preset``, ``n_maps``, ``seed``), cached as a
      file in ``cache_dir`` so a second call reads it back; a file for the same simulation
      in the read-only folder ``$CRSKY_SHARED_CACHE`` is read first, where set;
    - ``source="original"``: the textbook's file from Google Drive; when it cannot be
      reached, a message says so and the simulation is used instead;
    - any other string or path: a local file.
    """
    if source == "original":
        try:
            return load_file(fetch_original(cache_dir))
        except DataFileError as error:
            print(f"{error}\nFalling back to simulated data (preset {preset!r}, {n_maps} maps, seed {seed}).")
            source = "simulate"
    if source == "simulate":
        params = as_parameters(preset)
        name = preset if isinstance(preset, str) else "custom"
        filename = f"sky_{name}_{n_maps}_seed{seed}_v{SIMULATOR_VERSION}.npz"
        shared = os.environ.get(SHARED_CACHE_ENV)
        path = Path(cache_dir) / filename
        for cached in ([Path(shared) / filename] if shared else []) + [path]:
            if cached.is_file():
                try:
                    arrays = load_file(cached)
                    if arrays.get("params") == params:
                        return arrays
                except DataFileError:
                    pass  # a damaged cache entry is simulated again (into the per-user cache)
        write_simulation(path, params, n_maps, seed, processes=processes, progress=progress)
        return load_file(path)
    return load_file(source)
