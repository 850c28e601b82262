"""The cr_sphere data format: writing, validating and loading sky-map files.

A file is an ``.npz`` archive with
    ``data``   float32 (n, 500, 4): x, y, z of the arrival direction (unit vector) and
               the normalised energy log10(E / eV) / 20.5;
    ``label``  int (n,): 0 isotropic, 1 signal;
and, in files this package simulates, the documentation of how they were made
(``params`` as JSON, ``seed``, ``simulator_version``) and the ground truth kept for
teaching (``source_id`` (n, 500): -1 background, else the source's index;
``source_direction`` (n, n_sources, 3)), which is never a model input.

The textbook's split: the last 10,000 maps (or a fifth of a smaller file) are the test set.
"""

import contextlib
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from crsky.simulate import SIMULATOR_VERSION, SkyParameters, get_preset, iter_chunks

ORIGINAL_FILE_ID = "1XKN-Ik7BDyMWdQ230zWS2bNxXL3_9jZq"  # the textbook's cr_sphere.npz on Google Drive
ORIGINAL_NAME = "cr_sphere.npz"
ENERGY_RANGE = (0.85, 1.01)  # normalised energy: 1 EeV to beyond 300 EeV
UNIT_TOLERANCE = 1e-3
DEFAULT_CACHE = Path(os.environ.get("CRSKY_CACHE", Path.home() / ".cache" / "crsky"))


class DataFileError(ValueError):
    """A sky-map file is missing, unreadable or not in the cr_sphere format."""


# ------------------------------------------------------------------ writing
@contextlib.contextmanager
def _atomic_file(path, suffix=".tmp"):
    """Yield a temporary path beside ``path``; it becomes ``path`` (by rename) only when the
    block ends without an exception, and is removed otherwise: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=suffix, dir=path.parent)
    os.close(handle)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _write_npy_header(handle, dtype, shape):
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)}
    np.lib.format.write_array_header_2_0(handle, header)


def write_simulation(path, params, n_maps, seed, chunk_size=5000, processes=1, progress=True):
    """Simulate ``n_maps`` maps straight into the ``.npz`` file ``path``.

    The large ``data`` array is streamed chunk by chunk, so memory stays bounded by
    ``chunk_size`` (plus the small label and ground-truth arrays). The file is written
    to a temporary name and renamed when complete: a crash never leaves half a file.
    """
    params = get_preset(params) if isinstance(params, str) else params
    path = Path(path)
    labels = np.empty(n_maps, dtype=np.int32)
    source_id = np.empty((n_maps, params.n_events), dtype=np.int8)
    source_direction = np.empty((n_maps, params.n_sources, 3), dtype=np.float32)
    with _atomic_file(path) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            with archive.open("data.npy", "w", force_zip64=True) as stream:
                _write_npy_header(stream, np.float32, (n_maps, params.n_events, 4))
                for start, arrays in iter_chunks(params, n_maps, seed, chunk_size, processes, progress):
                    stop = start + len(arrays["label"])
                    stream.write(np.ascontiguousarray(arrays["data"]).tobytes())
                    labels[start:stop] = arrays["label"]
                    source_id[start:stop] = arrays["source_id"]
                    source_direction[start:stop] = arrays["source_direction"]
            extras = {
                "label": labels, "source_id": source_id, "source_direction": source_direction,
                "params": np.array(params.to_json()), "seed": np.array(int(seed)),
                "simulator_version": np.array(SIMULATOR_VERSION),
            }
            for key, value in extras.items():
                with archive.open(key + ".npy", "w", force_zip64=True) as stream:
                    np.lib.format.write_array(stream, value, allow_pickle=False)
    return path


def save_arrays(path, **arrays):
    """Write arrays to ``path`` (.npz) atomically: a temporary file, then a rename."""
    with _atomic_file(path) as tmp, open(tmp, "wb") as stream:
        np.savez(stream, **arrays)
    return Path(path)


# --------------------------------------------------------------- validation
def validate_arrays(data, label, where="the data"):
    """Check arrays against the cr_sphere format; raise :class:`DataFileError` saying what
    was expected and what arrived."""
    data, label = np.asarray(data), np.asarray(label)
    if data.ndim != 3 or data.shape[-1] != 4:
        raise DataFileError(f"{where}: 'data' must have shape (n_maps, n_events, 4) = (x, y, z, energy), "
                            f"got {data.shape}.")
    if not np.issubdtype(data.dtype, np.floating):
        raise DataFileError(f"{where}: 'data' must be floating point, got dtype {data.dtype}.")
    if label.shape != (data.shape[0],):
        raise DataFileError(f"{where}: 'label' must have shape ({data.shape[0]},), one label per map, "
                            f"got {label.shape}.")
    if not (np.issubdtype(label.dtype, np.integer) or np.issubdtype(label.dtype, np.floating)):
        raise DataFileError(f"{where}: 'label' must be integers 0/1, got dtype {label.dtype}.")
    bad_labels = np.setdiff1d(np.unique(label), [0, 1])
    if bad_labels.size:
        raise DataFileError(f"{where}: labels must be 0 (isotropic) or 1 (signal), got also {bad_labels[:5].tolist()}.")
    if not np.all(np.isfinite(data)):
        raise DataFileError(f"{where}: 'data' contains NaN or infinite values "
                            f"(first in map {int(np.argwhere(~np.isfinite(data))[0, 0])}).")
    norm = np.linalg.norm(data[..., :3].astype(np.float64), axis=-1)
    worst = np.abs(norm - 1.0)
    if worst.size and worst.max() > UNIT_TOLERANCE:
        index = np.unravel_index(np.argmax(worst), worst.shape)
        raise DataFileError(f"{where}: columns 0-2 must be unit vectors (x, y, z); map {index[0]}, event "
                            f"{index[1]} has length {norm[index]:.4f}.")
    energy = data[..., 3]
    if energy.size and (energy.min() < ENERGY_RANGE[0] or energy.max() > ENERGY_RANGE[1]):
        raise DataFileError(f"{where}: column 3 must be the normalised energy log10(E/eV)/20.5 in "
                            f"[{ENERGY_RANGE[0]}, {ENERGY_RANGE[1]}], got values from {energy.min():.4f} "
                            f"to {energy.max():.4f}.")


def load_file(path, validate=True):
    """Read a sky-map file into a dict of arrays (and ``params`` as :class:`SkyParameters`
    where the file has them). Raises :class:`DataFileError` for a missing, truncated,
    corrupt or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"no sky-map file at {path}: simulate one with "
                            f"`python -m crsky.simulate -o {path}` or pass another path.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {"data", "label"} - set(archive.files)
            if missing:
                raise DataFileError(f"{path} is not a cr_sphere file: it lacks {sorted(missing)} "
                                    f"(it has {sorted(archive.files)}).")
            arrays = {key: archive[key] for key in archive.files}
    except DataFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise DataFileError(f"{path} is truncated or corrupt and cannot be read as .npz "
                            f"({type(error).__name__}: {error}). Delete it and download or simulate it again.") from error
    if validate:
        validate_arrays(arrays["data"], arrays["label"], where=str(path))
    arrays["label"] = arrays["label"].astype(np.int64)
    if "params" in arrays:
        arrays["params"] = SkyParameters.from_json(str(arrays["params"]))
    return arrays


