"""The cr_sphere file format: writing, validating and reading sky-map files.

A file is an ``.npz`` archive with
    ``data``   float32 (n, 500, 4): x, y, z of the arrival direction (unit vector) and
               the normalised energy log10(E / eV) / 20.5;
    ``label``  int (n,): 0 isotropic, 1 signal;
and, in files this package simulates, the documentation of how they were made
(``params`` as JSON, ``seed``, ``simulator_version``) and the ground truth kept for
teaching (``source_id`` (n, 500): -1 background, else the source's index;
``source_direction`` (n, n_sources, 3)), which is never a model input.
"""

import contextlib
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from crsky.presets import SkyParameters

ENERGY_RANGE = (0.85, 1.01)  # normalised energy: 1 EeV to beyond 300 EeV
UNIT_TOLERANCE = 1e-3


class DataFileError(ValueError):
    """A sky-map file is missing, unreadable or not in the cr_sphere format."""


# ------------------------------------------------------------------ writing
@contextlib.contextmanager
def atomic_file(path, suffix=".tmp"):
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


def write_maps(path, chunks, n_maps, n_events, n_sources, metadata):
    """Stream sky maps into the ``.npz`` file ``path``, atomically.

    Args:
        chunks: iterable of ``(start, arrays)``, consecutive chunks covering maps
            ``0 .. n_maps - 1``; ``arrays`` holds ``data`` (m, n_events, 4), ``label`` (m,),
            ``source_id`` (m, n_events) and ``source_direction`` (m, n_sources, 3).
        metadata: dict of small values stored beside them (``params`` JSON, ``seed``, ...).

    Only one chunk of ``data`` is in memory at a time; labels and ground truth are kept
    until the end. The file appears under its name only when complete.
    """
    path = Path(path)
    labels = np.empty(n_maps, dtype=np.int32)
    source_id = np.empty((n_maps, n_events), dtype=np.int8)
    source_direction = np.empty((n_maps, n_sources, 3), dtype=np.float32)
    with atomic_file(path) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            with archive.open("data.npy", "w", force_zip64=True) as stream:
                _write_npy_header(stream, np.float32, (n_maps, n_events, 4))
                for start, arrays in chunks:
                    stop = start + len(arrays["label"])
                    stream.write(np.ascontiguousarray(arrays["data"], dtype=np.float32).tobytes())
                    labels[start:stop] = arrays["label"]
                    source_id[start:stop] = arrays["source_id"]
                    source_direction[start:stop] = arrays["source_direction"]
            extras = {"label": labels, "source_id": source_id, "source_direction": source_direction}
            extras.update({key: np.array(value) for key, value in metadata.items()})
            for key, value in extras.items():
                with archive.open(key + ".npy", "w", force_zip64=True) as stream:
                    np.lib.format.write_array(stream, value, allow_pickle=False)
    return path


def save_arrays(path, **arrays):
    """Write arrays to ``path`` (.npz) atomically: a temporary file, then a rename."""
    with atomic_file(path) as tmp, open(tmp, "wb") as stream:
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


# ------------------------------------------------------------------ reading
def load_file(path, validate=True):
    """Read a sky-map file into a dict of arrays (and ``params`` as :class:`SkyParameters`
    where the file has them; as text where this version cannot read them). Raises :class:`DataFileError` for a missing, truncated,
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
        try:
            arrays["params"] = SkyParameters.from_json(str(arrays["params"]))
        except (ValueError, TypeError):  # a file of another simulator version: keep its description as text
            arrays["params"] = str(arrays["params"])
    return arrays