# ------------------------------------------------------------------ loading
def default_n_test(n_maps):
    """The textbook's test size: 10,000 of 50,000 maps; a fifth of a smaller file."""
    return min(10000, n_maps // 5)


def train_test_split(arrays, n_test=None):
    """Split the maps the textbook's way: the last ``n_test`` maps are the test set.

    Returns ``(x_train, y_train), (x_test, y_test)``, x of shape (n, 500, 4), y integer labels.
    """
    data, label = arrays["data"], arrays["label"]
    n_test = default_n_test(len(label)) if n_test is None else int(n_test)
    if not 0 < n_test < len(label):
        raise ValueError(f"n_test must be between 1 and {len(label) - 1} for {len(label)} maps, got {n_test}.")
    return (data[:-n_test], label[:-n_test]), (data[-n_test:], label[-n_test:])


def model_inputs(x):
    """The DGCNN's inputs from maps ``(n, P, 4)``: ``[points (n, P, 3), features (n, P, 4)]``,
    points the unit vectors and features (energy, x, y, z), as the textbook builds them."""
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[-1] != 4:
        raise ValueError(f"expected sky maps of shape (n_maps, n_events, 4), got {x.shape}.")
    points = x[..., :3]
    features = np.concatenate([x[..., 3:], points], axis=-1)
    return [points, features]


def fetch_original(cache_dir=DEFAULT_CACHE, quiet=True):
    """Download the textbook's cr_sphere.npz with gdown into ``cache_dir``, validate it and
    return its path. A failed or invalid download raises :class:`DataFileError` and
    leaves nothing in the cache."""
    cache_dir = Path(cache_dir)
    target = cache_dir / ORIGINAL_NAME
    if target.is_file():
        return target
    import gdown

    with _atomic_file(target, suffix=".part") as tmp:
        try:
            result = gdown.download(id=ORIGINAL_FILE_ID, output=tmp, quiet=quiet)
        except Exception as error:  # network errors, Drive quota pages, ...
            raise DataFileError(f"could not download the textbook's data from Google Drive "
                                f"({type(error).__name__}: {error}).") from error
        if result is None:
            raise DataFileError("could not download the textbook's data from Google Drive (gdown returned nothing).")
        load_file(tmp)  # a bad download is never cached
    return target


def load_sky_maps(source="simulate", preset="textbook", n_maps=50000, seed=1, cache_dir=DEFAULT_CACHE,
                  processes=1, progress=True):
    """Sky maps as a dict of arrays (see :func:`load_file`), from

    - ``source="simulate"``: the simulator (``preset``, ``n_maps``, ``seed``), cached as a
      file in ``cache_dir`` so a second call reads it back;
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
        params = get_preset(preset) if isinstance(preset, str) else preset
        name = preset if isinstance(preset, str) else "custom"
        path = Path(cache_dir) / f"sky_{name}_{n_maps}_seed{seed}_v{SIMULATOR_VERSION}.npz"
        if path.is_file():
            try:
                arrays = load_file(path)
                if arrays.get("params") == params:
                    return arrays
            except DataFileError:
                pass  # a damaged cache entry is simulated again
        write_simulation(path, params, n_maps, seed, processes=processes, progress=progress)
        return load_file(path)
    return load_file(source)
